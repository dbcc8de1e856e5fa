"""Transactions and idempotence with the other Python clients (aiokafka 0.14, kafka-python 3),
and confluent-kafka transactions surviving responses the broker drops on purpose.

A dropped response means the request took effect but the client never heard back, so it
retries: whatever it retries must not be applied twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewTopic as AioNewTopic
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

from headwater.broker import BrokerThread

# A bound against hanging forever, never a speed assertion.
DEADLINE_S = 60.0
PRODUCE, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 0, 24, 25, 26, 28


class _Rollback(Exception):
    """Raised inside ``async with producer.transaction()`` so aiokafka aborts it."""


# -- aiokafka ---------------------------------------------------------------------------------


async def _aio_create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [AioNewTopic(t, num_partitions=1, replication_factor=1) for t in topics]
        )
    finally:
        await admin.close()


async def _aio_send(producer: AIOKafkaProducer, topic: str, values: list[bytes]) -> None:
    futures = [await producer.send(topic, value=v) for v in values]
    await asyncio.gather(*futures)


async def _aio_read(bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
    """Values of partition 0 from the start until ``until`` arrives; anything written before
    ``until`` and visible under ``isolation`` has been returned by then."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        tp = AioTopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(DEADLINE_S):
            while until not in values:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    values.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return values


async def test_aiokafka_transactions_commit_and_abort(bootstrap: str) -> None:
    await _aio_create(bootstrap, "aio-txn")
    committed = [f"c{i}".encode() for i in range(20)]
    rolled_back = [f"r{i}".encode() for i in range(20)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id="aio-txn", enable_idempotence=True
    )
    await producer.start()
    try:
        async with producer.transaction():
            await _aio_send(producer, "aio-txn", committed)
        with pytest.raises(_Rollback):
            async with producer.transaction():
                await _aio_send(producer, "aio-txn", rolled_back)
                raise _Rollback
        await producer.begin_transaction()
        await _aio_send(producer, "aio-txn", [b"explicit-abort"])
        await producer.abort_transaction()
        async with producer.transaction():
            await _aio_send(producer, "aio-txn", [b"last"])
    finally:
        await producer.stop()
    assert await _aio_read(bootstrap, "aio-txn", "read_committed", b"last") == [
        *committed,
        b"last",
    ]
    assert await _aio_read(bootstrap, "aio-txn", "read_uncommitted", b"last") == [
        *committed,
        *rolled_back,
        b"explicit-abort",
        b"last",
    ]


async def test_aiokafka_offsets_commit_with_the_transaction(bootstrap: str) -> None:
    await _aio_create(bootstrap, "aio-src", "aio-dst")
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await plain.start()
    try:
        await _aio_send(plain, "aio-src", [str(i).encode() for i in range(60)])
    finally:
        await plain.stop()

    tp = AioTopicPartition("aio-src", 0)
    source = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    checker = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="aio-eos")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id="aio-eos", enable_idempotence=True
    )
    await source.start()
    await checker.start()
    await producer.start()
    try:
        source.assign([tp])
        await source.seek_to_beginning(tp)
        taken: list[bytes] = []
        async with asyncio.timeout(DEADLINE_S):
            while len(taken) < 30:
                batches = await source.getmany(tp, timeout_ms=500, max_records=30 - len(taken))
                taken.extend(r.value for r in batches.get(tp, []) if r.value is not None)
        with pytest.raises(_Rollback):
            async with producer.transaction():
                await _aio_send(producer, "aio-dst", [v + b"!" for v in taken])
                await producer.send_offsets_to_transaction({tp: 30}, "aio-eos")
                raise _Rollback
        assert await checker.committed(tp) is None
        async with producer.transaction():
            await _aio_send(producer, "aio-dst", [v + b"!" for v in taken])
            await producer.send_offsets_to_transaction({tp: 30}, "aio-eos")
        assert await checker.committed(tp) == 30
    finally:
        await producer.stop()
        await checker.stop()
        await source.stop()

    resumed = AIOKafkaConsumer(
        "aio-src",
        bootstrap_servers=bootstrap,
        group_id="aio-eos",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await resumed.start()
    try:
        async with asyncio.timeout(DEADLINE_S):
            first = await resumed.getone()
    finally:
        await resumed.stop()
    assert first.value == b"30"
    expected = [f"{i}!".encode() for i in range(30)]
    assert await _aio_read(bootstrap, "aio-dst", "read_committed", b"29!") == expected


# -- kafka-python -----------------------------------------------------------------------------


def _kp_read(bootstrap: str, topic: str, isolation: str, until: bytes) -> list[bytes]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation,
    )
    tp = KafkaTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    while until not in values:
        assert time.monotonic() < deadline, f"{until!r} never arrived; got {len(values)} records"
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(r.value for r in records)
    consumer.close()
    return values


