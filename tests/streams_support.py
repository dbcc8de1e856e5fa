"""Helpers for streams tests: produce JSON, run an app in a thread, read a topic fully."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.streams import App, AppStats


def create_topics(
    bootstrap: str, topics: dict[str, int], configs: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=n, config=configs or {}) for t, n in topics.items()]
    )
    for future in futures.values():
        future.result(10)


def produce_json(
    bootstrap: str, topic: str, records: list[tuple[str | None, Any]], **kwargs: Any
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value in records:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        producer.produce(topic, raw, key.encode() if key is not None else None, **kwargs)
    assert producer.flush(30) == 0


def read_all(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    isolation: str = "read_committed",
    timeout_s: float = 60.0,
) -> list[Any]:
    """Read ``topic`` from the start until ``expected`` records arrived (or the deadline)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is None:
                    out.append(msg)
        # Anything beyond the expected count would be a duplicate: give it a moment to show.
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            for msg in consumer.consume(1000, timeout=0.1):
                if msg.error() is None:
                    out.append(msg)
    finally:
        consumer.close()
    return out


@contextmanager
def running(app: App) -> Iterator[Callable[[], AppStats | None]]:
    """Run ``app`` in a thread for the duration of the block; re-raise its error at the end."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            app.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield lambda: app.stats
    finally:
        app.stop()
        thread.join(60)
    if errors:
        raise errors[0]


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)
