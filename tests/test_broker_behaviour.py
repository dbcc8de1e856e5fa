"""Broker behaviour that clients rely on: long-poll wake-up, compaction, LogAppendTime, bounds,
and configuration from file, environment and flags."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.broker import BrokerThread, load_config
from headwater.testing import embedded_broker
from rawkafka import connect, encode_request, read_frame


def test_empty_fetch_wakes_when_data_arrives(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("wake", 1, 1)])["wake"].result(30)
    with connect(bootstrap) as sock:
        # A long max wait: if the broker did not wake on append, the socket timeout would fire.
        sock.settimeout(60)
        sock.sendall(
            encode_request(
                1,
                12,
                {
                    "replica_id": -1,
                    "max_wait": 600_000,
                    "min_bytes": 1,
                    "max_bytes": 1 << 20,
                    "topics": [
                        {
                            "topic": "wake",
                            "partitions": [
                                {
                                    "partition": 0,
                                    "fetch_offset": 0,
                                    "partition_max_bytes": 1 << 20,
                                    "current_leader_epoch": -1,
                                    "log_start_offset": -1,
                                }
                            ],
                        }
                    ],
                },
            )
        )

        def later() -> None:
            time.sleep(0.3)
            producer = Producer({"bootstrap.servers": bootstrap})
            producer.produce("wake", value=b"hello")
            producer.flush(30)

        sender = threading.Thread(target=later)
        sender.start()
        frame = read_frame(sock)
        sender.join()
    assert frame is not None
    assert b"hello" in frame


def test_compaction_keeps_latest_value_per_key(broker: BrokerThread) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics(
        [NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "2048"})]
    )["compacted"].result(30)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "batch.num.messages": 1, "linger.ms": 0}
    )
    for round_ in range(20):
        for key in ("a", "b", "c"):
            producer.produce("compacted", key=key.encode(), value=f"{key}{round_}".encode())
        producer.flush(30)
    producer.produce("compacted", key=b"b", value=None)  # tombstone
    producer.produce("compacted", key=b"z", value=b"tail")
    producer.flush(30)
    broker.call(broker.broker.run_retention)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": str(uuid.uuid4()),
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe(["compacted"])
    latest: dict[bytes, bytes | None] = {}
    total = 0
    while True:
        msg = consumer.poll(10)
        assert msg is not None
        if msg.error() is not None:
            break
        total += 1
        latest[msg.key()] = msg.value()
    consumer.close()
    assert latest[b"a"] == b"a19" and latest[b"c"] == b"c19"
    assert latest[b"b"] is None  # the tombstone stays until delete.retention.ms passes
    assert total < 62, "compaction removed nothing"


def test_log_append_time_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics(
        [NewTopic("lat", 1, 1, config={"message.timestamp.type": "LogAppendTime"})]
    )["lat"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("lat", value=b"x", timestamp=1_000)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lat"})
    consumer.assign([TopicPartition("lat", 0, 0)])
    msg = None
    while msg is None:
        msg = consumer.poll(10)
    kind, stamp = msg.timestamp()
    consumer.close()
    assert stamp > 1_000_000_000_000  # the broker's clock, not the client's 1,000
    assert kind == 2  # TIMESTAMP_LOG_APPEND_TIME


def test_connections_max_is_enforced(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "d", connections_max=2) as running:
        host, port = running.bootstrap.split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(2)]
        for sock in held:  # make sure both are registered before the third arrives
            sock.sendall(encode_request(18, 0, {}))
            assert read_frame(sock) is not None
        extra = socket.create_connection((host, int(port)), timeout=10)
        extra.sendall(encode_request(18, 0, {}))
        assert read_frame(extra) is None
        extra.close()
        for sock in held:
            sock.close()


def test_config_precedence(tmp_path: Path) -> None:
    path = tmp_path / "headwater.toml"
    path.write_text(
        '[broker]\nport = 1111\nnum_partitions = 3\nfsync_policy = "always"\n'
        '[broker.topic_defaults]\n"retention.ms" = "1000"\n'
    )
    config = load_config(path, {"port": 3333}, environ={"HEADWATER_NUM_PARTITIONS": "5"})
    assert config.port == 3333  # flag beats env and file
    assert config.num_partitions == 5  # env beats file
    assert config.fsync_policy == "always"
    assert config.topic_defaults == {"retention.ms": "1000"}
    with pytest.raises(ValueError, match="fsync_policy"):
        load_config(None, {"fsync_policy": "sometimes"}, environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[broker]\nportt = 1\n")
    with pytest.raises(ValueError, match="unknown broker setting"):
        load_config(bad, environ={})
