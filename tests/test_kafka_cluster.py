"""Apache Kafka started from Python: a 3-node KRaft cluster survives kill -9 of a partition
leader without losing acknowledged records, the node rejoins, and one node is enough for
benchmarks. These are the fixtures later differential tests stand on."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.client import ClusterMetadata, consume, produce_all
from headwater.testing import KafkaCluster, kafka_libs_dir


def _create_topic(bootstrap: str, name: str, partitions: int, replicas: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(
        name, partitions, replicas, config={"min.insync.replicas": str(min(2, replicas))}
    )
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=60)


def _records(start: int, count: int) -> list[tuple[bytes | None, bytes | None]]:
    return [(f"k{i}".encode(), f"v{i}".encode()) for i in range(start, start + count)]


def _fully_replicated(topic: str, partitions: int, nodes: int) -> Callable[[ClusterMetadata], bool]:
    def check(metadata: ClusterMetadata) -> bool:
        states = [metadata.partitions.get((topic, p)) for p in range(partitions)]
        return len(metadata.brokers) == nodes and all(
            s is not None and s.leader >= 0 and len(s.isr) == nodes for s in states
        )

    return check


@pytest.fixture
def healed(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session cluster, with every node running again after the test, pass or fail."""
    yield kafka_cluster
    for node_id in kafka_cluster.node_ids:
        if not kafka_cluster.is_running(node_id):
            kafka_cluster.restart(node_id)


def test_cluster_shape(kafka_cluster: KafkaCluster) -> None:
    assert kafka_cluster.node_ids == [1, 2, 3]
    assert len(kafka_cluster.bootstrap.split(",")) == 3
    metadata = kafka_cluster.metadata()
    assert metadata is not None
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert metadata.controller_id in {1, 2, 3}
    for node_id in kafka_cluster.node_ids:
        assert "Kafka Server started" in kafka_cluster.log_path(node_id).read_text()


def test_leader_kill_loses_no_acknowledged_record_and_the_node_rejoins(
    healed: KafkaCluster,
) -> None:
    cluster = healed
    topic = "failover"
    _create_topic(cluster.bootstrap, topic, partitions=1, replicas=3)
    cluster.wait_until(_fully_replicated(topic, 1, 3), what=f"{topic} with ISR 3")

    assert produce_all(cluster.bootstrap, topic, _records(0, 50)) == 50
    # A group read before the kill puts __consumer_offsets on all three nodes and commits 50.
    first = list(consume(cluster.bootstrap, topic, group_id="g", max_records=50))
    assert [r.value for r in first] == [v for _, v in _records(0, 50)]

    metadata = cluster.metadata()
    assert metadata is not None
    leader = metadata.partitions[(topic, 0)].leader
    counts = cluster.leader_counts()
    assert counts[leader] >= 1
    cluster.kill(leader)
    assert not cluster.is_running(leader)

    # acks=all with min.insync.replicas=2 keeps working on the two survivors once the
    # controller fences the dead node and elects a new leader.
    started = time.monotonic()
    assert produce_all(cluster.bootstrap, topic, _records(50, 50)) == 50
    failover_s = time.monotonic() - started
    after = cluster.wait_until(
        lambda m: leader not in m.brokers and m.partitions[(topic, 0)].leader not in {-1, leader},
        what=f"node {leader} fenced",
    )
    assert len(after.partitions[(topic, 0)].isr) == 2
    second = list(consume(cluster.bootstrap, topic, group_id="g", max_records=50))
    assert [r.value for r in second] == [v for _, v in _records(50, 50)]
    print(f"produce across the failover took {failover_s:.1f} s")

    cluster.restart(leader)
    cluster.wait_until(_fully_replicated(topic, 1, 3), what=f"node {leader} back in the ISR")
    assert produce_all(cluster.bootstrap, topic, _records(100, 10)) == 10
    everything = list(consume(cluster.bootstrap, topic, max_records=110, idle_timeout_s=20))
    assert [r.value for r in everything] == [v for _, v in _records(0, 110)]
    assert [r.offset for r in everything] == list(range(110))


@pytest.fixture(scope="module")
def single_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    if shutil.which("java") is None or not (kafka_libs_dir() / ".complete").is_file():
        pytest.skip("Apache Kafka jars or java missing: run scripts/install-kafka")
    with KafkaCluster(1, tmp_path_factory.mktemp("kafka-single"), heap_mb=384) as cluster:
        yield cluster


def test_single_node_accepts_a_produce(single_node: KafkaCluster) -> None:
    assert single_node.node_ids == [1]
    topic = "single"
    assert produce_all(single_node.bootstrap, topic, _records(0, 20)) == 20
    got = list(consume(single_node.bootstrap, topic, max_records=20, idle_timeout_s=20))
    assert [r.key for r in got] == [k for k, _ in _records(0, 20)]
    assert single_node.leader_counts()[1] >= 1