@pytest.mark.parametrize("fault", [None, "drop-response"])
def test_kafka_python_idempotent_producer_writes_each_record_once(
    broker: BrokerThread, fault: str | None
) -> None:
    topic = f"kp-idem-{fault or 'clean'}"
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    producer.send(topic, value=b"warm-up").get(30)  # connected, metadata known
    if fault is not None:
        broker.call(lambda: broker.broker.faults.__setitem__(PRODUCE, fault))
    values = [str(i).encode() for i in range(1000)]
    futures = [
        producer.send(topic, key=str(i % 10).encode(), value=v) for i, v in enumerate(values)
    ]
    producer.flush(60)
    offsets = [f.get(30).offset for f in futures]
    producer.close()
    assert broker.broker.faults == {}, "the fault hook never fired"
    assert offsets == list(range(1, 1001))
    assert _kp_read(broker.bootstrap, topic, "read_uncommitted", b"999") == [b"warm-up", *values]


def test_kafka_python_transactional_producer(bootstrap: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-txn")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(10):
        producer.send("kp-txn", value=f"c{i}".encode())
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(10):
        producer.send("kp-txn", value=f"a{i}".encode())
    producer.flush(30)
    producer.abort_transaction()
    producer.begin_transaction()
    producer.send("kp-txn", value=b"last")
    producer.commit_transaction()
    producer.close()
    committed = [f"c{i}".encode() for i in range(10)]
    assert _kp_read(bootstrap, "kp-txn", "read_committed", b"last") == [*committed, b"last"]
    assert len(_kp_read(bootstrap, "kp-txn", "read_uncommitted", b"last")) == 21


# -- confluent-kafka with dropped responses ---------------------------------------------------


def _create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    )
    for future in futures.values():
        future.result(30)


def _read_committed(bootstrap: str, topic: str, partitions: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    pending = set(range(partitions))
    values: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    while pending:
        assert time.monotonic() < deadline, f"never reached the end of partitions {pending}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            pending.discard(msg.partition() or 0)
            continue
        values.append(msg.value() or b"")
    consumer.close()
    return values


def _commit(producer: Producer) -> None:
    """commit_transaction, called again after a retriable error as librdkafka documents."""
    for _ in range(10):
        try:
            producer.commit_transaction(30)
            return
        except KafkaException as exc:
            if not exc.args[0].retriable():
                raise
    raise AssertionError("commit_transaction kept failing with retriable errors")


@pytest.mark.parametrize(
    "api_key",
    [PRODUCE, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, TXN_OFFSET_COMMIT, END_TXN],
    ids=["Produce", "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn"],
)
def test_dropped_response_in_a_transaction_is_not_applied_twice(
    broker: BrokerThread, api_key: int
) -> None:
    bootstrap = broker.bootstrap
    _create(bootstrap, {"drop-src": 1, "drop-out": 2})
    plain = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(100):
        plain.produce("drop-src", str(i).encode())
    assert plain.flush(30) == 0
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": "drop-g"})
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": "t-drop",
            "linger.ms": 5,
            "log_level": 0,
        }
    )
    producer.init_transactions(30)
    # Warm up: connections, metadata and the coordinator are known before the fault is set.
    producer.begin_transaction()
    producer.produce("drop-out", b"warm-up", partition=0)
    producer.send_offsets_to_transaction(
        [TopicPartition("drop-src", 0, 1)], group.consumer_group_metadata(), 30
    )
    _commit(producer)

    broker.call(lambda: broker.broker.faults.__setitem__(api_key, "drop-response"))
    values = [f"v{i}".encode() for i in range(100)]
    producer.begin_transaction()
    for i, value in enumerate(values):
        producer.produce("drop-out", value, partition=i % 2)
    producer.send_offsets_to_transaction(
        [TopicPartition("drop-src", 0, 100)], group.consumer_group_metadata(), 30
    )
    _commit(producer)
    assert broker.broker.faults == {}, "the fault hook never fired"

    out = _read_committed(bootstrap, "drop-out", 2)
    assert Counter(out) == Counter([b"warm-up", *values])
    committed = group.committed([TopicPartition("drop-src", 0)], timeout=30)
    assert committed[0].offset == 100
    group.close()
