"""Retention, DeleteRecords, group deletion, static membership and a full disk, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
)

from headwater.broker import BrokerThread
from headwater.testing import embedded_broker


def _fill(bootstrap: str, topic: str, count: int, size: int = 200) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(count):
        producer.produce(topic, value=str(i).encode().ljust(size, b"."))
        producer.poll(0)
    assert producer.flush(30) == 0


def _earliest(admin: AdminClient, topic: str) -> int:
    futures = admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()})
    return next(iter(futures.values())).result(30).offset


def test_retention_by_size_deletes_old_segments(broker: BrokerThread) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics(
        [NewTopic("ret", 1, 1, config={"segment.bytes": "4096", "retention.bytes": "8192"})]
    )["ret"].result(30)
    _fill(broker.bootstrap, "ret", 300)
    assert _earliest(admin, "ret") == 0
    deleted = broker.call(broker.broker.run_retention)
    assert deleted > 0
    earliest = _earliest(admin, "ret")
    assert earliest > 0
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "r", "auto.offset.reset": "earliest"}
    )
    consumer.assign([TopicPartition("ret", 0, 0)])
    msg = None
    while msg is None or msg.error() is not None:
        msg = consumer.poll(10)
    assert msg.offset() == earliest  # out-of-range resets to the new log start
    consumer.close()


def test_retention_by_time(broker: BrokerThread) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics(
        [NewTopic("old", 1, 1, config={"segment.bytes": "4096", "retention.ms": "1000"})]
    )["old"].result(30)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.num.messages": 1}
    )
    long_ago = int(time.time() * 1000) - 3_600_000
    for i in range(100):
        producer.produce("old", value=b"x" * 200, timestamp=long_ago + i)
        producer.poll(0)
    producer.flush(30)
    producer.produce("old", value=b"fresh")
    producer.flush(30)
    assert broker.call(broker.broker.run_retention) > 0
    assert _earliest(admin, "old") > 0


def test_delete_records_moves_log_start(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    _fill(bootstrap, "dr", 50)
    result = admin.delete_records([TopicPartition("dr", 0, 20)])
    for future in result.values():
        assert future.result(30).low_watermark == 20
    assert _earliest(admin, "dr") == 20


def test_delete_group_and_describe_cluster(bootstrap: str) -> None:
    _fill(bootstrap, "dg", 5)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "to-delete",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["dg"])
    msg = None
    while msg is None:
        msg = consumer.poll(1)
    consumer.commit(message=msg, asynchronous=False)
    consumer.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    groups = {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    assert "to-delete" in groups
    admin.delete_consumer_groups(["to-delete"])["to-delete"].result(30)
    groups = {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    assert "to-delete" not in groups
    cluster = admin.describe_cluster().result(30)
    assert cluster.cluster_id == "headwater"
    assert [n.id for n in cluster.nodes] == [1]


def test_static_member_rejoins_without_rebalance(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("static", 2, 1)])["static"].result(30)
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "statics",
        "group.instance.id": "instance-a",
        "session.timeout.ms": 6000,
    }
    first = Consumer(settings)
    first.subscribe(["static"])
    while len(first.assignment()) != 2:
        first.poll(0.1)
    first.close()
    again = Consumer(settings)
    again.subscribe(["static"])
    deadline = time.monotonic() + 30
    while len(again.assignment()) != 2 and time.monotonic() < deadline:
        again.poll(0.1)
    assert len(again.assignment()) == 2
    again.close()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_full_disk_is_a_clear_error_and_no_corruption(tmp_path: Path) -> None:
    data = tmp_path / "small-disk"
    if not _mount_tmpfs(data, "2m"):
        pytest.skip("mounting a small tmpfs needs root; the storage tests cover ENOSPC")
    try:
        with embedded_broker(data) as running:
            producer = Producer(
                {
                    "bootstrap.servers": running.bootstrap,
                    "linger.ms": 5,
                    "acks": "all",
                    "retries": 0,
                    "log_level": 0,
                }
            )
            outcomes: list[int | None] = []  # error codes, None when acknowledged
            for _ in range(40):
                producer.produce(
                    "fill",
                    value=os.urandom(100_000),
                    on_delivery=lambda err, msg: outcomes.append(err.code() if err else None),
                )
                producer.flush(30)
            errors = [e for e in outcomes if e is not None]
            acked = outcomes.count(None)
            assert errors, "the disk never filled up"
            assert errors[0] == KafkaError.KAFKA_STORAGE_ERROR
            consumer = Consumer(
                {
                    "bootstrap.servers": running.bootstrap,
                    "group.id": str(uuid.uuid4()),
                    "auto.offset.reset": "earliest",
                }
            )
            consumer.subscribe(["fill"])
            got = 0
            deadline = time.monotonic() + 30
            while got < acked and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None:
                    got += 1
            consumer.close()
            assert got == acked
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_configs_kafka_4_removed_are_dropped_at_start(tmp_path: Path) -> None:
    """A topic stored with message.format.version (gone in Kafka 4) stays alterable."""
    data = tmp_path / "d"
    with embedded_broker(data) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        admin.create_topics([NewTopic("old-configs", 1, 1)])["old-configs"].result(30)
    meta = data / "__meta" / "topics.json"
    stored = json.loads(meta.read_text())
    stored["topics"]["old-configs"]["configs"] = {"message.format.version": "2.8"}
    meta.write_text(json.dumps(stored))
    with embedded_broker(data) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        resource = ConfigResource("topic", "old-configs")
        resource.add_incremental_config(
            ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
        )
        admin.incremental_alter_configs([resource])[resource].result(30)
        entries = admin.describe_configs([ConfigResource("topic", "old-configs")])
        described = next(iter(entries.values())).result(30)
    assert described["retention.ms"].value == "60000"
    assert "message.format.version" not in described


def test_config_synonyms_name_kafkas_broker_configs(tmp_path: Path) -> None:
    """A broker-wide topic default is reported as Kafka reports log.retention.ms set in
    server.properties: STATIC_BROKER_CONFIG, then the override above it when there is one."""
    with embedded_broker(tmp_path / "d", topic_defaults={"retention.ms": "3600000"}) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        admin.create_topics([NewTopic("plain", 1, 1)])["plain"].result(30)
        config = {"retention.ms": "60000"}
        admin.create_topics([NewTopic("override", 1, 1, config=config)])["override"].result(30)
        described = {
            name: next(
                iter(admin.describe_configs([ConfigResource("topic", name)]).values())
            ).result(30)["retention.ms"]
            for name in ("plain", "override")
        }
    plain, override = described["plain"], described["override"]
    assert (plain.value, plain.source) == ("3600000", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert [(s.name, s.value) for s in plain.synonyms.values()] == [("log.retention.ms", "3600000")]
    assert override.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert [(s.name, s.value) for s in override.synonyms.values()] == [
        ("retention.ms", "60000"),
        ("log.retention.ms", "3600000"),
    ]
