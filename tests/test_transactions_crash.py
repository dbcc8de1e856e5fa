"""Exactly-once under kill -9: a transactional consume-transform-produce loop keeps running
while the broker process is killed and restarted, and the output still holds every input
exactly once, in per-key order, with nothing from an aborted transaction visible.

The worker behaves like a careful application: abortable errors abort the transaction, fatal
ones (fencing) get a new producer, a dead broker gets retries with backoff, and after any
failure the consumer is recreated so it resumes from the group's committed offsets.

Two of the kills are power cuts: the application dies too, leaving its transaction open with
records in the log and its producer behind as a zombie. Its successor's init_transactions
must fence the zombie and abort that transaction, so read_committed never shows those records.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.testing import BrokerProcess

CRASHES = 4
POWER_CUTS = 2
RECORDS = 3000
KEYS = 20
PARTITIONS = 3
PER_TXN = 100
GROUP = "eos"
TXN_ID = "eos-1"
# Bounds against hanging forever, never speed assertions.
PROGRESS_DEADLINE_S = 60.0
FINISH_DEADLINE_S = 120.0
# Simulated work inside each transaction, half before and half after the offsets join it, so
# kills land in both windows: records in the log but no offsets yet, and offsets pending.
WORK_S = 0.02
# Every client of this test. Without "metadata.recovery.strategy": "none", librdkafka
# re-bootstraps while the broker is down, decommissions the broker it had cached as group
# coordinator, and send_offsets_to_transaction() can then block forever, past its own timeout
# (librdkafka issues 5456 and 5511); a single-node cluster never needs re-bootstrapping.
CLIENT = {
    "log_level": 0,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "metadata.recovery.strategy": "none",
}


class Output(NamedTuple):
    partition: int
    offset: int
    key: bytes
    value: bytes


class _PowerCut(Exception):
    """The application dies mid-transaction: no abort, no clean shutdown."""


class Worker:
    """Consume "in", write "T" + value to "out", commit offsets in the same transaction."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.stop = threading.Event()
        self.power_cut = threading.Event()
        self.commits = 0
        self.errors: Counter[str] = Counter()
        self.crashed: BaseException | None = None
        self.step = "starting"
        # Producers of "dead" application instances, kept running so they act as zombies.
        self.zombies: list[Producer] = []
        self._producer: Producer | None = None
        # A daemon, so a client call stuck past its own timeout cannot hang the interpreter.
        self._thread = threading.Thread(target=self._run, name="eos-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join(FINISH_DEADLINE_S)
        assert not self._thread.is_alive(), f"the worker is stuck in {self.step}"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                self._session()
        except BaseException as exc:
            self.crashed = exc

    def _session(self) -> None:
        """One consumer's life: process until an error, then clean up so the next session
        starts from the committed offsets."""
        producer = self._ready_producer()
        if producer is None:
            self.stop.wait(0.5)  # the broker is probably down: back off, then retry
            return
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": GROUP,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
                **CLIENT,
            }
        )
        consumer.subscribe(["in"])
        try:
            while not self.stop.is_set():
                self._cycle(consumer, producer)
        except KafkaException as exc:
            self._recover(producer, exc.args[0])
            self.stop.wait(0.2)
        except _PowerCut:
            self.errors["power cut"] += 1
            self.zombies.append(producer)
            self._producer = None
        finally:
            self.step = "consumer.close"
            with contextlib.suppress(KafkaException, RuntimeError):
                consumer.close()

    def _ready_producer(self) -> Producer | None:
        if self._producer is not None:
            return self._producer
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "transactional.id": TXN_ID,
                "transaction.timeout.ms": 10000,
                "linger.ms": 5,
                **CLIENT,
            }
        )
        try:
            # Fences any predecessor and aborts (or completes) its unfinished transaction.
            self.step = "init_transactions"
            producer.init_transactions(10)
        except KafkaException as exc:
            self.errors[f"init: {exc.args[0].name()}"] += 1
            return None
        self._producer = producer
        return producer

    def _cycle(self, consumer: Consumer, producer: Producer) -> None:
        self.step = "consume"
        batch: list[Message] = []
        for msg in consumer.consume(PER_TXN, timeout=0.5):
            error = msg.error()
            if error is None:
                batch.append(msg)
            elif error.fatal():
                raise KafkaException(error)
        if not batch:
            return
        self.step = "begin_transaction"
        producer.begin_transaction()
        ends: dict[tuple[str, int], int] = {}
        for msg in batch:
            value = msg.value() or b""
            producer.produce("out", key=msg.key(), value=b"T" + value)
            ends[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1
        self.stop.wait(WORK_S / 2)
        if self.power_cut.is_set():
            self.power_cut.clear()
            raise _PowerCut
        offsets = [TopicPartition(t, p, o) for (t, p), o in ends.items()]
        self.step = "send_offsets_to_transaction"
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 10)
        self.stop.wait(WORK_S / 2)
        self.step = "commit_transaction"
        producer.commit_transaction(10)
        self.commits += 1

    def _recover(self, producer: Producer, error: KafkaError) -> None:
        self.errors[error.name()] += 1
        if not error.fatal() and error.txn_requires_abort():
            try:
                self.step = "abort_transaction"
                producer.abort_transaction(10)
                return
            except KafkaException as exc:
                self.errors[f"abort: {exc.args[0].name()}"] += 1
        # Fatal, retriable with the broker gone, or the abort failed: a new producer with the
        # same transactional.id resolves whatever this one left open.
        self._producer = None


