"""Offset queries that ride out a partition changing leader.

librdkafka answers a watermark query with the leader's error as it is: while a failed broker
is being fenced, or while a new topic reaches every broker, that is NOT_LEADER_FOR_PARTITION,
LEADER_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION for a few seconds. Those mean "ask again
shortly", so callers that must have an answer (state restore, table start-up) ask again until
their deadline instead of failing on the first one. A broker that drops out of Metadata also
has its connection handle destroyed, which fails whatever was queued on it with
_DESTROY_BROKER: the same story, told by librdkafka.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from headwater.client._backoff import Backoff

T = TypeVar("T")

#: Longest wait for one answer; a leader that answers at all answers in milliseconds.
ATTEMPT_TIMEOUT_S = 2.0

#: Errors that a leader election or metadata propagation clears by itself.
TRANSIENT_CODES = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        # A broker that leaves Metadata has its handle destroyed, failing what was queued on it.
        KafkaError._DESTROY_BROKER,
        KafkaError._NODE_UPDATE,
        KafkaError._RETRY,
        KafkaError._WAIT_COORD,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._WAIT_CACHE,
    }
)


def is_transient(error: KafkaError) -> bool:
    """True for errors a leader failover or a topic still propagating explains."""
    return error.retriable() or error.code() in TRANSIENT_CODES


def watermarks(
    consumer: Consumer, topic: str, partition: int, timeout_s: float = 30.0
) -> tuple[int, int]:
    """(low, high) offsets of ``topic[partition]``, asked again while the leader moves.

    Each attempt waits at most ``ATTEMPT_TIMEOUT_S``: a query sent to a leader that has gone
    is never answered, and a fresh look at Metadata between attempts finds the new one.
    """

    def ask(wait_s: float) -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=max(0.2, min(ATTEMPT_TIMEOUT_S, wait_s))
        )
        return int(low), int(high)

    # Refreshed even when giving up, so that the caller's next call finds the leader.
    return _until_answered(ask, timeout_s, lambda: _refresh(consumer, topic))


def committed_offsets(
    consumer: Consumer, partitions: list[TopicPartition], timeout_s: float = 60.0
) -> list[TopicPartition]:
    """The group's committed offsets for ``partitions``, asked again while the group
    coordinator moves (a rebalance callback that raised would stop the consumer)."""

    def ask(wait_s: float) -> list[TopicPartition]:
        return list(consumer.committed(partitions, timeout=max(0.5, min(10.0, wait_s))))

    return _until_answered(ask, timeout_s, lambda: None)


def _until_answered(
    ask: Callable[[float], T], timeout_s: float, after_transient: Callable[[], None]
) -> T:
    """``ask(seconds left)`` again, with backoff, while it fails with a transient error."""
    deadline = time.monotonic() + timeout_s
    backoff = Backoff(base_s=0.1, cap_s=1.0)
    attempt = 0
    while True:
        try:
            return ask(deadline - time.monotonic())
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, KafkaError) or not is_transient(error):
                raise
            after_transient()
            if time.monotonic() >= deadline:
                raise
        attempt += 1
        time.sleep(min(backoff.delay(attempt), max(0.0, deadline - time.monotonic())))


def _refresh(consumer: Consumer, topic: str) -> None:
    """Ask for ``topic``'s Metadata now.

    librdkafka looks the leader up in its metadata cache, and a client that never subscribed
    to the topic does not refresh that entry by itself: one cached while the partition had no
    leader keeps answering "Local: Unknown partition" long after the cluster has recovered.
    """
    with contextlib.suppress(KafkaException):
        consumer.list_topics(topic, timeout=ATTEMPT_TIMEOUT_S)


def read_to_end(consumer: Consumer, committed: dict[tuple[str, int], int]) -> bool:
    """True when ``consumer`` has read every partition it owns up to the partition's end.

    The end is librdkafka's cached high watermark, which under ``read_committed`` is the last
    stable offset, and the position skips transaction markers and aborted records, so a
    consumer of a transactional topic reaches it exactly. A partition nothing was read from
    yet has no position: its group's committed offset stands in, asked for once and kept in
    ``committed`` (which callers also update as they commit). Otherwise only cached values are
    read, so a loop can ask every second.
    """
    try:
        assignment = consumer.assignment()
        if not assignment:
            return False
        positions = consumer.position(assignment)
        unknown = [
            tp for tp in positions if tp.offset < 0 and (tp.topic, tp.partition) not in committed
        ]
        if unknown:
            for tp in consumer.committed(unknown, timeout=5):
                committed[(tp.topic, tp.partition)] = tp.offset
        for tp in positions:
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0:
                return False  # no fetch answer yet: the end is unknown
            done = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            if done < high and (done >= 0 or low is None or high > low):
                return False
    except KafkaException:
        return False
    return True
