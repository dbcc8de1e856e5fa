"""Producing and consuming through confluent-kafka with delivery errors surfaced."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from headwater.client._profiles import consumer_config, producer_config


class DeliveryError(RuntimeError):
    """Records the cluster did not acknowledge; the message names the first error."""


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def produce_all(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    profile: str = "durable",
    overrides: dict[str, Any] | None = None,
    partition: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Produce every (key, value) and wait for all acknowledgements; returns the count.

    ``on_progress`` is called with the number of records handed to the client so far, every
    1,000 records, so long runs can show progress.
    """
    producer = Producer(producer_config(bootstrap, profile, overrides))
    failures: list[str] = []
    sent = 0

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err.str())

    for key, value in records:
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        producer.poll(0)
        if on_progress is not None and sent % 1000 == 0:
            on_progress(sent)
    remaining = producer.flush(60)
    if remaining:
        raise DeliveryError(f"{remaining} records were not acknowledged within 60 s")
    if failures:
        raise DeliveryError(f"{len(failures)} records failed; first error: {failures[0]}")
    return sent


def consume(
    bootstrap: str,
    topic: str,
    *,
    group_id: str | None = None,
    start: str = "beginning",
    offset: int | None = None,
    timestamp_ms: int | None = None,
    partitions: list[int] | None = None,
    max_records: int | None = None,
    idle_timeout_s: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> Iterator[ConsumedRecord]:
    """Yield records from ``topic``; stops after max_records or idle_timeout_s without data.

    With a group, partitions come from the group and committed offsets win; without one,
    the consumer assigns partitions itself and starts at beginning, end, offset or timestamp.
    """
    extra = dict(overrides or {})
    extra.setdefault("auto.offset.reset", "latest" if start == "end" else "earliest")
    consumer = Consumer(consumer_config(bootstrap, group_id, extra))
    try:
        if group_id is not None and partitions is None:
            consumer.subscribe([topic])
        else:
            metadata = consumer.list_topics(topic, timeout=10)
            known = metadata.topics.get(topic)
            if known is None or known.error is not None:
                raise RuntimeError(f"topic {topic!r} does not exist")
            chosen = partitions if partitions is not None else sorted(known.partitions)
            if timestamp_ms is not None:
                wanted = [TopicPartition(topic, p, timestamp_ms) for p in chosen]
                assignment = consumer.offsets_for_times(wanted, timeout=10)
            else:
                if offset is not None:
                    position = offset
                else:
                    position = OFFSET_END if start == "end" else OFFSET_BEGINNING
                assignment = [TopicPartition(topic, p, position) for p in chosen]
            consumer.assign(assignment)
        yield from _poll(consumer, max_records, idle_timeout_s)
    finally:
        consumer.close()


def _headers(msg: Message) -> list[tuple[str, bytes | None]]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


def _poll(
    consumer: Consumer, max_records: int | None, idle_timeout_s: float | None
) -> Iterator[ConsumedRecord]:
    count = 0
    last_data = time.monotonic()
    while max_records is None or count < max_records:
        batch = consumer.consume(500, timeout=0.2)
        if not batch:
            if idle_timeout_s is not None and time.monotonic() - last_data > idle_timeout_s:
                return
            continue
        last_data = time.monotonic()
        for msg in batch:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consume failed: {err.str()}")
            ts = msg.timestamp()[1]
            yield ConsumedRecord(
                topic=msg.topic() or "",
                partition=msg.partition() or 0,
                offset=msg.offset() or 0,
                timestamp_ms=ts,
                key=msg.key(),
                value=msg.value(),
                headers=_headers(msg),
            )
            count += 1
            if max_records is not None and count >= max_records:
                return
