"""confluent-kafka (librdkafka 2.x) against the broker over real loopback sockets."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from headwater.broker import BrokerThread

COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _create(bootstrap: str, name: str, partitions: int = 1, **configs: str) -> None:
    admin = _admin(bootstrap)  # keep the client alive until the future resolves
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=configs)]
    )
    futures[name].result(30)


def _produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]], **config: object
) -> list[tuple[int, int]]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    delivered: list[tuple[bytes | None, int, int]] = []
    errors: list[KafkaError] = []

    def report(err: KafkaError | None, msg: object) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.key(), msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=report)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    return delivered


def _consume(
    bootstrap: str, topic: str, count: int, group: str | None = None, **config: object
) -> list[object]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"g-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    out: list[object] = []
    deadline = time.monotonic() + 60
    while len(out) < count and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=0.5):
            assert msg.error() is None, msg.error()
            out.append(msg)
    consumer.close()
    return out


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_round_trips(bootstrap: str, compression: str) -> None:
    topic = f"comp-{compression}"
    records = [(f"k{i}".encode(), f"value-{i}".encode() * 5) for i in range(2000)]
    _produce(bootstrap, topic, records, **{"compression.type": compression})
    got = _consume(bootstrap, topic, len(records))
    assert [(m.key(), m.value()) for m in got] == records  # type: ignore[attr-defined]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_levels(bootstrap: str, acks: str) -> None:
    topic = f"acks-{acks}"
    _create(bootstrap, topic)
    records = [(None, f"v{i}".encode()) for i in range(500)]
    _produce(bootstrap, topic, records, acks=acks)
    got = _consume(bootstrap, topic, len(records))
    assert [m.value() for m in got] == [v for _, v in records]  # type: ignore[attr-defined]


def test_keyed_ordering_over_partitions(bootstrap: str) -> None:
    topic = "keyed"
    _create(bootstrap, topic, partitions=6)
    records = [(f"key-{i % 17}".encode(), f"{i}".encode()) for i in range(6000)]
    delivered = _produce(bootstrap, topic, records)
    partitions_of_key: dict[bytes, set[int]] = {}
    assert len(delivered) == len(records)
    for key, partition, _ in delivered:
        partitions_of_key.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    got = _consume(bootstrap, topic, len(records))
    assert len(got) == len(records)
    last: dict[bytes, int] = {}
    for msg in got:
        value = int(msg.value())  # type: ignore[attr-defined]
        key = msg.key()  # type: ignore[attr-defined]
        assert value > last.get(key, -1)
        last[key] = value
    assert len({m.partition() for m in got}) > 1  # type: ignore[attr-defined]


def test_commit_and_resume(bootstrap: str) -> None:
    topic = "resume"
    _produce(bootstrap, topic, [(None, f"{i}".encode()) for i in range(100)])
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "resumers",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[object] = []
    while len(seen) < 40:
        seen.extend(m for m in consumer.consume(40 - len(seen), timeout=1) if not m.error())
    consumer.commit(message=seen[-1], asynchronous=False)  # type: ignore[arg-type]
    consumer.close()
    rest = _consume(bootstrap, topic, 60, group="resumers")
    assert [int(m.value()) for m in rest] == list(range(40, 100))  # type: ignore[attr-defined]


def test_seek_by_timestamp(bootstrap: str) -> None:
    topic = "by-time"
    producer = Producer({"bootstrap.servers": bootstrap})
    base = int(time.time() * 1000) - 100_000
    for i in range(100):
        producer.produce(topic, value=str(i).encode(), timestamp=base + i * 1000)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ts"})
    wanted = consumer.offsets_for_times([TopicPartition(topic, 0, base + 50_000)], timeout=10)
    assert wanted[0].offset == 50
    consumer.assign(wanted)
    msg = consumer.consume(1, timeout=10)[0]
    assert msg.value() == b"50"
    consumer.close()


def test_group_of_two_rebalances(bootstrap: str) -> None:
    topic = "rebalance"
    _create(bootstrap, topic, partitions=4)
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "pair",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    first = Consumer(settings)
    first.subscribe([topic])
    deadline = time.monotonic() + 30
    while not first.assignment() and time.monotonic() < deadline:
        first.poll(0.1)
    assert len(first.assignment()) == 4
    second = Consumer(settings)
    second.subscribe([topic])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        first.poll(0.1)
        second.poll(0.1)
        if len(first.assignment()) == 2 and len(second.assignment()) == 2:
            break
    assert len(first.assignment()) == 2
    assert len(second.assignment()) == 2
    second.close()  # LeaveGroup: the first member must get all partitions back promptly
    deadline = time.monotonic() + 30
    while len(first.assignment()) != 4 and time.monotonic() < deadline:
        first.poll(0.1)
    assert len(first.assignment()) == 4
    first.close()


def test_admin_topics_configs_and_partitions(bootstrap: str) -> None:
    admin = _admin(bootstrap)
    _create(bootstrap, "admin-t", partitions=2, **{"retention.ms": "3600000"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "admin-t")
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["retention.ms"].value == "3600000"
    assert not configs["retention.ms"].is_default
    for name in (
        "cleanup.policy",
        "segment.bytes",
        "max.message.bytes",
        "min.insync.replicas",
        "retention.bytes",
    ):
        assert configs[name].is_default, name
    admin.create_partitions([NewPartitions("admin-t", 3)])["admin-t"].result(30)
    assert len(admin.list_topics(timeout=10).topics["admin-t"].partitions) == 3
    bad = admin.create_topics([NewTopic("bad name!", 1, 1)])["bad name!"]
    with pytest.raises(Exception, match=r"INVALID_TOPIC|invalid"):
        bad.result(30)
    admin.delete_topics(["admin-t"])["admin-t"].result(30)
    assert "admin-t" not in admin.list_topics(timeout=10).topics


def test_single_consumer_starts_quickly(bootstrap: str) -> None:
    """Join + sync must not wait for session timeouts (measured loosely: no fixed limit)."""
    _produce(bootstrap, "quick", [(None, b"x")])
    got = _consume(bootstrap, "quick", 1, **{"session.timeout.ms": 45000})
    assert len(got) == 1


def test_restart_keeps_data_and_offsets(broker: BrokerThread) -> None:
    bootstrap = broker.bootstrap
    _produce(bootstrap, "durable", [(None, f"{i}".encode()) for i in range(300)], acks="all")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "keep",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["durable"])
    got: list[object] = []
    while len(got) < 100:
        got.extend(m for m in consumer.consume(100 - len(got), timeout=1) if not m.error())
    consumer.commit(message=got[-1], asynchronous=False)  # type: ignore[arg-type]
    consumer.close()
    broker.stop()
    from headwater.testing import embedded_broker

    with embedded_broker(broker.config.data_dir) as again:
        rest = _consume(again.bootstrap, "durable", 200, group="keep")
        assert [int(m.value()) for m in rest] == list(range(100, 300))  # type: ignore[attr-defined]
