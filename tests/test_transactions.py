"""Kafka transactions with confluent-kafka (librdkafka 2.x) and raw requests over real
sockets: atomic commit and abort over many partitions, the last stable offset, transactional
offset commits (and KIP-447 generation fencing), exactly-once consume-transform-produce, zombie
fencing, timeouts, the KIP-890 late-produce defence, restarts (output and offsets stay one
atomic unit across them) and the admin APIs that show open transactions.

Every expectation is standard Apache Kafka behaviour, so the same checks pass against a
Kafka cluster.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.broker import BrokerThread
from headwater.protocol import NewRecord, build_batch
from headwater.testing import BrokerProcess, embedded_broker
from rawkafka import call, connect, encode_request, read_frame, txn_offset_commit

# A bound against hanging forever, never a speed assertion.
DEADLINE_S = 60.0
FENCED = {
    KafkaError._FENCED,
    KafkaError._FATAL,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
}
STALE_MEMBER = {
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_INSTANCE_ID,
}
TRANSACTIONAL_ID_NOT_FOUND = 105
READ_UNCOMMITTED, READ_COMMITTED = 0, 1


class Rec(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def _rec(msg: Message) -> Rec:
    topic, partition, offset, value = msg.topic(), msg.partition(), msg.offset(), msg.value()
    assert topic is not None and partition is not None and offset is not None
    assert value is not None
    return Rec(topic, partition, offset, msg.key(), value)


def _create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    )
    for future in futures.values():
        future.result(30)


def _read(bootstrap: str, topics: dict[str, int], isolation: str = "read_committed") -> list[Rec]:
    """Every record visible under ``isolation``, read from the start up to each partition's
    end (the last stable offset under read_committed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    pending = {(name, p) for name, n in topics.items() for p in range(n)}
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in sorted(pending)])
    out: list[Rec] = []
    deadline = time.monotonic() + DEADLINE_S
    while pending:
        assert time.monotonic() < deadline, f"never reached the end of {sorted(pending)}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            pending.discard((msg.topic() or "", msg.partition() or 0))
            continue
        out.append(_rec(msg))
    consumer.close()
    return out


def _values(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[bytes]:
    return [r.value for r in _read(bootstrap, {topic: 1}, isolation)]


def _txn_producer(bootstrap: str, txn_id: str, **extra: object) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "linger.ms": 5,
            "log_level": 0,
            **extra,
        }
    )
    producer.init_transactions(30)
    return producer


def _plain_produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


def _group_consumer(bootstrap: str, group: str, **extra: object) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            **extra,
        }
    )


def _take(consumer: Consumer, count: int) -> list[Rec]:
    """Exactly ``count`` records from a consumer (asks for no more than it still needs)."""
    out: list[Rec] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(out) < count:
        assert time.monotonic() < deadline, f"only {len(out)} of {count} records arrived"
        for msg in consumer.consume(count - len(out), timeout=0.5):
            if msg.error() is None:
                out.append(_rec(msg))
    return out


def _next_offsets(records: list[Rec]) -> list[TopicPartition]:
    """The position after the last of ``records`` in each partition they came from."""
    ends: dict[tuple[str, int], int] = {}
    for r in records:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.offset + 1)
    return [TopicPartition(t, p, o) for (t, p), o in sorted(ends.items())]


def _committed(bootstrap: str, group: str, topic: str, partitions: int = 1) -> list[int]:
    """The group's committed offsets; read_uncommitted, so a pending transactional offset is
    answered with the last committed one instead of UNSTABLE_OFFSET_COMMIT (KIP-447)."""
    checker = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"}
    )
    found = checker.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    checker.close()
    return [tp.offset for tp in found]


def _list_offset(bootstrap: str, topic: str, partition: int, isolation: int) -> int:
    """ListOffsets(latest): the high watermark, or under read_committed the last stable
    offset."""
    with connect(bootstrap) as sock:
        response = call(
            sock,
            2,
            4,
            {
                "replica_id": -1,
                "isolation_level": isolation,
                "topics": [
                    {"name": topic, "partitions": [{"partition_index": partition, "timestamp": -1}]}
                ],
            },
        )
    part = response.topics[0].partitions[0]
    assert part.error_code == 0, part
    return int(part.offset)


# -- commit, abort and the last stable offset -------------------------------------------------


