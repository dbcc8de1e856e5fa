"""KIP-848 consumer groups end to end: librdkafka with ``group.protocol=consumer``.

confluent-kafka's wheel bundles librdkafka 2.16, where the consumer protocol is GA (from 2.10).
The broker hands out heartbeat intervals of 200 ms here so partitions move in well under a
second; everything else is as a client would see it from Apache Kafka 4.4.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupType,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
    libversion,
)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from headwater.testing import embedded_broker
from rawkafka import call, connect

PARTITIONS = 6


@pytest.fixture
def fast_groups(tmp_path: Path) -> Iterator[str]:
    settings = {
        "group_consumer_heartbeat_interval_ms": 200,
        "group_consumer_min_heartbeat_interval_ms": 100,
        "group_consumer_session_timeout_ms": 6000,
        "group_consumer_min_session_timeout_ms": 1000,
    }
    with embedded_broker(tmp_path / "data", **settings) as running:
        yield running.bootstrap


def test_librdkafka_speaks_the_consumer_protocol() -> None:
    assert libversion()[1] >= 0x020A0000, f"KIP-848 needs librdkafka 2.10+, got {libversion()}"


def _create(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions)])[name].result(30)


def _produce(bootstrap: str, topic: str, values: range) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, key=str(value).encode(), value=str(value).encode())
    assert producer.flush(30) == 0


def _consumer(bootstrap: str, group: str, **config: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": "consumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )


class Tracker:
    """Polls consumers in turn, commits each record before the next and remembers who got what."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.by_consumer: dict[int, list[int]] = {}

    def poll(self, consumer: Consumer) -> None:
        msg: Message | None = consumer.poll(0.05)
        if msg is None:
            return
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            return
        value = int(msg.value() or b"-1")
        self.seen.append(value)
        self.by_consumer.setdefault(id(consumer), []).append(value)
        consumer.commit(message=msg, asynchronous=False)

    def until(self, consumers: list[Consumer], done: object, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for consumer in consumers:
                self.poll(consumer)
            if callable(done) and done():
                return
        raise AssertionError(f"timed out; seen {len(self.seen)} records")


def _assigned(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def test_three_consumers_join_and_leave_without_loss_or_duplicates(fast_groups: str) -> None:
    bootstrap = fast_groups
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    _create(bootstrap, topic)
    track = Tracker()
    a = _consumer(bootstrap, group)
    a.subscribe([topic])
    _produce(bootstrap, topic, range(0, 200))
    track.until([a], lambda: len(track.seen) >= 200)
    assert _assigned(a) == set(range(PARTITIONS))

    b, c = _consumer(bootstrap, group), _consumer(bootstrap, group)
    b.subscribe([topic])
    c.subscribe([topic])
    everyone = [a, b, c]

    def balanced() -> bool:
        sizes = sorted(len(_assigned(x)) for x in everyone)
        return sizes == [2, 2, 2]

    track.until(everyone, balanced)
    owned = [_assigned(x) for x in everyone]
    assert set().union(*owned) == set(range(PARTITIONS)) and sum(map(len, owned)) == PARTITIONS
    _produce(bootstrap, topic, range(200, 500))
    track.until(everyone, lambda: len(set(track.seen)) >= 500)
    assert all(track.by_consumer.get(id(x)) for x in everyone), "every member consumed"

    c.close()
    track.until([a, b], lambda: len(_assigned(a)) + len(_assigned(b)) == PARTITIONS)
    _produce(bootstrap, topic, range(500, 700))
    b.close()
    track.until([a], lambda: len(_assigned(a)) == PARTITIONS)
    _produce(bootstrap, topic, range(700, 800))
    track.until([a], lambda: len(set(track.seen)) >= 800)
    a.close()
    assert sorted(track.seen) == list(range(800)), "each record exactly once"


def test_committed_offsets_are_resumed(fast_groups: str) -> None:
    bootstrap = fast_groups
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    _create(bootstrap, topic, partitions=2)
    _produce(bootstrap, topic, range(100))
    track = Tracker()
    first = _consumer(bootstrap, group)
    first.subscribe([topic])
    track.until([first], lambda: len(track.seen) >= 40)
    first.close()
    resumed = _consumer(bootstrap, group)
    resumed.subscribe([topic])
    track.until([resumed], lambda: len(set(track.seen)) >= 100)
    committed = resumed.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
    assert sum(tp.offset for tp in committed) == 100
    resumed.close()
    assert sorted(track.seen) == list(range(100))


def test_regex_subscription_picks_up_new_topics_and_partitions(fast_groups: str) -> None:
    bootstrap = fast_groups
    prefix = f"rx{uuid.uuid4().hex[:6]}"
    _create(bootstrap, f"{prefix}-a", partitions=1)
    consumer = _consumer(bootstrap, f"g-{prefix}", **{"topic.metadata.refresh.interval.ms": 500})
    consumer.subscribe([f"^{prefix}-.*"])
    track = Tracker()
    track.until([consumer], lambda: {tp.topic for tp in consumer.assignment()} == {f"{prefix}-a"})
    _create(bootstrap, f"{prefix}-b", partitions=2)
    track.until([consumer], lambda: len(consumer.assignment()) == 3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_partitions([NewPartitions(f"{prefix}-b", 3)])[f"{prefix}-b"].result(30)
    track.until([consumer], lambda: len(consumer.assignment()) == 4)
    _produce(bootstrap, f"{prefix}-b", range(30))
    track.until([consumer], lambda: len(track.seen) >= 30)
    consumer.close()


def test_admin_sees_consumer_groups(fast_groups: str) -> None:
    bootstrap = fast_groups
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    _create(bootstrap, topic, partitions=2)
    consumer = _consumer(bootstrap, group)
    consumer.subscribe([topic])
    Tracker().until([consumer], lambda: len(consumer.assignment()) == 2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(30)
    assert described.type == ConsumerGroupType.CONSUMER
    assert described.state == ConsumerGroupState.STABLE
    assert [len(m.assignment.topic_partitions) for m in described.members] == [2]
    listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(30)
    assert group in {g.group_id for g in listed.valid}
    classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(30)
    assert group not in {g.group_id for g in classic_only.valid}
    consumer.close()


def test_classic_consumer_cannot_join_a_consumer_group(fast_groups: str) -> None:
    bootstrap = fast_groups
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    _create(bootstrap, topic, partitions=1)
    modern = _consumer(bootstrap, group)
    modern.subscribe([topic])
    Tracker().until([modern], lambda: len(modern.assignment()) == 1)
    errors: list[KafkaError] = []
    classic = _consumer(
        bootstrap, group, **{"group.protocol": "classic", "error_cb": errors.append}
    )
    classic.subscribe([topic])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not errors:
        msg = classic.poll(0.1)
        if msg is not None and msg.error() is not None:
            errors.append(msg.error())
    assert any(e.code() == KafkaError.INCONSISTENT_GROUP_PROTOCOL for e in errors), errors
    classic.close()
    modern.close()


def test_first_heartbeat_of_a_new_broker_sees_every_topic(fast_groups: str) -> None:
    """The very first member is assigned at once, not after the next metadata round."""
    _create(fast_groups, "first", partitions=3)
    with connect(fast_groups) as sock:
        joined = call(
            sock,
            68,
            1,
            {
                "group_id": "g-first",
                "member_id": "m1",
                "member_epoch": 0,
                "rebalance_timeout": 30_000,
                "subscribed_topic_names": ["first"],
                "topic_partitions": [],
            },
        )
        interval_ms = joined.heartbeat_interval.total_seconds() * 1000
        assert (joined.error_code, joined.member_epoch, interval_ms) == (0, 1, 200)
        assert joined.assignment is not None
        assert [tuple(tp.partitions) for tp in joined.assignment.topic_partitions] == [(0, 1, 2)]
        described = call(sock, 69, 1, {"group_ids": ["g-first", "nope"]})
        first, nope = described.groups
        assert (first.group_state, first.assignor_name, len(first.members)) == (
            "Stable",
            "uniform",
            1,
        )
        assert first.members[0].member_type == 1
        assert (nope.error_code, nope.group_state) == (69, "")
