"""Produce: records over max.message.bytes, timestamps outside message.timestamp.*.max.ms,
append times of LogAppendTime topics, corrupt batches and invalid acks."""

from __future__ import annotations

import time
from typing import Any

from conformance._harness import Observation, Target, error_name, plain, scenario
from headwater.protocol import NewRecord, build_batch

HOUR_MS = 3_600_000


def _batch(timestamps: list[int], *, compression: int = 0) -> bytes:
    records = [NewRecord(None, b"v", ts) for ts in timestamps]
    return bytes(build_batch(records, compression=compression))


def _answer(t: Target, topic: str, batch: bytes) -> dict[str, Any]:
    answer = t.produce_raw(topic, batch)
    answer.pop("index")
    return answer


@scenario
def record_too_large(t: Target) -> Observation:
    """A 4 KiB record to a topic with max.message.bytes=1024, through confluent-kafka and as a
    raw batch; a small record still goes through."""
    name = t.create_topic("small", configs={"max.message.bytes": "1024"})
    producer = t.producer(**{"linger.ms": 0})
    seen: list[str] = []
    producer.produce(name, value=b"x" * 4096, on_delivery=lambda e, m: seen.append(error_name(e)))
    producer.produce(name, value=b"ok", on_delivery=lambda e, m: seen.append(error_name(e)))
    producer.flush(30)
    raw = _answer(t, name, bytes(build_batch([NewRecord(None, b"y" * 2048, 1000)])))
    return {"client": seen, "raw": raw}


@scenario
def timestamp_in_future(t: Target) -> Observation:
    """Raw batches with records 2 and 3 hours ahead of the broker's clock (default
    message.timestamp.after.max.ms), compressed and not, and one 30 minutes ahead."""
    name = t.create_topic("future")
    now = int(time.time() * 1000)
    return {
        "two_of_three_late": _answer(t, name, _batch([now, now + 2 * HOUR_MS, now + 3 * HOUR_MS])),
        "gzip_one_late": _answer(t, name, _batch([now, now + 2 * HOUR_MS], compression=1)),
        "half_hour_ahead": _answer(t, name, _batch([now + HOUR_MS // 2])),
        "year_1970": _answer(t, name, _batch([1000])),
    }


@scenario
def timestamp_too_old(t: Target) -> Observation:
    """Raw batches to a topic with message.timestamp.before.max.ms=60000: records from 1970
    and from two minutes ago, after one from now."""
    name = t.create_topic("past", configs={"message.timestamp.before.max.ms": "60000"})
    now = int(time.time() * 1000)
    return {"old": _answer(t, name, _batch([now, 1000, now - 120_000]))}


@scenario
def log_append_time(t: Target) -> Observation:
    """A raw batch stamped 2 hours ahead to a topic with message.timestamp.type=LogAppendTime:
    accepted, and the answer carries the append time."""
    name = t.create_topic("append", configs={"message.timestamp.type": "LogAppendTime"})
    now = int(time.time() * 1000)
    return {"produce": _answer(t, name, _batch([now + 2 * HOUR_MS]))}


@scenario
def corrupt_batch(t: Target) -> Observation:
    """A raw batch whose last byte is flipped after its CRC was computed."""
    name = t.create_topic("crc")
    batch = bytearray(build_batch([NewRecord(None, b"value", 1000)]))
    batch[-1] ^= 0xFF
    return {"produce": _answer(t, name, bytes(batch))}


@scenario
def invalid_acks(t: Target) -> Observation:
    """A raw Produce v9 with acks=2."""
    name = t.create_topic("acks")
    response = t.call(
        0,
        9,
        {
            "transactional_id": None,
            "acks": 2,
            "timeout": 1000,
            "topic_data": [
                {"name": name, "partition_data": [{"index": 0, "records": _batch([1000])}]}
            ],
        },
    )
    answer: dict[str, Any] = plain(response)
    return answer