def test_commit_over_partitions_of_two_topics(bootstrap: str) -> None:
    _create(bootstrap, {"orders": 3, "audit": 2})
    producer = _txn_producer(bootstrap, "t-multi")
    producer.begin_transaction()
    expected: list[Rec] = []
    for i in range(20):
        for topic, partitions in (("orders", 3), ("audit", 2)):
            partition = i % partitions
            value = f"{topic}-{i}".encode()
            producer.produce(topic, key=str(i).encode(), value=value, partition=partition)
            expected.append(Rec(topic, partition, -1, str(i).encode(), value))
    assert producer.flush(30) == 0
    assert _read(bootstrap, {"orders": 3, "audit": 2}) == []  # nothing before the commit
    producer.commit_transaction(30)
    got = _read(bootstrap, {"orders": 3, "audit": 2})
    assert sorted(r._replace(offset=-1) for r in got) == sorted(expected)
    for topic, partitions in (("orders", 3), ("audit", 2)):
        for p in range(partitions):
            in_order = [r.value for r in got if (r.topic, r.partition) == (topic, p)]
            want = [r.value for r in expected if (r.topic, r.partition) == (topic, p)]
            assert in_order == want, (topic, p)


def test_abort_hides_records_from_read_committed_only(bootstrap: str) -> None:
    _create(bootstrap, {"ab": 1})
    producer = _txn_producer(bootstrap, "t-abort")
    producer.begin_transaction()
    producer.produce("ab", b"aborted-1")
    producer.produce("ab", b"aborted-2")
    assert producer.flush(30) == 0  # the aborted records really reach the log
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce("ab", b"committed")
    producer.commit_transaction(30)
    assert _values(bootstrap, "ab") == [b"committed"]
    assert _values(bootstrap, "ab", "read_uncommitted") == [
        b"aborted-1",
        b"aborted-2",
        b"committed",
    ]


def test_open_transaction_holds_back_the_last_stable_offset(bootstrap: str) -> None:
    _create(bootstrap, {"lso": 1})
    producer = _txn_producer(bootstrap, "t-lso")
    producer.begin_transaction()
    producer.produce("lso", b"before")
    producer.commit_transaction(30)
    offsets: list[int] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        offsets.append(_rec(msg).offset)

    producer.begin_transaction()
    producer.produce("lso", b"open-1", on_delivery=delivered)
    producer.produce("lso", b"open-2", on_delivery=delivered)
    assert producer.flush(30) == 0
    _plain_produce(bootstrap, "lso", [b"plain-after"])
    assert _values(bootstrap, "lso") == [b"before"]
    everything = [b"before", b"open-1", b"open-2", b"plain-after"]
    assert _values(bootstrap, "lso", "read_uncommitted") == everything
    high = _list_offset(bootstrap, "lso", 0, READ_UNCOMMITTED)
    assert _list_offset(bootstrap, "lso", 0, READ_COMMITTED) == min(offsets) < high
    producer.commit_transaction(30)
    assert _values(bootstrap, "lso") == everything
    high = _list_offset(bootstrap, "lso", 0, READ_UNCOMMITTED)
    assert _list_offset(bootstrap, "lso", 0, READ_COMMITTED) == high


# -- offsets in transactions ------------------------------------------------------------------


def test_offsets_sent_to_a_transaction_count_only_on_commit(bootstrap: str) -> None:
    _create(bootstrap, {"offs-src": 1, "offs-dst": 1})
    _plain_produce(bootstrap, "offs-src", [str(i).encode() for i in range(100)])
    producer = _txn_producer(bootstrap, "t-offsets")

    first = _group_consumer(bootstrap, "offs")
    first.subscribe(["offs-src"])
    taken = _take(first, 40)
    assert [int(r.value) for r in taken] == list(range(40))
    producer.begin_transaction()
    for r in taken:
        producer.produce("offs-dst", r.value)
    producer.send_offsets_to_transaction(_next_offsets(taken), first.consumer_group_metadata(), 30)
    assert _committed(bootstrap, "offs", "offs-src") == [OFFSET_INVALID]  # still pending
    producer.abort_transaction(30)
    assert _committed(bootstrap, "offs", "offs-src") == [OFFSET_INVALID]
    first.close()

    second = _group_consumer(bootstrap, "offs")  # resumes where nothing was committed
    second.subscribe(["offs-src"])
    taken = _take(second, 40)
    assert [int(r.value) for r in taken] == list(range(40))
    producer.begin_transaction()
    for r in taken:
        producer.produce("offs-dst", r.value)
    producer.send_offsets_to_transaction(_next_offsets(taken), second.consumer_group_metadata(), 30)
    assert _committed(bootstrap, "offs", "offs-src") == [OFFSET_INVALID]  # still pending
    producer.commit_transaction(30)
    assert _committed(bootstrap, "offs", "offs-src") == [40]
    check = second.committed([TopicPartition("offs-src", 0)], timeout=30)
    assert check[0].offset == 40
    second.close()

    third = _group_consumer(bootstrap, "offs")
    third.subscribe(["offs-src"])
    assert [int(r.value) for r in _take(third, 1)] == [40]
    third.close()
    assert _values(bootstrap, "offs-dst") == [str(i).encode() for i in range(40)]


