"""A producer for applications: serializers, retries with backoff, surfaced delivery reports.

librdkafka already retries inside ``message.timeout.ms``; this layer adds what it does not:
records whose delivery failed with a retriable error are produced again after an exponential
backoff, records that keep failing go to a dead-letter topic (when one is configured), and
every failure is reported to the caller, by callback and by :meth:`EventProducer.flush`
raising, never swallowed.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message

from headwater.client._backoff import Backoff
from headwater.client._dlq import DeadLetterQueue
from headwater.client._factories import new_producer
from headwater.client._io import DeliveryError
from headwater.client._serde import JsonSerde, Serde, StringSerde

DeliveryCallback = Callable[["Delivery"], None]

# Failures that say "not now" rather than "never": librdkafka already retried inside
# message.timeout.ms, so these mean the cluster was unreachable or leaderless for that long.
# Producing again may duplicate a record whose first attempt was written after all: this
# layer is at-least-once, as any retry above the client is.
_TRANSIENT_CODES = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


def _transient(err: KafkaError) -> bool:
    return bool(err.retriable()) or err.code() in _TRANSIENT_CODES


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one record: acknowledged (``error`` None) or finally failed."""

    topic: str
    partition: int
    offset: int
    error: str | None
    attempts: int
    dead_lettered: bool = False


@dataclass(slots=True)
class ProducerStats:
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dead_lettered: int = 0


@dataclass(slots=True)
class _Pending:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    partition: int | None
    timestamp: int | None
    attempts: int = 1
    retry_at: float = 0.0
    failures: list[str] = field(default_factory=list)


class EventProducer:
    """Serialize and produce application events with the retries and reports a pipeline needs."""

    def __init__(
        self,
        bootstrap: str,
        *,
        profile: str = "durable",
        overrides: Mapping[str, Any] | None = None,
        key_serde: Serde | None = None,
        value_serde: Serde | None = None,
        backoff: Backoff | None = None,
        dead_letter_topic: str | None = None,
        on_delivery: DeliveryCallback | None = None,
        stage: str = "producer",
    ) -> None:
        self.producer = new_producer(bootstrap, profile, overrides)
        self.key_serde = key_serde or StringSerde()
        self.value_serde = value_serde or JsonSerde()
        self.backoff = backoff or Backoff()
        self.on_delivery = on_delivery
        self.stats = ProducerStats()
        self.dead_letters = (
            DeadLetterQueue(self.producer, dead_letter_topic, stage) if dead_letter_topic else None
        )
        self._retries: list[tuple[float, int, _Pending]] = []
        self._sequence = itertools.count()
        self._errors: list[str] = []

    def send(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Serialize and queue one record; serialization errors raise ``SerdeError`` at once."""
        pending = _Pending(
            topic,
            self.key_serde.serialize(key, topic),
            self.value_serde.serialize(value, topic),
            headers,
            partition,
            timestamp_ms,
        )
        self._produce(pending)
        self.stats.sent += 1

    def _produce(self, pending: _Pending) -> None:
        kwargs: dict[str, Any] = {
            "key": pending.key,
            "value": pending.value,
            "on_delivery": lambda err, msg: self._delivered(pending, err, msg),
        }
        if pending.headers:
            kwargs["headers"] = pending.headers
        if pending.partition is not None:
            kwargs["partition"] = pending.partition
        if pending.timestamp is not None:
            kwargs["timestamp"] = pending.timestamp
        while True:
            try:
                self.producer.produce(pending.topic, **kwargs)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self.producer.poll(0.05)

    def _delivered(self, pending: _Pending, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.delivered += 1
            if self.on_delivery is not None:
                self.on_delivery(
                    Delivery(
                        msg.topic() or "",
                        msg.partition() or 0,
                        msg.offset() or 0,
                        None,
                        pending.attempts,
                    )
                )
            return
        pending.failures.append(err.str())
        if _transient(err) and not self.backoff.exhausted(pending.attempts):
            pending.attempts += 1
            self.stats.retried += 1
            due = time.monotonic() + self.backoff.delay(pending.attempts - 1)
            heapq.heappush(self._retries, (due, next(self._sequence), pending))
            return
        self._give_up(pending, err.str())

    def _give_up(self, pending: _Pending, reason: str) -> None:
        dead = False
        if self.dead_letters is not None:
            self.dead_letters.send(
                _Source(
                    pending.topic, pending.partition, pending.key, pending.value, pending.headers
                ),
                f"{reason} after {pending.attempts} attempts",
            )
            self.stats.dead_lettered += 1
            dead = True
        else:
            self.stats.failed += 1
            self._errors.append(f"{pending.topic}: {reason}")
        if self.on_delivery is not None:
            partition = -1 if pending.partition is None else pending.partition
            self.on_delivery(Delivery(pending.topic, partition, -1, reason, pending.attempts, dead))

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports and due retries; returns the number of reports served."""
        served = int(self.producer.poll(timeout))
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, pending = heapq.heappop(self._retries)
            self._produce(pending)
        return served

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until everything is acknowledged or finally failed; raise if any failed."""
        deadline = time.monotonic() + timeout
        while True:
            self.producer.flush(max(0.0, min(0.5, deadline - time.monotonic())))
            self.poll(0)  # may produce due retries again
            remaining = len(self.producer)
            if remaining == 0 and not self._retries:
                break
            if time.monotonic() >= deadline:
                raise DeliveryError(
                    f"{remaining + len(self._retries)} records were not acknowledged within "
                    f"{timeout:g} s; is the broker reachable?"
                )
            if self._retries and remaining == 0:
                time.sleep(max(0.0, min(self._retries[0][0] - time.monotonic(), 0.5)))
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryError(
                f"{len(errors)} records failed and no dead-letter topic is configured; "
                f"first error: {errors[0]}"
            )

    def close(self, timeout: float = 60.0) -> None:
        self.flush(timeout)


@dataclass(frozen=True, slots=True)
class _Source:
    """A record that never reached the broker, described for the dead-letter headers."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    offset: int = -1
