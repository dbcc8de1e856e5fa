"""Committed consumer-group offsets, kept in a compacted internal log like Kafka's.

Each commit appends one record per partition to ``__consumer_offsets-0`` (key: group, topic,
partition; value: offset, leader epoch, metadata, commit time; a null value deletes). The
in-memory table is rebuilt by replaying that log on start, and compaction keeps it small.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from headwater.protocol import NewRecord, build_batch, decode_batch, iter_batches, split_batches
from headwater.storage import LogConfig, PartitionLog

log = logging.getLogger(__name__)

OFFSETS_LOG = "__consumer_offsets-0"
_READ_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_ms: int


TopicPartition = tuple[str, int]


def _key(group: str, topic: str, partition: int) -> bytes:
    return json.dumps([group, topic, partition], separators=(",", ":")).encode()


class OffsetStore:
    """Group → partition → committed offset, durable through the internal log."""

    def __init__(self, data_dir: Path, now_ms: int) -> None:
        config = LogConfig(
            cleanup_policy="compact", segment_bytes=64 * 1024 * 1024, retention_ms=-1
        )
        self.log = PartitionLog.open(data_dir / OFFSETS_LOG, config, now_ms=now_ms)
        self.groups: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._replay()

    def _replay(self) -> None:
        position = self.log.log_start_offset
        while position < self.log.log_end_offset:
            chunk = self.log.read(position, _READ_CHUNK_BYTES)
            if not chunk:
                break
            for pos, header in iter_batches(chunk):
                _, records = decode_batch(chunk, pos)
                for record in records:
                    self._apply(record.key, record.value)
                position = header.last_offset + 1
        log.info("replayed committed offsets groups=%d", len(self.groups))

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        group, topic, partition = json.loads(key)
        table = self.groups.setdefault(group, {})
        if value is None:
            table.pop((topic, partition), None)
            if not table:
                self.groups.pop(group, None)
            return
        data = json.loads(value)
        table[(topic, partition)] = CommittedOffset(data["o"], data["e"], data["m"], data["t"])

    def commit(
        self, group: str, offsets: dict[TopicPartition, CommittedOffset], now_ms: int
    ) -> int:
        """Append the commits and apply them; returns the log offset to wait on for fsync."""
        records = [
            NewRecord(
                key=_key(group, topic, partition),
                value=json.dumps(
                    {"o": c.offset, "e": c.leader_epoch, "m": c.metadata, "t": c.commit_ms}
                ).encode(),
                timestamp_ms=now_ms,
            )
            for (topic, partition), c in offsets.items()
        ]
        last = self._append(records, now_ms)
        table = self.groups.setdefault(group, {})
        table.update(offsets)
        return last

    def delete(self, group: str, partitions: list[TopicPartition], now_ms: int) -> int:
        records = [
            NewRecord(key=_key(group, t, p), value=None, timestamp_ms=now_ms)
            for (t, p) in partitions
        ]
        if not records:
            return self.log.log_end_offset - 1
        last = self._append(records, now_ms)
        for record in records:
            self._apply(record.key, None)
        return last

    def _append(self, records: list[NewRecord], now_ms: int) -> int:
        payload = build_batch(records)
        result = self.log.append(payload, split_batches(payload), now_ms=now_ms)
        return result.last_offset

    def fetch(self, group: str) -> dict[TopicPartition, CommittedOffset]:
        return self.groups.get(group, {})

    def close(self) -> None:
        self.log.flush()
        self.log.close()
