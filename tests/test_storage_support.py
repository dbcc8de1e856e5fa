"""Helpers shared by the storage tests: batch builders, a reader of every record, crash tools."""

from __future__ import annotations

from pathlib import Path

from headwater.protocol import NewRecord, build_batch, decode_batch, iter_batches, split_batches
from headwater.storage import LogConfig, PartitionLog

SMALL = LogConfig(segment_bytes=1024, index_interval_bytes=128, retention_ms=-1)


def batch(values: list[bytes | None], *, ts: int = 1_000, key: bytes | None = None) -> bytearray:
    """One batch whose records carry ``values`` and consecutive timestamps from ``ts``."""
    return build_batch(
        [NewRecord(key=key, value=v, timestamp_ms=ts + i) for i, v in enumerate(values)]
    )


def append(
    log: PartitionLog,
    values: list[bytes | None],
    *,
    ts: int = 1_000,
    key: bytes | None = None,
    now_ms: int = 10_000,
) -> int:
    """Append one batch; returns its base offset."""
    payload = batch(values, ts=ts, key=key)
    return log.append(payload, split_batches(payload), now_ms=now_ms).base_offset


def read_all(log: PartitionLog, start: int | None = None) -> list[tuple[int, bytes | None]]:
    """Every (offset, value) from ``start`` to the end, walking reads like a consumer."""
    out: list[tuple[int, bytes | None]] = []
    position = log.log_start_offset if start is None else start
    while position < log.log_end_offset:
        chunk = log.read(position, 4096)
        assert chunk, f"empty read at {position} below end {log.log_end_offset}"
        for pos, header in iter_batches(chunk):
            _, records = decode_batch(chunk, pos)
            out.extend((r.offset, r.value) for r in records if r.offset >= position)
            position = header.last_offset + 1
    return out


def log_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def crash(log: PartitionLog) -> None:
    """Lose the process without flushing or writing a recovery point."""
    log._abandon()