def test_offsets_from_a_stale_group_generation_are_refused(bootstrap: str) -> None:
    """KIP-447: TxnOffsetCommit carries the consumer's generation and member id, and the
    group refuses a generation that a rebalance has ended (the partitions may belong to
    another member now), which makes the producer abort instead of committing."""
    _create(bootstrap, {"gen-src": 2})
    _plain_produce(bootstrap, "gen-src", [b"a", b"b"], partition=0)
    _plain_produce(bootstrap, "gen-src", [b"c", b"d"], partition=1)
    first = _group_consumer(bootstrap, "gen")
    first.subscribe(["gen-src"])
    _take(first, 1)  # joined, with a generation
    stale = first.consumer_group_metadata()
    second = _group_consumer(bootstrap, "gen")
    second.subscribe(["gen-src"])
    deadline = time.monotonic() + DEADLINE_S
    while len(first.assignment()) != 1 or len(second.assignment()) != 1:
        assert time.monotonic() < deadline, "the group never rebalanced to two members"
        first.poll(0.1)
        second.poll(0.1)
    producer = _txn_producer(bootstrap, "t-stale-generation")
    producer.begin_transaction()
    producer.produce("gen-dst", b"derived")
    with pytest.raises(KafkaException) as caught:
        producer.send_offsets_to_transaction([TopicPartition("gen-src", 0, 1)], stale, 30)
        producer.commit_transaction(30)
    error = caught.value.args[0]
    assert error.txn_requires_abort() or error.code() in STALE_MEMBER, error
    producer.abort_transaction(30)
    assert _committed(bootstrap, "gen", "gen-src", 2) == [OFFSET_INVALID, OFFSET_INVALID]
    first.close()
    second.close()


