"""Retention by time and size, and DeleteRecords."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.storage import LogConfig, OffsetOutOfRangeError, PartitionLog
from test_storage_support import append, log_files, read_all

CONFIG = LogConfig(segment_bytes=500, index_interval_bytes=100, retention_ms=-1)


def fill(log: PartitionLog, batches: int, *, ts: int = 0) -> None:
    for i in range(batches):
        append(log, [b"x" * 40], ts=ts + i)


def test_retention_by_time(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=500, index_interval_bytes=100, retention_ms=1_000)
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    fill(log, 20, ts=0)  # timestamps 0..19
    fill(log, 20, ts=5_000)  # timestamps 5000..5019
    before = log.segments()
    assert log.enforce_retention(now_ms=1_000) == 0  # nothing older than 0
    assert log.enforce_retention(now_ms=5_000) > 0
    after = log.segments()
    assert after == [s for s in before if s[0] >= after[0][0]]
    assert log.log_start_offset == after[0][0]
    assert 12 <= log.log_start_offset <= 20
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    # Everything expired: all but the active segment goes, the active one stays.
    log.enforce_retention(now_ms=100_000)
    assert len(log.segments()) == 1
    assert log.log_end_offset == 40
    assert len(log_files(tmp_path)) == 1
    log.close()
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    assert log.log_start_offset == log.segments()[0][0]
    log.close()


def test_retention_by_size(tmp_path: Path) -> None:
    config = LogConfig(
        segment_bytes=500, index_interval_bytes=100, retention_ms=-1, retention_bytes=1_000
    )
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    fill(log, 60)
    deleted = log.enforce_retention(now_ms=0)
    assert deleted > 0
    sizes = [size for _, size in log.segments()]
    assert sum(sizes) >= 1_000 - 500  # never below the limit by a whole segment
    assert sum(sizes) - sizes[0] < 1_000
    assert read_all(log)[-1][0] == 59
    log.close()


def test_retention_only_with_delete_policy(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=500, retention_ms=0, cleanup_policy="compact")
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    fill(log, 30)
    assert log.enforce_retention(now_ms=10**12) == 0
    log.update_config(LogConfig(segment_bytes=500, retention_ms=0, cleanup_policy="compact,delete"))
    assert log.enforce_retention(now_ms=10**12) > 0
    log.close()


def test_retention_keeps_unflushed_segments_recoverable(tmp_path: Path) -> None:
    config = LogConfig(
        segment_bytes=500, index_interval_bytes=100, retention_ms=-1, retention_bytes=600
    )
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    fill(log, 60)  # rolled many times, never flushed
    log.enforce_retention(now_ms=0)
    segments = log.segments()
    log._abandon()
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    assert log.segments() == segments
    assert log.log_end_offset == 60
    log.close()


def test_delete_records(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    fill(log, 40)
    bases = [base for base, _ in log.segments()]
    target = bases[2] + 1
    assert log.delete_records(target) == target
    assert log.log_start_offset == target
    assert [base for base, _ in log.segments()] == bases[2:]
    assert read_all(log)[0][0] == target
    with pytest.raises(OffsetOutOfRangeError):
        log.read(target - 1, 100)
    assert log.delete_records(3) == target  # never moves backwards
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records(41)
    log.close()
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    assert log.log_start_offset == target
    assert log.offset_for_timestamp(0) == (target, target)
    assert log.delete_records(40) == 40
    assert log.read(40, 100) == b""
    assert len(log.segments()) == 1
    assert append(log, [b"after"]) == 40
    log.close()
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    assert read_all(log) == [(40, b"after")]
    log.close()