def _create_and_fill(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in ("in", "out")]
    )
    for future in futures.values():
        future.result(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    for i in range(RECORDS):
        producer.produce("in", key=str(i % KEYS).encode(), value=str(i).encode())
    assert producer.flush(60) == 0


def _all_committed(bootstrap: str) -> bool:
    """Whether the group's committed offsets reached the end of every partition of "in"."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, **CLIENT})
    try:
        partitions = [TopicPartition("in", p) for p in range(PARTITIONS)]
        committed = consumer.committed(partitions, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
    except KafkaException:
        return False  # the broker is restarting
    finally:
        consumer.close()
    return [tp.offset for tp in committed] == ends


def _read_out(bootstrap: str, isolation: str) -> list[Output]:
    """Every record of "out" visible under ``isolation``, up to the end of each partition and
    at least ``RECORDS`` of them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition("out", p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    out: list[Output] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while len(out) < RECORDS or len(at_end) < PARTITIONS:
        assert time.monotonic() < deadline, f"read {len(out)} outputs, ends seen {at_end}"
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        partition, error = msg.partition() or 0, msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            at_end.add(partition)
            continue
        at_end.discard(partition)
        out.append(Output(partition, msg.offset() or 0, msg.key() or b"", msg.value() or b""))
    consumer.close()
    return out


def _wait_for_commits(worker: Worker, commits: int) -> None:
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while worker.commits < commits:
        assert worker.alive, f"the worker died: {worker.crashed!r}"
        assert time.monotonic() < deadline, f"no commit since restart; errors {worker.errors}"
        time.sleep(0.001)


def _check(out: list[Output]) -> None:
    expected = {f"T{i}".encode() for i in range(RECORDS)}
    values = Counter(o.value for o in out)
    missing = sorted(expected - set(values))
    duplicated = sorted(v for v, n in values.items() if n > 1)
    unexpected = sorted(set(values) - expected)
    assert not missing, f"{len(missing)} inputs lost, e.g. {missing[:5]}"
    if duplicated:
        where = [(o.partition, o.offset) for o in out if o.value == duplicated[0]]
        raise AssertionError(
            f"{len(duplicated)} outputs duplicated, e.g. {duplicated[:5]}; "
            f"{duplicated[0]!r} is at (partition, offset) {where}"
        )
    assert not unexpected, f"unexpected outputs, e.g. {unexpected[:5]}"
    partitions_of_key: dict[bytes, set[int]] = {}
    last: dict[bytes, int] = {}
    for partition, _, key, value in out:
        number = int(value[1:])
        assert number % KEYS == int(key), (key, value)
        partitions_of_key.setdefault(key, set()).add(partition)
        assert number > last.get(key, -1), f"key {key!r} out of order on partition {partition}"
        last[key] = number
    assert all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key


def test_exactly_once_across_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed={seed}")
    power_cuts = set(rng.sample(range(CRASHES), POWER_CUTS))
    broker = BrokerProcess(tmp_path / "data", "--num-partitions", str(PARTITIONS))
    broker.start()
    worker: Worker | None = None
    try:
        _create_and_fill(broker.bootstrap)
        worker = Worker(broker.bootstrap)
        worker.start()
        kill_after = 0
        for crash in range(CRASHES):
            # A few commits after the last restart (so every kill lands while inputs remain),
            # then a random moment within about one transaction.
            kill_after = max(kill_after, worker.commits) + rng.randint(1, 4)
            _wait_for_commits(worker, kill_after)
            time.sleep(rng.uniform(0.0, 2 * WORK_S))
            commits_at_kill = worker.commits
            if crash in power_cuts:
                worker.power_cut.set()
            broker.kill()
            time.sleep(rng.uniform(0.0, 0.5))
            broker.start()  # same port: the clients reconnect by themselves
            kind = "power cut" if crash in power_cuts else "broker only"
            print(f"killed after {commits_at_kill} commits ({kind})")
        deadline = time.monotonic() + FINISH_DEADLINE_S
        while not _all_committed(broker.bootstrap):
            assert worker.alive, f"the worker died: {worker.crashed!r}"
            assert time.monotonic() < deadline, f"inputs never all processed: {worker.errors}"
            time.sleep(0.2)
        worker.join()
        out = _read_out(broker.bootstrap, "read_committed")
        in_log = len(_read_out(broker.bootstrap, "read_uncommitted"))
    finally:
        try:
            if worker is not None:
                worker.join()
                worker.zombies.clear()
        finally:
            broker.stop()

    _check(out)
    print(f"records from aborted transactions, hidden by read_committed={in_log - len(out)}")
    print(f"worker errors handled: {dict(worker.errors)}")
    print(f"crashes survived={CRASHES} records checked={len(out)}")
