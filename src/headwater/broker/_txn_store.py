"""Durable transaction metadata, kept in a compacted internal log like Kafka's
``__transaction_state``: one record per change of a transactional id, replayed on start."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from headwater.protocol import NewRecord, build_batch, decode_batch, iter_batches, split_batches
from headwater.storage import LogConfig, PartitionLog

log = logging.getLogger(__name__)

TXN_LOG = "__transaction_state-0"
_READ_CHUNK_BYTES = 4 * 1024 * 1024

EMPTY = "Empty"
ONGOING = "Ongoing"
PREPARE_COMMIT = "PrepareCommit"
PREPARE_ABORT = "PrepareAbort"
COMPLETE_COMMIT = "CompleteCommit"
COMPLETE_ABORT = "CompleteAbort"

# group -> [(topic, partition, offset, leader epoch, metadata)]
PendingOffsets = dict[str, list[tuple[str, int, int, int, str | None]]]


@dataclass(slots=True)
class TxnMeta:
    """What the coordinator knows about one transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: set[tuple[str, int]] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    pending_offsets: PendingOffsets = field(default_factory=dict)
    start_ms: int = -1
    last_update_ms: int = -1
    # The producer id and epoch before the latest bump, so a retried EndTxn v5 of the
    # transaction that bumped them is recognised (KIP-890 part 2), and markers of a
    # transaction whose producer id rolled over still go out under the id it wrote with.
    last_producer_id: int = -1
    last_producer_epoch: int = -1

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "pid": self.producer_id,
                "epoch": self.producer_epoch,
                "timeout": self.timeout_ms,
                "state": self.state,
                "partitions": sorted(self.partitions),
                "groups": sorted(self.groups),
                "offsets": self.pending_offsets,
                "start": self.start_ms,
                "updated": self.last_update_ms,
                "last_pid": self.last_producer_id,
                "last_epoch": self.last_producer_epoch,
            }
        ).encode()

    @classmethod
    def from_json(cls, transactional_id: str, data: bytes) -> TxnMeta:
        raw = json.loads(data)
        return cls(
            transactional_id=transactional_id,
            producer_id=raw["pid"],
            producer_epoch=raw["epoch"],
            timeout_ms=raw["timeout"],
            state=raw["state"],
            partitions={(t, p) for t, p in raw["partitions"]},
            groups=set(raw["groups"]),
            pending_offsets={g: [tuple(o) for o in offs] for g, offs in raw["offsets"].items()},
            start_ms=raw["start"],
            last_update_ms=raw["updated"],
            last_producer_id=raw.get("last_pid", -1),
            last_producer_epoch=raw.get("last_epoch", -1),
        )


class TxnStore:
    """Appends each metadata change; the caller waits for fsync before acting on it."""

    def __init__(self, data_dir: Path, now_ms: int) -> None:
        config = LogConfig(
            cleanup_policy="compact", segment_bytes=64 * 1024 * 1024, retention_ms=-1
        )
        self.log = PartitionLog.open(data_dir / TXN_LOG, config, now_ms=now_ms)
        self.transactions: dict[str, TxnMeta] = {}
        position = self.log.log_start_offset
        while position < self.log.log_end_offset:
            chunk = self.log.read(position, _READ_CHUNK_BYTES)
            if not chunk:
                break
            for pos, header in iter_batches(chunk):
                for record in decode_batch(chunk, pos)[1]:
                    if record.key is None:
                        continue
                    txn_id = record.key.decode()
                    if record.value is None:
                        self.transactions.pop(txn_id, None)
                    else:
                        self.transactions[txn_id] = TxnMeta.from_json(txn_id, record.value)
                position = header.last_offset + 1
        log.info("replayed transactions count=%d", len(self.transactions))

    def write(self, meta: TxnMeta, now_ms: int) -> int:
        """Persist ``meta``; returns the log offset to wait on for durability."""
        meta.last_update_ms = now_ms
        self.transactions[meta.transactional_id] = meta
        payload = build_batch([NewRecord(meta.transactional_id.encode(), meta.to_json(), now_ms)])
        return self.log.append(payload, split_batches(payload), now_ms=now_ms).last_offset

    def close(self) -> None:
        self.log.flush()
        self.log.close()
