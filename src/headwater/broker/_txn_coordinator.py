"""The transaction coordinator: producer epochs, the partitions and groups of each open
transaction, two-phase completion with control markers, timeouts and crash completion.

Completion follows Kafka: the coordinator durably records PrepareCommit/PrepareAbort (with the
transaction's pending group offsets), writes a control marker to every partition of the
transaction and fsyncs them, applies the offsets on commit, then records the Complete state.
A broker restarted between those steps finishes the job on start, so a transaction is never
torn. Transactional produces are checked against the open transaction (KIP-890's server-side
defence): a late produce of a finished transaction is refused, not absorbed into the next one.

Transaction version 2 (KIP-890 part 2, EndTxn v5 and Produce v12): a produce adds its partition
to the transaction itself, TxnOffsetCommit adds its group, and every EndTxn bumps the producer
epoch, writes the markers under the new epoch and returns it. A produce delayed past its
transaction's end then carries a stale epoch and is fenced even if the next transaction has
already added the same partition.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING

from headwater.broker._offsets import CommittedOffset
from headwater.broker._txn_store import (
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    EMPTY,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    TxnMeta,
    TxnStore,
)
from headwater.protocol import NewRecord, build_batch, read_header, split_batches

if TYPE_CHECKING:
    from headwater.broker._server import Broker
    from headwater.broker._topics import Partition

log = logging.getLogger(__name__)

INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
UNKNOWN_TOPIC_OR_PARTITION = 3
TRANSACTION_TIMEOUT_MAX_MS = 900_000
EPOCH_MAX = 32767
_COMMIT, _ABORT = 1, 0


class TxnError(Exception):
    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class TransactionCoordinator:
    """Owned by the event loop; every state change is durable before it is answered."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self.store = TxnStore(broker.config.data_dir, broker.now_ms())
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, txn_id: str) -> asyncio.Lock:
        return self._locks.setdefault(txn_id, asyncio.Lock())

    async def _persist(self, meta: TxnMeta) -> None:
        offset = self.store.write(meta, self._broker.now_ms())
        await self._broker.committer.wait_durable(self.store.log, offset)

    # -- recovery and timeouts -----------------------------------------------------------
    async def recover(self) -> None:
        """Finish transactions a crash interrupted between prepare and complete, and abort
        partition-level transactions the coordinator does not know as open (their
        AddPartitionsToTxn never became durable), so no last stable offset stays stuck."""
        for meta in list(self.store.transactions.values()):
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                async with self._lock(meta.transactional_id):
                    await self._complete(meta)
        open_here = {
            (meta.producer_id, tp)
            for meta in self.store.transactions.values()
            if meta.state == ONGOING
            for tp in meta.partitions
        }
        now = self._broker.now_ms()
        orphans: set[int] = set()
        for partition in self._broker.topics.all_partitions():
            tp = (partition.topic, partition.index)
            for pid in list(partition.producers.ongoing):
                if (pid, tp) not in open_here:
                    log.warning(
                        "aborting orphan transaction producer_id=%d topic=%s partition=%d",
                        pid,
                        tp[0],
                        tp[1],
                    )
                    epoch = partition.producers.producers().get(pid, (0, 0, 0, -1))[0]
                    self._write_marker(partition, pid, epoch, committed=False, now_ms=now)
                    orphans.add(pid)
        await self._fence_orphans(orphans)

    async def _fence_orphans(self, orphans: set[int]) -> None:
        """Bump the epoch of producers whose transaction recovery just aborted.

        Their AddPartitionsToTxn was lost (written, not yet fsynced, when the power went), so
        the coordinator's record shows no open transaction. Without a new epoch, the producer's
        retried EndTxn(commit) would be answered as a success for data that was aborted; with
        it, the producer is told it was fenced and must start over, as when a transaction
        times out.
        """
        for meta in list(self.store.transactions.values()):
            if meta.producer_id in orphans and meta.state != ONGOING:
                async with self._lock(meta.transactional_id):
                    self._bump_epoch(meta)
                    # A retried EndTxn v5 under the old epoch must learn it was aborted.
                    meta.state = COMPLETE_ABORT
                    await self._persist(meta)

    def _write_marker(
        self,
        partition: Partition,
        producer_id: int,
        producer_epoch: int,
        *,
        committed: bool,
        now_ms: int,
    ) -> int:
        """Append a commit or abort marker; returns its offset."""
        marker = build_batch(
            [
                NewRecord(
                    struct.pack(">hh", 0, _COMMIT if committed else _ABORT),
                    struct.pack(">hi", 0, 0),
                    now_ms,
                )
            ],
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            transactional=True,
            control=True,
        )
        result = partition.log.append(marker, split_batches(marker), now_ms=now_ms)
        partition.producers.record(read_header(marker, 0), committed)
        partition.notify()
        return result.last_offset

    async def expire(self) -> int:
        """Abort transactions open longer than their timeout, fencing their producers."""
        now = self._broker.now_ms()
        expired = 0
        for meta in list(self.store.transactions.values()):
            if meta.state == ONGOING and now - meta.start_ms > meta.timeout_ms:
                async with self._lock(meta.transactional_id):
                    if meta.state != ONGOING:
                        continue
                    log.info("aborting timed-out transaction id=%s", meta.transactional_id)
                    self._bump_epoch(meta)
                    meta.state = PREPARE_ABORT
                    await self._persist(meta)
                    await self._complete(meta)
                    expired += 1
        return expired

    # -- requests ------------------------------------------------------------------------
    async def init_producer_id(
        self, txn_id: str, timeout_ms: int, producer_id: int, producer_epoch: int
    ) -> tuple[int, int]:
        if not 1 <= timeout_ms <= TRANSACTION_TIMEOUT_MAX_MS:
            raise TxnError(
                INVALID_TRANSACTION_TIMEOUT,
                f"transaction.timeout.ms must be 1..{TRANSACTION_TIMEOUT_MAX_MS}",
            )
        async with self._lock(txn_id):
            meta = self.store.transactions.get(txn_id)
            if meta is None:
                meta = TxnMeta(txn_id, self._broker.allocate_producer_id(), 0, timeout_ms)
            else:
                if producer_id >= 0 and (producer_id, producer_epoch) != (
                    meta.producer_id,
                    meta.producer_epoch,
                ):
                    raise TxnError(INVALID_PRODUCER_EPOCH, "producer id/epoch is stale")
                if meta.state == ONGOING:  # a previous incarnation's transaction: abort it
                    self._bump_epoch(meta)
                    meta.state = PREPARE_ABORT
                    await self._persist(meta)
                if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                    await self._complete(meta)
                self._bump_epoch(meta)
                meta.timeout_ms = timeout_ms
            meta.state = EMPTY
            meta.partitions.clear()
            meta.groups.clear()
            meta.pending_offsets.clear()
            await self._persist(meta)
            return meta.producer_id, meta.producer_epoch

    def _bump_epoch(self, meta: TxnMeta) -> None:
        meta.last_producer_id, meta.last_producer_epoch = meta.producer_id, meta.producer_epoch
        if meta.producer_epoch + 1 >= EPOCH_MAX:
            meta.producer_id = self._broker.allocate_producer_id()
            meta.producer_epoch = 0
        else:
            meta.producer_epoch += 1

    def _checked(self, txn_id: str, producer_id: int, producer_epoch: int) -> TxnMeta:
        meta = self.store.transactions.get(txn_id)
        if meta is None or meta.producer_id != producer_id:
            raise TxnError(
                INVALID_PRODUCER_ID_MAPPING,
                f"transactional id {txn_id!r} is not mapped to producer {producer_id}",
            )
        if meta.producer_epoch != producer_epoch:
            raise TxnError(INVALID_PRODUCER_EPOCH, "producer fenced by a newer epoch")
        if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            raise TxnError(CONCURRENT_TRANSACTIONS, "previous transaction still completing")
        return meta

    async def add_partitions(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], int]:
        """Per-partition error codes; all or nothing, as Kafka does."""
        async with self._lock(txn_id):
            meta = self._checked(txn_id, producer_id, producer_epoch)
            missing = [tp for tp in partitions if self._broker.topics.partition(*tp) is None]
            if missing:
                return {
                    tp: (UNKNOWN_TOPIC_OR_PARTITION if tp in missing else 0) for tp in partitions
                }
            new = set(partitions) - meta.partitions
            if new or meta.state != ONGOING:
                self._begin(meta)
                meta.partitions |= new
                # Written, not fsynced: the Prepare record's fsync covers it, and a crash
                # before that leaves partition-level transactions that recovery aborts.
                self.store.write(meta, self._broker.now_ms())
            return dict.fromkeys(partitions, 0)

    def _begin(self, meta: TxnMeta) -> None:
        if meta.state != ONGOING:
            meta.state = ONGOING
            meta.start_ms = self._broker.now_ms()
            meta.partitions.clear()
            meta.groups.clear()
            meta.pending_offsets.clear()

    def add_partition_implicitly(
        self, txn_id: str | None, producer_id: int, producer_epoch: int, tp: tuple[str, int]
    ) -> int:
        """Transaction version 2: a Produce v12 batch adds its partition to the producer's
        transaction (opening one if none is open). Returns an error code, 0 when accepted.

        Synchronous on purpose: it runs between the produce's checks and its append with no
        await in between, so no EndTxn can slip into that gap."""
        if txn_id is None:
            return INVALID_TXN_STATE
        try:
            meta = self._checked(txn_id, producer_id, producer_epoch)
        except TxnError as exc:
            return exc.error_code
        if meta.state != ONGOING or tp not in meta.partitions:
            self._begin(meta)
            meta.partitions.add(tp)
            # As for AddPartitionsToTxn: written now, made durable by the Prepare record.
            self.store.write(meta, self._broker.now_ms())
        return 0

    async def add_offsets(
        self, txn_id: str, producer_id: int, producer_epoch: int, group_id: str
    ) -> None:
        async with self._lock(txn_id):
            meta = self._checked(txn_id, producer_id, producer_epoch)
            self._begin(meta)
            meta.groups.add(group_id)
            self.store.write(meta, self._broker.now_ms())

    async def txn_offset_commit(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        offsets: list[tuple[str, int, int, int, str | None]],
        *,
        implicit: bool = False,
    ) -> None:
        """``implicit`` (TxnOffsetCommit v5, transaction version 2) adds the group to the
        transaction instead of requiring AddOffsetsToTxn first."""
        meta = self._checked(txn_id, producer_id, producer_epoch)
        if implicit and (meta.state != ONGOING or group_id not in meta.groups):
            self._begin(meta)
            meta.groups.add(group_id)
        if meta.state != ONGOING or group_id not in meta.groups:
            raise TxnError(INVALID_TXN_STATE, "AddOffsetsToTxn must come before TxnOffsetCommit")
        pending = {(e[0], e[1]): e for e in meta.pending_offsets.get(group_id, [])}
        for entry in offsets:
            pending[(entry[0], entry[1])] = entry
        meta.pending_offsets[group_id] = list(pending.values())
        # Durable before answering: a restart before EndTxn must not commit output without them.
        await self._persist(meta)

    def pending_for(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions of ``group_id`` with offsets waiting in an open transaction."""
        return {
            (t, p)
            for meta in self.store.transactions.values()
            if meta.state == ONGOING
            for t, p, *_ in meta.pending_offsets.get(group_id, [])
        }

    async def end_txn(
        self,
        txn_id: str,
        producer_id: int,
        producer_epoch: int,
        committed: bool,
        *,
        bump_epoch: bool = False,
    ) -> tuple[int, int]:
        """End the open transaction; returns the producer id and epoch for the next one.

        ``bump_epoch`` is transaction version 2 (EndTxn v5): the epoch moves on with every
        transaction, and a retry of an EndTxn that already bumped it is recognised by the
        previous id and epoch."""
        async with self._lock(txn_id):
            meta = self.store.transactions.get(txn_id)
            if (
                bump_epoch
                and meta is not None
                and (producer_id, producer_epoch)
                == (meta.last_producer_id, meta.last_producer_epoch)
                and meta.state in (COMPLETE_COMMIT, COMPLETE_ABORT)
            ):
                if (meta.state == COMPLETE_COMMIT) == committed:
                    return meta.producer_id, meta.producer_epoch  # a retried EndTxn v5
                # Also a commit of a transaction the timeout aborted, as Kafka answers it.
                raise TxnError(INVALID_TXN_STATE, "transaction already ended the other way")
            if (
                not bump_epoch
                and meta is not None
                and meta.producer_id == producer_id
                and meta.producer_epoch == producer_epoch
                and meta.state in (COMPLETE_COMMIT, COMPLETE_ABORT)
            ):
                if (meta.state == COMPLETE_COMMIT) == committed:
                    return meta.producer_id, meta.producer_epoch  # a retried EndTxn
                raise TxnError(INVALID_TXN_STATE, "transaction already ended the other way")
            meta = self._checked(txn_id, producer_id, producer_epoch)
            if meta.state != ONGOING:
                return await self._end_nothing(meta, committed, bump_epoch=bump_epoch)
            if bump_epoch:
                self._bump_epoch(meta)
            meta.state = PREPARE_COMMIT if committed else PREPARE_ABORT
            await self._persist(meta)
            # The durable Prepare record is the decision; the markers, offsets and Complete
            # record need no fsync of their own because recovery redoes them from it.
            await self._complete(meta, wait_durable=False)
            return meta.producer_id, meta.producer_epoch

    async def _end_nothing(
        self, meta: TxnMeta, committed: bool, *, bump_epoch: bool
    ) -> tuple[int, int]:
        """EndTxn with no transaction open, as Kafka answers it: INVALID_TXN_STATE, except
        that with transaction version 2 an abort bumps the epoch (how a client recovers from
        an abortable error without knowing whether anything was added)."""
        if committed or not bump_epoch:
            raise TxnError(INVALID_TXN_STATE, "no transaction is open")
        self._bump_epoch(meta)
        meta.state = COMPLETE_ABORT
        await self._persist(meta)
        return meta.producer_id, meta.producer_epoch

    async def _complete(self, meta: TxnMeta, *, wait_durable: bool = True) -> None:
        committed = meta.state == PREPARE_COMMIT
        broker = self._broker
        now = broker.now_ms()
        waits = []
        for topic, index in sorted(meta.partitions):
            partition = broker.topics.partition(topic, index)
            if partition is None:
                continue
            # The transaction's data is under the current id, or under the previous one when
            # the bump that ended it rolled the epoch over to a new producer id.
            if meta.producer_id in partition.producers.ongoing:
                marker_pid, marker_epoch = meta.producer_id, meta.producer_epoch
            elif meta.last_producer_id in partition.producers.ongoing:
                marker_pid, marker_epoch = meta.last_producer_id, meta.last_producer_epoch
            else:
                continue
            marker = build_batch(
                [
                    NewRecord(
                        struct.pack(">hh", 0, _COMMIT if committed else _ABORT),
                        struct.pack(">hi", 0, 0),
                        now,
                    )
                ],
                producer_id=marker_pid,
                producer_epoch=marker_epoch,
                transactional=True,
                control=True,
            )
            result = partition.log.append(marker, split_batches(marker), now_ms=now)
            partition.producers.record(read_header(marker, 0), committed)
            partition.notify()
            waits.append(broker.committer.wait_durable(partition.log, result.last_offset))
        if committed:
            for group_id, offsets in meta.pending_offsets.items():
                table = {(t, p): CommittedOffset(o, e, m, now) for t, p, o, e, m in offsets}
                if table:
                    last = broker.offsets.commit(group_id, table, now)
                    waits.append(broker.committer.wait_durable(broker.offsets.log, last))
        if wait_durable:
            await asyncio.gather(*waits)
        else:
            for wait in waits:
                wait.close()
        meta.state = COMPLETE_COMMIT if committed else COMPLETE_ABORT
        meta.partitions.clear()
        meta.groups.clear()
        meta.pending_offsets.clear()
        if wait_durable:
            await self._persist(meta)
        else:
            self.store.write(meta, broker.now_ms())

    def verify_produce(
        self, txn_id: str | None, producer_id: int, producer_epoch: int, tp: tuple[str, int]
    ) -> int:
        """KIP-890: a transactional batch must belong to the producer's open transaction."""
        if txn_id is None:
            return INVALID_TXN_STATE
        meta = self.store.transactions.get(txn_id)
        if meta is None or meta.producer_id != producer_id:
            return INVALID_PRODUCER_ID_MAPPING
        if producer_epoch < meta.producer_epoch:
            return INVALID_PRODUCER_EPOCH
        if (
            meta.producer_epoch != producer_epoch
            or meta.state != ONGOING
            or tp not in meta.partitions
        ):
            return INVALID_TXN_STATE
        return 0

    def close(self) -> None:
        self.store.close()
