"""The Kafka runtime: one consumer group member running tasks for its assigned partitions.

The loop polls a batch, deserializes it, runs it through the tasks of its partitions and, every
commit interval, makes progress durable:

* at-least-once: changelog writes are flushed, then consumer offsets are committed;
* exactly-once: outputs, changelog writes and consumer offsets are one Kafka transaction
  (``send_offsets_to_transaction`` with the group metadata, as in exactly-once v2), so a crash
  either loses the whole interval (it is reprocessed) or nothing.

Local state files are updated only after a commit succeeded, so they are never ahead of what
the changelog and the committed offsets say.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.client import (
    BoundedCalls,
    CallStuck,
    Consumer,
    DeadLetterQueue,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
    committed_offsets,
    deserialize_many,
    new_consumer,
    new_producer,
    read_to_end,
    serialize_many,
)
from headwater.streams._core import Record
from headwater.streams._graph import Graph, Node, SinkSpec, SourceSpec
from headwater.streams._restore import changelog_end, restore_store
from headwater.streams._state import DurableStore
from headwater.streams._task import Task

log = logging.getLogger("headwater.streams")

#: How often committed state changes are copied to the local files (restart speed only).
LOCAL_SAVE_INTERVAL_S = 1.0
#: How much later the copy is tried again when a changelog's end could not be read.
LOCAL_SAVE_DEFERRED_S = 5.0
#: How often the loop checks whether it has read everything (``AppStats.caught_up_at``).
CAUGHT_UP_INTERVAL_S = 0.5
#: The timeout given to librdkafka's transactional calls, and how much longer one may block
#: before the producer counts as stuck and is replaced (see ``_replace_producer``).
TXN_TIMEOUT_S = 15.0
TXN_GRACE_S = 5.0
# A fatal producer error (a coordinator failover can end a transaction in a state the client
# cannot leave) is survived by a new producer, at most this many times in this many seconds;
# more means something keeps fencing this instance (a second process on the same state
# directory), and it stops.
FATAL_RECOVERIES_MAX = 5
INIT_TRANSACTIONS_S = 120.0
FATAL_RECOVERY_WINDOW_S = 300.0


class StreamsError(RuntimeError):
    """The app cannot go on; the message says what happened and what to do."""


@dataclass(slots=True)
class AppStats:
    """Counters a running app keeps; read them from another thread for progress."""

    consumed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    commits: int = 0
    batches: int = 0
    started_at: float = field(default_factory=time.monotonic)
    first_record_at: float | None = None
    assigned: list[int] = field(default_factory=list)
    caught_up_at: float | None = None
    """Wall time of the last check that found every owned input partition read to its end
    with nothing left uncommitted; None while the app is behind or has work in flight."""

    @property
    def first_record_latency_s(self) -> float | None:
        """Seconds from start until the first record was processed."""
        if self.first_record_at is None:
            return None
        return self.first_record_at - self.started_at


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    app_id: str
    bootstrap: str
    exactly_once: bool
    state_dir: Path
    commit_interval_s: float
    batch_size: int
    dead_letter_topic: str
    lineage: bool
    transactional_id: str
    consumer_overrides: dict[str, Any]
    producer_overrides: dict[str, Any]
    changelogs: dict[str, str]


class Runner:
    def __init__(self, graph: Graph, settings: RuntimeSettings, stop: threading.Event) -> None:
        self.graph = graph
        self.settings = settings
        self.stop_event = stop
        self.stats = AppStats()
        self.tasks: dict[int, Task] = {}
        self.sources = {n.source.topic: n for n in graph.sources() if n.source is not None}
        self.positions: dict[tuple[str, int], int] = {}
        self.committed_offsets: dict[tuple[str, int], int] = {}
        self.in_transaction = False
        self.delivery_errors: list[str] = []
        self.fatal_errors: list[str] = []
        self.producer_fatal: list[str] = []
        self._fatal_recoveries: list[float] = []
        self._processed_at = 0
        self._uncommitted_dead_letters = 0
        self._failed = False
        self._next_local_save = 0.0
        self._producer = self._make_producer()
        self._calls = BoundedCalls(f"{settings.app_id}-txn")
        self._consumer = self._make_consumer()
        self._restorer = new_consumer(
            settings.bootstrap,
            f"{settings.app_id}-restore",
            {
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            },
        )
        self.dead_letters = DeadLetterQueue(
            self._producer, settings.dead_letter_topic, stage=settings.app_id
        )

    # Clients -----------------------------------------------------------------------------

    def _make_producer(self) -> Producer:
        config: dict[str, Any] = {
            # Java clients partition by murmur2 of the key; match them so co-partitioning
            # holds whichever client wrote the input.
            "partitioner": "murmur2_random",
            "delivery.report.only.error": True,
            "error_cb": self._on_producer_error,
            "on_delivery": self._on_delivery_error,
        }
        if self.settings.exactly_once:
            config["transactional.id"] = self.settings.transactional_id
            config["transaction.timeout.ms"] = 10_000
        config.update(self.settings.producer_overrides)
        return new_producer(self.settings.bootstrap, "durable", config)

    def _make_consumer(self) -> Consumer:
        config: dict[str, Any] = {
            "enable.auto.commit": False,
            # Range assignment gives equal partition numbers of co-partitioned topics to the
            # same member, which joins and shared tasks rely on.
            "partition.assignment.strategy": "range",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "error_cb": self._on_client_error,
        }
        config.update(self.settings.consumer_overrides)
        return new_consumer(self.settings.bootstrap, self.settings.app_id, config)

    def _on_client_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal_errors.append(f"fatal client error: {err.str()}")
        else:
            log.warning("kafka client: %s", err.str())

    def _on_producer_error(self, err: KafkaError) -> None:
        if err.fatal() and self.settings.exactly_once:
            self.producer_fatal.append(err.str())  # survived by a new producer (_check_delivery)
        else:
            self._on_client_error(err)

    def _on_delivery_error(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        if self.settings.exactly_once and err.code() in _PURGED:
            # Records of a transaction being aborted; the abort already means reprocessing.
            return
        self.delivery_errors.append(f"{msg.topic()}: {err.str()}")

    # Lifecycle ---------------------------------------------------------------------------

    def run(self, until: Callable[[], bool] | None = None) -> AppStats:
        if self.settings.exactly_once:
            self._init_transactions()
        self._consumer.subscribe(
            list(self.sources),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        next_commit = time.monotonic() + self.settings.commit_interval_s
        next_check = time.monotonic() + CAUGHT_UP_INTERVAL_S
        # Batches allocate thousands of short-lived, acyclic objects that reference counting
        # frees; cyclic collections triggered every 700 allocations only cost time here.
        threshold = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(max(threshold[0], 100_000), threshold[1], threshold[2])
        try:
            while not self.stop_event.is_set() and (until is None or not until()):
                messages = self._consumer.consume(self.settings.batch_size, timeout=0.05)
                if messages:
                    self._process(messages)
                self._poll_producer()
                self._check_delivery()
                if time.monotonic() >= next_commit:
                    self.commit(save_local=time.monotonic() >= self._next_local_save)
                    next_commit = time.monotonic() + self.settings.commit_interval_s
                if time.monotonic() >= next_check:
                    self._check_caught_up()
                    next_check = time.monotonic() + CAUGHT_UP_INTERVAL_S
            self.commit()
        except BaseException:
            # Leaving the group must not try to commit what failed.
            self._failed = True
            raise
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
            self._shutdown()
        return self.stats

    def _shutdown(self) -> None:
        try:
            self._consumer.close()
        finally:
            if self.in_transaction:
                try:
                    self._abort()
                except KafkaException as exc:
                    log.warning("abort at shutdown failed: %s", exc)
            self._producer.flush(30)
            _close(self._producer)
            self._calls.close()
            self._restorer.close()
            for task in self.tasks.values():
                self._close_task(task)
            self.tasks.clear()

    # Rebalance -----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        wanted = sorted({tp.partition for tp in partitions})
        for partition in wanted:
            if partition not in self.tasks:
                self.tasks[partition] = self._open_task(partition)
        self.stats.assigned = sorted(self.tasks)
        log.info("assigned partitions %s", wanted)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Make everything processed so far durable before another member takes over.
        if not self._failed:
            self.commit()
        self._drop_tasks({tp.partition for tp in partitions}, discard=self._failed)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member may already own these: nothing of ours may be committed for them.
        lost = {tp.partition for tp in partitions}
        aborted = self.in_transaction
        if aborted:
            self._abort()
        self._drop_tasks(lost, discard=True)
        if aborted and self.tasks:
            # The abort also threw away work on partitions still owned: redo it.
            self._rewind(exclude=lost)

    def _drop_tasks(self, partitions: set[int], discard: bool = False) -> None:
        still_owned = {tp.partition for tp in self._consumer.assignment()} - partitions
        for partition in sorted(partitions - still_owned):
            task = self.tasks.pop(partition, None)
            if task is not None:
                if discard:
                    for store in task.stores.values():
                        if isinstance(store, DurableStore):
                            store.discard_uncommitted()
                self._close_task(task)
        self.positions = {k: v for k, v in self.positions.items() if k[1] not in partitions}
        self.stats.assigned = sorted(self.tasks)

    def _open_task(self, partition: int) -> Task:
        stores = {
            name: restore_store(
                self._restorer,
                name,
                changelog,
                partition,
                self.settings.state_dir,
            )
            for name, changelog in self.settings.changelogs.items()
        }
        task = Task(self.graph, partition, stores, self, self._dead_letter)
        task.open()
        return task

    def _close_task(self, task: Task) -> None:
        task.close()
        for store in task.stores.values():
            if isinstance(store, DurableStore):
                store.local.close()

    # Processing ------------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        groups: dict[tuple[str, int], list[Message]] = {}
        # Consumed batches come in runs from one partition: look a bucket up once per run.
        last_topic: str | None = None
        last_partition: int | None = -1
        bucket: list[Message] | None = None
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise StreamsError(f"consumer failed: {err.str()}")
                log.warning("consumer: %s", err.str())
                continue
            topic, partition = msg.topic(), msg.partition()
            if bucket is None or partition != last_partition or topic != last_topic:
                last_topic, last_partition = topic, partition
                bucket = groups.setdefault((topic or "", partition or 0), [])
            bucket.append(msg)
        if not groups:
            return
        self._begin()
        self._processed_at = int(time.time() * 1000)
        for (topic, partition), batch in groups.items():
            task = self.tasks.get(partition)
            if task is None:
                raise StreamsError(f"received {topic}[{partition}] without owning its task")
            self.positions[(topic, partition)] = (batch[-1].offset() or 0) + 1
            source = self.sources[topic]
            records = self._decode(source, topic, partition, batch)
            if records:
                task.process(source, records)
                self.stats.consumed += len(records)
        self.stats.batches += 1
        if self.stats.first_record_at is None:
            self.stats.first_record_at = time.monotonic()

    def _decode(
        self, source: Node, topic: str, partition: int, batch: list[Message]
    ) -> list[Record]:
        """Deserialize a partition's batch in one call per field; bad records go to the
        dead letters (found by decoding one by one only when the batch call fails)."""
        spec = source.source
        assert spec is not None
        try:
            keys = deserialize_many(spec.key_serde, [m.key() for m in batch], topic)
            values = deserialize_many(spec.value_serde, [m.value() for m in batch], topic)
            if spec.timestamp_fn is None:
                stamps = [m.timestamp()[1] for m in batch]
            else:
                stamps = [spec.timestamp_fn(v) for v in values]
        except Exception:
            return self._decode_one_by_one(spec, topic, partition, batch)
        return [
            Record(k, v, ts, m.headers(), topic, partition, m.offset())  # type: ignore[arg-type]
            for m, k, v, ts in zip(batch, keys, values, stamps, strict=True)
        ]

    def _decode_one_by_one(
        self, spec: SourceSpec, topic: str, partition: int, batch: list[Message]
    ) -> list[Record]:
        records: list[Record] = []
        for msg in batch:
            try:
                key = spec.key_serde.deserialize(msg.key(), topic)
                value = spec.value_serde.deserialize(msg.value(), topic)
                timestamp = (
                    msg.timestamp()[1] if spec.timestamp_fn is None else spec.timestamp_fn(value)
                )
            except Exception as exc:
                self.dead_letters.send(msg, exc)
                self._count_dead_letter()
                continue
            headers: Any = msg.headers()
            records.append(
                Record(key, value, timestamp, headers, topic, partition, msg.offset() or 0)
            )
        return records

    def _begin(self) -> None:
        if self.settings.exactly_once and not self.in_transaction:
            try:
                self._producer.begin_transaction()
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if not (isinstance(error, KafkaError) and error.fatal()):
                    raise
                self.producer_fatal.clear()
                self._recover_from_fatal(error.str())
                self._producer.begin_transaction()
            self.in_transaction = True

    def emit(self, sink: SinkSpec, records: list[Record], node: Node) -> None:
        """Produce a task's output records (the task's Emitter)."""
        topic = sink.topic
        records, keys, values = self._serialize(sink, records, node)
        produce = self._producer.produce
        lineage = self.settings.lineage and not sink.internal
        transform = f"{self.settings.app_id}/{node.name}@{self._processed_at}".encode()
        prefixes: dict[tuple[str, int], bytes] = {}
        for r, key, value in zip(records, keys, values, strict=True):
            headers: Any = None
            if lineage:
                prefix = prefixes.get((r.topic, r.partition))
                if prefix is None:
                    prefix = prefixes[(r.topic, r.partition)] = f"{r.topic}/{r.partition}/".encode()
                headers = [("hw.source", b"%s%d" % (prefix, r.offset)), ("hw.transform", transform)]
            while True:
                try:
                    if headers is None:
                        produce(topic, value, key, timestamp=r.timestamp)
                    else:
                        produce(topic, value, key, timestamp=r.timestamp, headers=headers)
                    break
                except BufferError:
                    self._producer.poll(0.01)
        self.stats.produced += len(records)

    def _serialize(
        self, sink: SinkSpec, records: list[Record], node: Node
    ) -> tuple[list[Record], list[bytes | None], list[bytes | None]]:
        """Keys and values as bytes, a batch per call; records that cannot be serialized go
        to the dead letters instead of stopping the app."""
        topic = sink.topic
        with contextlib.suppress(Exception):  # on failure, find the culprits one by one
            keys = serialize_many(sink.key_serde, [r.key for r in records], topic)
            values = serialize_many(sink.value_serde, [r.value for r in records], topic)
            return records, keys, values
        kept: list[Record] = []
        keys, values = [], []
        for r in records:
            try:
                key = sink.key_serde.serialize(r.key, topic)
                value = sink.value_serde.serialize(r.value, topic)
            except Exception as exc:
                self._dead_letter(r, exc, f"{node.name} -> {topic}")
                continue
            kept.append(r)
            keys.append(key)
            values.append(value)
        return kept, keys, values

    def _count_dead_letter(self) -> None:
        # Under exactly-once a dead letter counts once its transaction commits: an aborted
        # interval is reprocessed and would otherwise count its dead letters twice.
        if self.settings.exactly_once:
            self._uncommitted_dead_letters += 1
        else:
            self.stats.dead_lettered += 1

    def _dead_letter(self, record: Record, error: BaseException, stage: str) -> None:
        spec = self.sources[record.topic].source if record.topic in self.sources else None
        try:
            value = (
                spec.value_serde.serialize(record.value, record.topic)
                if spec is not None
                else repr(record.value).encode()
            )
        except Exception:
            value = repr(record.value).encode()
        self.dead_letters.send(record, f"{stage}: {error!r}", value=value)
        self._count_dead_letter()

    # Commit ----------------------------------------------------------------------------------

    def _raise_delivery_errors(self) -> None:
        errors = self.fatal_errors + self.delivery_errors
        if errors:
            raise StreamsError(
                f"{len(errors)} records could not be written (first: {errors[0]}); nothing "
                "after the last commit was committed, so restarting the app resumes from there"
            )

    def _check_delivery(self) -> None:
        """Under exactly-once a record that could not be written (its partition had no leader
        for longer than the transaction allows, say) dooms only the open transaction: abort
        it and reprocess from the last commit, as a failed commit does, instead of stopping.
        A fatal producer error is survived with a new producer (``_recover_from_fatal``); other
        fatal errors and at-least-once failures still stop the app."""
        if self.producer_fatal:
            reason, self.producer_fatal = self.producer_fatal[0], []
            self._recover_from_fatal(reason)
            return
        if not self.delivery_errors or self.fatal_errors or not self.settings.exactly_once:
            self._raise_delivery_errors()
            return
        errors, self.delivery_errors = self.delivery_errors, []
        if self.in_transaction:
            log.warning(
                "transaction aborted (%d records not written, first: %s); reprocessing from "
                "last commit",
                len(errors),
                errors[0],
            )
            self._abort()
            self._rewind()

    def _write_changelogs(self) -> list[DurableStore]:
        touched: list[DurableStore] = []
        for task in self.tasks.values():
            for store in task.stores.values():
                if not isinstance(store, DurableStore):
                    continue
                changes = store.encoded_changes()
                for key, value in changes:
                    while True:
                        try:
                            self._producer.produce(
                                store.changelog, value, key, partition=store.partition
                            )
                            break
                        except BufferError:
                            self._producer.poll(0.01)
                if store.unsaved:
                    touched.append(store)
        return touched

    def _offsets(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in self.positions.items()]

    def commit(self, *, save_local: bool = True) -> None:
        """Make everything processed so far durable (see the module docstring).

        ``save_local`` also copies committed store changes to the local files; the periodic
        commits do that about once a second, since the changelog already holds them.
        """
        touched = self._write_changelogs()
        offsets = self._offsets()
        if self.settings.exactly_once:
            if not self.in_transaction:
                if not touched and not offsets:
                    return
                self._begin()
            try:
                if offsets:
                    group = self._consumer.consumer_group_metadata()
                    self._txn(
                        "send_offsets_to_transaction",
                        lambda: self._producer.send_offsets_to_transaction(
                            offsets, group, TXN_TIMEOUT_S
                        ),
                    )
                self._txn(
                    "commit_transaction", lambda: self._producer.commit_transaction(TXN_TIMEOUT_S)
                )
            except KafkaException as exc:
                self._transaction_failed(exc)
                return
            except CallStuck:
                self._replace_producer()
                log.warning("transaction abandoned; reprocessing from last commit")
                self._rewind()
                return
            finally:
                self.in_transaction = False
        else:
            remaining = self._producer.flush(30)
            self._raise_delivery_errors()
            if remaining:
                raise StreamsError(
                    f"{remaining} records were not acknowledged within 30 s; is the broker up?"
                )
            if offsets:
                try:
                    self._consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    # A rebalance is under way; the revoke callback commits again. At worst
                    # these records are processed once more, as at-least-once allows.
                    log.warning("offset commit failed (%s); will retry at the next commit", exc)
                    return
        self.committed_offsets.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.stats.dead_lettered += self._uncommitted_dead_letters
        self._uncommitted_dead_letters = 0
        self.positions.clear()
        if save_local:
            self._save_local()
        self.stats.commits += 1

    def _check_caught_up(self) -> None:
        """Note whether everything the app owns has been read and committed, so a caller
        can stop it knowing nothing is left behind (a drain, rather than a guess)."""
        idle = not self.in_transaction and not self.positions
        if idle and read_to_end(self._consumer, self.committed_offsets):
            self.stats.caught_up_at = time.time()
        else:
            self.stats.caught_up_at = None

    def _save_local(self) -> None:
        """Copy committed changes to the local files, which only speed up a restart.

        The changelog's end offset comes from its leader; while a broker failure moves that
        leader the copy waits for the next round rather than stopping the app. Until then a
        store's file keeps its older checkpoint, from which a restore replays the changelog.
        """
        self._next_local_save = time.monotonic() + LOCAL_SAVE_INTERVAL_S
        for task in self.tasks.values():
            for store in task.stores.values():
                if isinstance(store, DurableStore) and store.unsaved:
                    try:
                        end = changelog_end(self._restorer, store.changelog, store.partition)
                    except KafkaException as exc:
                        log.warning(
                            "local state copy deferred store=%s partition=%d error=%s",
                            store.name,
                            store.partition,
                            exc,
                        )
                        # Each try blocks the loop; give the cluster time to elect a leader.
                        self._next_local_save += LOCAL_SAVE_DEFERRED_S
                        return
                    store.last_offset = end - 1
                    store.committed()

    def _transaction_failed(self, exc: KafkaException) -> None:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.txn_requires_abort():
            # Throw the interval away and start again from the last committed offsets.
            self._abort()
            log.warning("transaction aborted (%s); reprocessing from last commit", error.str())
            self._rewind()
            return
        if isinstance(error, KafkaError):
            # Fatal, or neither abortable nor retried by librdkafka (a coordinator that went
            # away mid-commit): only a new producer gets out of it, and it aborts the
            # transaction on the coordinator on the way.
            self.producer_fatal.clear()  # the same error, reported by error_cb too
            self._recover_from_fatal(error.str())
            return
        raise StreamsError(
            f"transaction failed: {exc}; another instance with the same transactional id or "
            "a newer group generation took over, so this instance stops"
        ) from exc

    def _txn(self, what: str, call: Callable[[], None]) -> None:
        self._calls.run(call, TXN_TIMEOUT_S + TXN_GRACE_S, what)

    def _init_transactions(self) -> None:
        """init_transactions, retried while the cluster is electing a new transaction
        coordinator (a node just failed), for up to INIT_TRANSACTIONS_S."""
        deadline = time.monotonic() + INIT_TRANSACTIONS_S
        while True:
            try:
                self._txn(
                    "init_transactions", lambda: self._producer.init_transactions(TXN_TIMEOUT_S)
                )
                return
            except CallStuck:
                raise StreamsError(
                    "the transactional producer could not be initialised: the transaction "
                    "coordinator did not answer; is the cluster up?"
                ) from None
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                retriable = isinstance(error, KafkaError) and error.retriable()
                if not retriable or time.monotonic() > deadline:
                    raise StreamsError(
                        f"the transactional producer could not be initialised: {exc}"
                    ) from exc
                log.warning("init_transactions failed (%s); retrying", exc)
                time.sleep(1.0)

    def _abort(self) -> None:
        """Abort the open transaction; a producer stuck in librdkafka is replaced, which aborts
        the transaction on the coordinator as well."""
        try:
            self._txn("abort_transaction", lambda: self._producer.abort_transaction(TXN_TIMEOUT_S))
        except CallStuck:
            self._replace_producer()
        except KafkaException as exc:
            # A producer that cannot abort (fatal, or its coordinator unreachable) is
            # replaced: the new one aborts the transaction on the coordinator.
            log.warning("abort failed (%s); replacing the producer", exc)
            self._replace_producer()
        self.in_transaction = False
        self._uncommitted_dead_letters = 0

    def _replace_producer(self) -> None:
        """Swap a producer stuck in a transactional call for a new one.

        ``send_offsets_to_transaction`` can block past its timeout when the group coordinator
        was on a broker that failed (librdkafka #5456, #5511). The new producer has the same
        transactional id, so ``init_transactions`` fences the stuck one and aborts its open
        transaction; the caller then reprocesses from the last commit. The stuck call keeps
        its thread and producer until it returns, if ever; neither is used again.
        """
        log.error("transactional producer stuck in librdkafka; replacing it")
        self._producer = self._make_producer()
        self.dead_letters.producer = self._producer
        self.in_transaction = False
        self._init_transactions()

    def _poll_producer(self) -> None:
        """Serve delivery reports; a fatal producer error it raises is survived as in
        ``_check_delivery`` (librdkafka raises it from poll once the producer is fenced)."""
        try:
            self._producer.poll(0)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (self.settings.exactly_once and isinstance(error, KafkaError) and error.fatal()):
                raise
            self.producer_fatal.append(error.str())

    def _recover_from_fatal(self, reason: str) -> None:
        """A producer in a fatal state is replaced: the new one, with the same transactional
        id, fences the old and aborts its open transaction, and processing resumes from the
        last commit, so nothing is lost or written twice. Bounded: see FATAL_RECOVERIES_MAX."""
        now = time.monotonic()
        recent = [t for t in self._fatal_recoveries if now - t < FATAL_RECOVERY_WINDOW_S]
        if len(recent) >= FATAL_RECOVERIES_MAX:
            raise StreamsError(
                f"the transactional producer failed fatally {len(recent) + 1} times in "
                f"{FATAL_RECOVERY_WINDOW_S:.0f} s (last: {reason}); is another instance running "
                "on the same state directory? This instance stops"
            )
        self._fatal_recoveries = [*recent, now]
        log.error("transactional producer failed (%s); replacing it and reprocessing", reason)
        old = self._producer
        self._producer = self._make_producer()
        self.dead_letters.producer = self._producer
        self.in_transaction = False
        self.delivery_errors.clear()
        with contextlib.suppress(KafkaException):
            old.purge()
        _close(old)
        self._init_transactions()
        self._rewind()

    def _rewind(self, exclude: set[int] | None = None) -> None:
        """After an abort: fresh tasks from durable state, consumer back to committed offsets."""
        assignment = [
            tp for tp in self._consumer.assignment() if tp.partition not in (exclude or set())
        ]
        for task in self.tasks.values():
            for store in task.stores.values():
                if isinstance(store, DurableStore):
                    store.discard_uncommitted()
            self._close_task(task)
        self.tasks = {p: self._open_task(p) for p in sorted({tp.partition for tp in assignment})}
        self.positions.clear()
        self._uncommitted_dead_letters = 0
        if not assignment:
            return
        for tp in committed_offsets(self._consumer, assignment, timeout_s=60):
            if tp.offset >= 0:
                self._consumer.seek(tp)
            else:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, -2))


#: Delivery reports of records an aborted transaction threw away.
_PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})


def _close(producer: Producer) -> None:
    """Release the producer's connections now rather than when it is garbage collected.

    A producer in a fatal state raises its error again on close; that error was already dealt
    with (or is being raised), so it must not replace the one that matters."""
    close = getattr(producer, "close", None)  # Producer.close arrived in confluent-kafka 2.x
    if close is not None:
        try:
            close()
        except (KafkaException, SystemError) as exc:  # a fenced producer's close can raise
            log.warning("closing a failed producer: %s", exc)