def test_consume_transform_produce_is_exactly_once(bootstrap: str) -> None:
    _create(bootstrap, {"words": 3, "upper": 3})
    inputs = [f"word-{i}".encode() for i in range(300)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i, value in enumerate(inputs):
        producer.produce("words", key=str(i % 7).encode(), value=value, partition=i % 3)
    assert producer.flush(30) == 0

    consumer = _group_consumer(bootstrap, "uppercase")
    consumer.subscribe(["words"])
    txn = _txn_producer(bootstrap, "t-uppercase")
    processed = 0
    transactions = 0
    while processed < len(inputs):
        batch = _take(consumer, 50)
        txn.begin_transaction()
        for r in batch:
            txn.produce("upper", key=r.key, value=r.value.upper())
        txn.send_offsets_to_transaction(
            _next_offsets(batch), consumer.consumer_group_metadata(), 30
        )
        txn.commit_transaction(30)
        processed += len(batch)
        transactions += 1
    consumer.close()
    assert transactions == 6

    out = [r.value for r in _read(bootstrap, {"upper": 3})]
    counts = Counter(out)
    assert sorted(counts) == sorted(v.upper() for v in inputs)
    assert set(counts.values()) == {1}, "a record was transformed twice"
    assert _committed(bootstrap, "uppercase", "words", 3) == [100, 100, 100]


# -- fencing and timeouts ---------------------------------------------------------------------


def test_second_producer_with_same_id_fences_the_first(bootstrap: str) -> None:
    _create(bootstrap, {"zombie": 1})
    first = _txn_producer(bootstrap, "t-zombie")
    first.begin_transaction()
    first.produce("zombie", b"from-zombie-1")
    assert first.flush(30) == 0
    second = _txn_producer(bootstrap, "t-zombie")  # bumps the epoch, aborts first's txn
    with pytest.raises(KafkaException) as caught:
        first.produce("zombie", b"from-zombie-2")
        first.flush(30)
        first.commit_transaction(30)
    error = caught.value.args[0]
    assert error.fatal() or error.code() in FENCED, error
    second.begin_transaction()
    second.produce("zombie", b"from-live")
    second.commit_transaction(30)
    assert _values(bootstrap, "zombie") == [b"from-live"]


def test_abandoned_transaction_is_aborted_after_its_timeout(bootstrap: str) -> None:
    _create(bootstrap, {"hang": 1})
    hung = _txn_producer(bootstrap, "t-hung", **{"transaction.timeout.ms": 2000})
    hung.begin_transaction()
    hung.produce("hang", b"abandoned")
    assert hung.flush(30) == 0
    _plain_produce(bootstrap, "hang", [b"later"])  # held back behind the open transaction
    consumer = _group_consumer(bootstrap, f"hang-{uuid.uuid4()}")
    consumer.assign([TopicPartition("hang", 0, OFFSET_BEGINNING)])
    seen: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    while b"later" not in seen:
        assert time.monotonic() < deadline, "the abandoned transaction was never aborted"
        seen.extend(_rec(m).value for m in consumer.consume(10, timeout=0.5) if not m.error())
    consumer.close()
    assert seen == [b"later"]
    assert _values(bootstrap, "hang") == [b"later"]
    assert _values(bootstrap, "hang", "read_uncommitted") == [b"abandoned", b"later"]


# -- raw transactional requests; KIP-890: a produce that arrives after its transaction ended --


class _RawTxn:
    """One transactional producer driven request by request over a single socket."""

    def __init__(self, sock: Any, txn_id: str, topic: str) -> None:
        self.sock, self.txn_id, self.topic = sock, txn_id, topic
        init = call(
            sock,
            22,
            3,
            {
                "transactional_id": txn_id,
                "transaction_timeout": 60000,
                "producer_id": -1,
                "producer_epoch": -1,
            },
        )
        assert init.error_code == 0, init
        self.producer_id, self.producer_epoch = int(init.producer_id), int(init.producer_epoch)

    def add_partition(self) -> int:
        # kio names the v3-and-below fields of AddPartitionsToTxn with this prefix (v4 batches
        # transactions); the wire format is the plain v3 request.
        response = call(
            self.sock,
            24,
            3,
            {
                "v3_and_below_transactional_id": self.txn_id,
                "v3_and_below_producer_id": self.producer_id,
                "v3_and_below_producer_epoch": self.producer_epoch,
                "v3_and_below_topics": [{"name": self.topic, "partitions": [0]}],
            },
        )
        return int(
            response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        )

    def produce(self, sequence: int, value: bytes) -> int:
        batch = build_batch(
            [NewRecord(None, value, 1_700_000_000_000)],
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            base_sequence=sequence,
            transactional=True,
        )
        response = call(
            self.sock,
            0,
            9,
            {
                "transactional_id": self.txn_id,
                "acks": -1,
                "timeout": 5000,
                "topic_data": [
                    {"name": self.topic, "partition_data": [{"index": 0, "records": bytes(batch)}]}
                ],
            },
        )
        return int(response.responses[0].partition_responses[0].error_code)

    def end(self, committed: bool) -> int:
        response = call(
            self.sock,
            26,
            3,
            {
                "transactional_id": self.txn_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch,
                "committed": committed,
            },
        )
        return int(response.error_code)

    def add_offsets(self, group: str) -> int:
        response = call(
            self.sock,
            25,
            3,
            {
                "transactional_id": self.txn_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch,
                "group_id": group,
            },
        )
        return int(response.error_code)

    def commit_offset(self, group: str, topic: str, offset: int) -> int:
        """TxnOffsetCommit v3 of partition 0 of ``topic``."""
        txn = (self.txn_id, self.producer_id, self.producer_epoch)
        return txn_offset_commit(self.sock, 3, txn, group, topic, offset)


def test_late_produce_after_end_txn_is_rejected(bootstrap: str) -> None:
    _create(bootstrap, {"late": 1})
    with connect(bootstrap) as sock:
        txn = _RawTxn(sock, "t-late", "late")
        assert txn.add_partition() == 0
        assert txn.produce(0, b"in-first") == 0
        assert txn.end(committed=True) == 0
        # Delayed in the network: it belongs to the transaction that just committed.
        assert txn.produce(1, b"delayed") != 0
        assert txn.add_partition() == 0
        assert txn.produce(1, b"in-second") == 0
        assert txn.end(committed=True) == 0
    assert _values(bootstrap, "late") == [b"in-first", b"in-second"]
    assert b"delayed" not in _values(bootstrap, "late", "read_uncommitted")


# -- restart ----------------------------------------------------------------------------------


def test_restart_keeps_commits_and_never_commits_open_transactions(
    broker: BrokerThread,
) -> None:
    bootstrap = broker.bootstrap
    _create(bootstrap, {"rs-reinit": 1, "rs-timeout": 1})
    reinit = _txn_producer(bootstrap, "t-rs-reinit")
    timing_out = _txn_producer(bootstrap, "t-rs-timeout", **{"transaction.timeout.ms": 2000})
    for producer, topic in ((reinit, "rs-reinit"), (timing_out, "rs-timeout")):
        producer.begin_transaction()
        producer.produce(topic, b"kept")
        producer.commit_transaction(30)  # EndTxn answered: this one is decided
        producer.begin_transaction()
        producer.produce(topic, b"interrupted")
        assert producer.flush(30) == 0  # in the log, transaction still open
    broker.stop()

    with embedded_broker(broker.config.data_dir) as again:
        bootstrap = again.bootstrap
        assert _values(bootstrap, "rs-reinit") == [b"kept"]
        assert _values(bootstrap, "rs-timeout") == [b"kept"]
        # The same transactional id starting again aborts its predecessor's transaction.
        successor = _txn_producer(bootstrap, "t-rs-reinit")
        _plain_produce(bootstrap, "rs-reinit", [b"after"])
        assert _values(bootstrap, "rs-reinit") == [b"kept", b"after"]
        successor.begin_transaction()
        successor.produce("rs-reinit", b"successor")
        successor.commit_transaction(30)
        assert _values(bootstrap, "rs-reinit") == [b"kept", b"after", b"successor"]
        # Nobody returns for the other one: its timeout aborts it.
        _plain_produce(bootstrap, "rs-timeout", [b"after"])
        deadline = time.monotonic() + DEADLINE_S
        while _values(bootstrap, "rs-timeout") != [b"kept", b"after"]:
            assert time.monotonic() < deadline, "the interrupted transaction never timed out"
            time.sleep(0.2)
        assert b"interrupted" in _values(bootstrap, "rs-timeout", "read_uncommitted")


def _open_transaction_with_offsets(bootstrap: str) -> _RawTxn:
    """An open transaction holding one output record and the group offset 10 of its input."""
    _create(bootstrap, {"atom-src": 1, "atom-dst": 1})
    _plain_produce(bootstrap, "atom-src", [str(i).encode() for i in range(10)])
    with connect(bootstrap) as sock:
        txn = _RawTxn(sock, "t-atomic", "atom-dst")
        assert txn.add_partition() == 0
        assert txn.produce(0, b"derived") == 0
        assert txn.add_offsets("atom-group") == 0
        assert txn.commit_offset("atom-group", "atom-src", 10) == 0  # acknowledged: pending
    return txn


def _commit_after_restart(bootstrap: str, txn: _RawTxn) -> None:
    """Output and offsets are one atomic unit. Kafka keeps the coordinator state and the
    pending offsets durable, so its EndTxn succeeds and both become visible; a broker that
    refuses the commit instead must show neither."""
    with connect(bootstrap) as sock:
        txn.sock = sock
        code = txn.end(committed=True)
    output = _values(bootstrap, "atom-dst")
    offsets = _committed(bootstrap, "atom-group", "atom-src")
    if code == 0:
        assert (output, offsets) == ([b"derived"], [10]), "committed without its offsets"
    else:
        assert (output, offsets) == ([], [OFFSET_INVALID]), f"EndTxn refused ({code}), half kept"


def test_offsets_sent_before_a_restart_commit_with_their_transaction(
    broker: BrokerThread,
) -> None:
    txn = _open_transaction_with_offsets(broker.bootstrap)
    broker.stop()
    with embedded_broker(broker.config.data_dir) as again:
        _commit_after_restart(again.bootstrap, txn)


def test_offsets_sent_before_kill_9_commit_with_their_transaction(tmp_path: Path) -> None:
    process = BrokerProcess(tmp_path / "data")
    process.start()
    try:
        txn = _open_transaction_with_offsets(process.bootstrap)
        process.kill()
        process.start()  # same port
        _commit_after_restart(process.bootstrap, txn)
    finally:
        process.stop()


# -- admin visibility -------------------------------------------------------------------------


class TxnState(NamedTuple):
    error_code: int
    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    partitions: set[tuple[str, int]]


class _Reader:
    """Just enough of the flexible wire format to read a DescribeTransactions v0 response.

    kio refuses negative ``transaction_start_time`` values, which Kafka sends (-1) for a
    transaction that is not ongoing, so this response is decoded by hand."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def fixed(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string(self) -> str:
        size = self.uvarint() - 1
        self.pos += size
        return self.data[self.pos - size : self.pos].decode()

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def _describe_transactions(bootstrap: str, txn_ids: list[str]) -> list[TxnState]:
    with connect(bootstrap) as sock:
        sock.sendall(encode_request(65, 0, {"transactional_ids": txn_ids}))
        frame = read_frame(sock)
    assert frame is not None, "broker closed the connection"
    reader = _Reader(frame)
    reader.fixed(">i")  # correlation id
    reader.skip_tags()
    reader.fixed(">i")  # throttle time
    states = []
    for _ in range(reader.uvarint() - 1):
        error_code = reader.fixed(">h")
        txn_id, state = reader.string(), reader.string()
        reader.fixed(">i")  # transaction timeout
        reader.fixed(">q")  # transaction start time
        producer_id, producer_epoch = reader.fixed(">q"), reader.fixed(">h")
        partitions: set[tuple[str, int]] = set()
        for _ in range(reader.uvarint() - 1):
            topic = reader.string()
            partitions |= {(topic, reader.fixed(">i")) for _ in range(reader.uvarint() - 1)}
            reader.skip_tags()
        reader.skip_tags()
        states.append(TxnState(error_code, txn_id, state, producer_id, producer_epoch, partitions))
    return states


def test_admin_apis_show_open_transactions(bootstrap: str) -> None:
    # confluent-kafka 2.16's AdminClient has no list/describe_transactions: raw requests.
    _create(bootstrap, {"vis": 2})
    producer = _txn_producer(bootstrap, "t-visible")
    producer.begin_transaction()
    producer.produce("vis", b"x", partition=0)
    producer.produce("vis", b"y", partition=1)
    assert producer.flush(30) == 0
    with connect(bootstrap) as sock:
        listed = call(sock, 66, 0, {"state_filters": [], "producer_id_filters": []})
        assert listed.error_code == 0
        states = {t.transactional_id: t for t in listed.transaction_states}
        assert states["t-visible"].transaction_state == "Ongoing"
        ongoing = call(sock, 66, 0, {"state_filters": ["Ongoing"], "producer_id_filters": []})
        assert [t.transactional_id for t in ongoing.transaction_states] == ["t-visible"]

    visible, nobody = _describe_transactions(bootstrap, ["t-visible", "t-nobody"])
    assert visible.error_code == 0
    assert visible.state == "Ongoing"
    assert visible.producer_id == states["t-visible"].producer_id
    assert visible.partitions == {("vis", 0), ("vis", 1)}
    assert nobody.error_code == TRANSACTIONAL_ID_NOT_FOUND

    request = {"topics": [{"name": "vis", "partition_indexes": [0, 1]}]}
    with connect(bootstrap) as sock:
        producers = call(sock, 61, 0, request)
    for partition in producers.topics[0].partitions:
        assert partition.error_code == 0
        active = {p.producer_id: p for p in partition.active_producers}
        assert visible.producer_id in active
        assert active[visible.producer_id].producer_epoch == visible.producer_epoch
        assert active[visible.producer_id].current_txn_start_offset == 0

    producer.commit_transaction(30)
    [done] = _describe_transactions(bootstrap, ["t-visible"])
    assert done.state == "CompleteCommit"
    with connect(bootstrap) as sock:
        ongoing = call(sock, 66, 0, {"state_filters": ["Ongoing"], "producer_id_filters": []})
        assert list(ongoing.transaction_states) == []
        producers = call(sock, 61, 0, request)
    for partition in producers.topics[0].partitions:
        active = {p.producer_id: p for p in partition.active_producers}
        assert active[visible.producer_id].current_txn_start_offset == -1
