"""The application-facing client layer against the real broker: serdes, retries, dead letters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from headwater.client import (
    Backoff,
    Delivery,
    DeliveryError,
    EventProducer,
    JsonSerde,
    SerdeError,
    StringSerde,
    add_lineage,
    lineage_headers,
    producer_config,
    read_lineage,
    serde,
)
from headwater.testing import BrokerProcess
from streams_support import create_topics, read_all


def test_event_producer_round_trip_with_delivery_reports(bootstrap: str) -> None:
    create_topics(bootstrap, {"events": 2})
    reports: list[Delivery] = []
    producer = EventProducer(bootstrap, on_delivery=reports.append)
    for i in range(100):
        producer.send("events", {"i": i}, key=f"k{i % 4}", timestamp_ms=1_700_000_000_000 + i)
    producer.flush()
    assert producer.stats.delivered == 100 and producer.stats.failed == 0
    assert len(reports) == 100 and all(r.error is None and r.offset >= 0 for r in reports)
    messages = read_all(bootstrap, "events", 100)
    assert sorted(json.loads(m.value())["i"] for m in messages) == list(range(100))
    assert {m.key() for m in messages} == {b"k0", b"k1", b"k2", b"k3"}


def test_oversized_record_goes_to_the_dead_letter_topic(bootstrap: str) -> None:
    create_topics(bootstrap, {"small": 1}, {"max.message.bytes": "2000"})
    create_topics(bootstrap, {"small-dlq": 1})
    reports: list[Delivery] = []
    producer = EventProducer(
        bootstrap,
        dead_letter_topic="small-dlq",
        on_delivery=reports.append,
        backoff=Backoff(base_s=0.01, cap_s=0.05, max_attempts=2),
        overrides={"compression.type": "none", "message.timeout.ms": 5000},
    )
    producer.send("small", {"ok": True}, key="fine")
    producer.flush()  # its own batch: a batch over the limit is refused as a whole
    producer.send("small", {"blob": "x" * 10_000}, key="too-big")
    producer.flush()
    failed = [r for r in reports if r.error is not None]
    assert len(failed) == 1 and failed[0].dead_lettered
    dead = read_all(bootstrap, "small-dlq", 1)
    assert len(dead) == 1
    headers = dict(dead[0].headers())
    assert dead[0].key() == b"too-big"
    assert headers["hw.dlq.topic"] == b"small"
    assert b"too large" in headers["hw.dlq.error"].lower() or b"size" in headers["hw.dlq.error"]
    assert json.loads(dead[0].value())["blob"] == "x" * 10_000


def test_failures_without_a_dead_letter_topic_raise_on_flush(bootstrap: str) -> None:
    create_topics(bootstrap, {"tiny": 1}, {"max.message.bytes": "2000"})
    producer = EventProducer(
        bootstrap, overrides={"compression.type": "none", "message.timeout.ms": 5000}
    )
    producer.send("tiny", {"blob": "x" * 10_000})
    with pytest.raises(DeliveryError, match="no dead-letter topic"):
        producer.flush()
    assert producer.stats.failed == 1


def test_unserializable_value_fails_at_send() -> None:
    producer = EventProducer("127.0.0.1:1")
    with pytest.raises(SerdeError, match="not JSON-serializable"):
        producer.send("t", {"when": object()})


def test_serdes_and_errors() -> None:
    assert JsonSerde().deserialize(b'{"a": 1}', "t") == {"a": 1}
    with pytest.raises(SerdeError, match="not valid JSON"):
        JsonSerde().deserialize(b"{oops", "t")
    assert JsonSerde().deserialize_many([b"1", b'"x"', b"[2]"], "t") == [1, "x", [2]]
    with pytest.raises(SerdeError):
        JsonSerde().deserialize_many([b"1", b"{bad"], "t")
    assert StringSerde().serialize(42, "t") == b"42"
    with pytest.raises(SerdeError, match="UTF-8"):
        StringSerde().deserialize(b"\xff", "t")
    with pytest.raises(SerdeError, match="not bytes"):
        serde("bytes").serialize("text", "t")
    with pytest.raises(ValueError, match="unknown serde"):
        serde("yaml")


def test_profiles_are_overridden_key_by_key() -> None:
    config = producer_config("127.0.0.1:9092", "durable", {"linger.ms": 50})
    assert config["linger.ms"] == 50
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["compression.type"] == "lz4" and config["batch.size"] >= 64 * 1024
    with pytest.raises(ValueError, match="unknown producer profile"):
        producer_config("127.0.0.1:9092", "fastest")


def test_lineage_headers_round_trip() -> None:
    headers = lineage_headers(
        source_topic="orders",
        source_partition=3,
        source_offset=42,
        transform_id="app/map-1",
        processed_at_ms=1_700_000_000_123,
    )
    merged = add_lineage([("trace", b"abc"), ("hw.source", b"old/0/1")], headers)
    assert ("trace", b"abc") in merged and ("hw.source", b"old/0/1") not in merged
    assert read_lineage(merged) == {
        "source": "orders/3/42",
        "source_topic": "orders",
        "source_partition": "3",
        "source_offset": "42",
        "transform": "app/map-1",
        "processed_at": "1700000000123",
    }


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, max_attempts=4)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)]:
        delay = backoff.delay(attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.exhausted(4) and not backoff.exhausted(3)


def test_retriable_failures_are_produced_again_after_backoff(tmp_path: Path) -> None:
    """The broker is down when the record is sent: librdkafka gives up after its message
    timeout, the producer backs off and produces again, and the record arrives once the
    broker is back."""
    broker = BrokerProcess(tmp_path / "data").start()
    bootstrap = broker.bootstrap
    create_topics(bootstrap, {"retry": 1})
    broker.stop()
    reports: list[Delivery] = []
    producer = EventProducer(
        bootstrap,
        on_delivery=reports.append,
        backoff=Backoff(base_s=0.5, cap_s=1.0, max_attempts=8),
        overrides={"message.timeout.ms": 1000, "reconnect.backoff.max.ms": 200},
    )
    producer.send("retry", {"survived": True}, key="k")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:  # let the first attempt time out while the broker is down
        producer.poll(0.1)
    broker.start()
    try:
        producer.flush(60)
        assert producer.stats.retried >= 1 and producer.stats.delivered == 1
        assert reports[-1].error is None and reports[-1].attempts >= 2
        assert [json.loads(m.value()) for m in read_all(bootstrap, "retry", 1)] == [
            {"survived": True}
        ]
    finally:
        broker.stop()
