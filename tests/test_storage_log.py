"""Append, read, lookups and durability bookkeeping of the partition log."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.protocol import (
    NewRecord,
    build_batch,
    decode_batch,
    iter_batches,
    read_header,
    split_batches,
    validate_batch,
)
from headwater.storage import (
    LogClosedError,
    LogConfig,
    OffsetOutOfRangeError,
    PartitionLog,
    StorageFullError,
)
from test_storage_support import SMALL, append, batch, read_all


@pytest.fixture
def log(tmp_path: Path) -> Iterator[PartitionLog]:
    opened = PartitionLog.open(tmp_path / "t-0", SMALL, now_ms=0)
    yield opened
    opened.close()


def fill(log: PartitionLog, batches: int) -> list[tuple[int, bytes | None]]:
    expected = []
    for i in range(batches):
        values = [f"value-{i}-{j}".encode() for j in range(1 + i % 3)]
        base = append(log, values, ts=1_000 + 10 * i)
        expected.extend((base + j, v) for j, v in enumerate(values))
    return expected


def test_new_log_is_empty(log: PartitionLog) -> None:
    assert (log.log_start_offset, log.log_end_offset, log.flushed_offset) == (0, 0, 0)
    assert log.read(0, 100) == b""
    assert log.last_timestamp() == -1
    assert log.offset_for_timestamp(0) is None
    assert log.segments() == [(0, 0)]
    assert (log.directory / "00000000000000000000.log").exists()


def test_round_trip_across_segments(log: PartitionLog) -> None:
    expected = fill(log, 60)
    assert len(log.segments()) > 3
    assert all(size <= SMALL.segment_bytes for _, size in log.segments())
    assert read_all(log) == expected
    assert log.log_end_offset == len(expected)
    assert log.size_bytes == sum(size for _, size in log.segments())


def test_append_result_and_offsets_rewritten_in_place(log: PartitionLog) -> None:
    append(log, [b"a", b"b", b"c"])
    payload = batch([b"x"]) + batch([b"y", b"z"])
    result = log.append(payload, split_batches(payload), now_ms=5)
    assert (result.base_offset, result.last_offset) == (3, 5)
    assert result.log_append_time_ms == -1
    assert result.log_start_offset == 0
    assert [h.base_offset for h in split_batches(payload)] == [3, 4]


def test_every_offset_reads_from_its_batch(log: PartitionLog) -> None:
    expected = fill(log, 40)
    for offset, value in expected:
        chunk = log.read(offset, 1)  # min_one: exactly the containing batch
        batches = iter_batches(chunk)
        assert len(batches) == 1
        _, records = decode_batch(chunk)
        assert (offset, value) in [(r.offset, r.value) for r in records]


def test_sparse_index_has_entries_and_is_used(log: PartitionLog) -> None:
    fill(log, 60)
    index_files = sorted(log.directory.glob("*.index"))
    assert any(p.stat().st_size > 0 for p in index_files)
    seg = log._segments[0]
    index, _ = seg.load_indexes(SMALL.index_interval_bytes)
    assert len(index) >= 2
    # The entry's position is exactly where the batch with that offset starts.
    for rel, position in zip(index.rels, index.positions, strict=True):
        header = read_header(os.pread(seg.read_fd(), 61, position))
        assert header.base_offset == seg.base_offset + rel


def test_min_one_returns_a_batch_bigger_than_max_bytes(log: PartitionLog) -> None:
    append(log, [b"x" * 500])
    append(log, [b"y"])
    whole = log.read(0, 10)
    assert len(whole) > 500
    validate_batch(whole)
    assert log.read(0, 10, min_one=False) == b""
    two = log.read(0, 10_000)
    assert len(iter_batches(two)) == 2


def test_max_bytes_cuts_at_batch_boundaries(log: PartitionLog) -> None:
    for _ in range(5):
        append(log, [b"v" * 50])
    size = len(log.read(0, 1))
    chunk = log.read(0, size * 3 + size // 2)
    assert len(chunk) == size * 3


def test_max_offset_stops_before_batch(log: PartitionLog) -> None:
    for _ in range(5):
        append(log, [b"a", b"b"])
    chunk = log.read(0, 10_000, max_offset=4)
    assert [h.base_offset for _, h in iter_batches(chunk)] == [0, 2]
    assert log.read(4, 10_000, max_offset=4) == b""


@pytest.mark.parametrize("offset", [-1, 3])
def test_offset_out_of_range(log: PartitionLog, offset: int) -> None:
    append(log, [b"a", b"b"])
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(offset, 100)
    assert (info.value.log_start_offset, info.value.log_end_offset) == (0, 2)
    assert log.read(2, 100) == b""


def test_log_append_time_is_stamped_with_valid_crc(log: PartitionLog) -> None:
    payload = batch([b"a", b"b"], ts=5)
    result = log.append(payload, split_batches(payload), now_ms=777, log_append_time=True)
    assert result.log_append_time_ms == 777
    stored = log.read(0, 1000)
    header = validate_batch(stored)
    assert header.log_append_time and header.max_timestamp == 777
    assert log.offset_for_timestamp(700) == (0, 777)
    assert log.last_timestamp() == 777


def test_offset_for_timestamp(log: PartitionLog) -> None:
    for i in range(40):
        append(log, [b"a", b"b"], ts=1_000 + 10 * i)  # records at t and t+1
    assert log.offset_for_timestamp(0) == (0, 1_000)
    assert log.offset_for_timestamp(1_001) == (1, 1_001)
    assert log.offset_for_timestamp(1_002) == (2, 1_010)
    assert log.offset_for_timestamp(1_391) == (79, 1_391)
    assert log.offset_for_timestamp(1_392) is None
    assert log.last_timestamp() == 1_391


def test_max_timestamp_offset_counts_records_below_the_log_start(log: PartitionLog) -> None:
    """As Kafka's max-timestamp query: records DeleteRecords hid still count while stored."""
    assert log.max_timestamp_offset() is None
    for ts in (1_000, 3_000, 2_000):
        append(log, [b"v"], ts=ts)
    assert log.max_timestamp_offset() == (1, 3_000)
    log.delete_records(2)
    assert log.max_timestamp_offset() == (1, 3_000)
    assert log.offset_for_timestamp(3_000) is None


@settings(deadline=None, max_examples=30)
@given(
    timestamps=st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
    target=st.integers(-1, 10_001),
    interval=st.sampled_from([0, 64, 300, 4096]),
)
def test_offset_for_timestamp_matches_a_linear_scan(
    tmp_path_factory: pytest.TempPathFactory, timestamps: list[int], target: int, interval: int
) -> None:
    directory = tmp_path_factory.mktemp("ts")
    config = LogConfig(segment_bytes=700, index_interval_bytes=interval, retention_ms=-1)
    log = PartitionLog.open(directory, config, now_ms=0)
    try:
        for ts in timestamps:
            append(log, [b"x"], ts=ts)
        want = next(((o, t) for o, t in enumerate(timestamps) if t >= target), None)
        assert log.offset_for_timestamp(target) == want
        log.close()
        log = PartitionLog.open(directory, config, now_ms=0)
        assert log.offset_for_timestamp(target) == want
    finally:
        log.close()


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    log = PartitionLog.open(directory, SMALL, now_ms=0)
    expected = fill(log, 50)
    segments = log.segments()
    log.close()
    log = PartitionLog.open(directory, SMALL, now_ms=0)
    assert log.segments() == segments
    assert read_all(log) == expected
    assert log.flushed_offset == log.log_end_offset == len(expected)
    append(log, [b"more"])
    assert read_all(log)[-1] == (len(expected), b"more")
    log.close()


def test_flush_advances_flushed_offset(log: PartitionLog) -> None:
    append(log, [b"a", b"b"])
    assert log.flushed_offset == 0
    assert log.flush() == 2
    assert log.flushed_offset == 2


def test_segment_ms_rolls_by_time(tmp_path: Path) -> None:
    config = LogConfig(segment_ms=1_000, retention_ms=-1)
    log = PartitionLog.open(tmp_path / "t", config, now_ms=0)
    append(log, [b"a"], now_ms=100)
    append(log, [b"b"], now_ms=1_100)
    assert len(log.segments()) == 1
    append(log, [b"c"], now_ms=1_101)
    assert [base for base, _ in log.segments()] == [0, 2]
    log.close()


def test_payload_must_match_headers(log: PartitionLog) -> None:
    payload = batch([b"a"])
    with pytest.raises(ValueError, match="cover"):
        log.append(payload + b"x", split_batches(payload), now_ms=0)
    with pytest.raises(ValueError, match="at least one"):
        log.append(payload, [], now_ms=0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="segment_bytes"):
        LogConfig(segment_bytes=0)
    with pytest.raises(ValueError, match="cleanup_policy"):
        LogConfig(cleanup_policy="shred")
    with pytest.raises(ValueError, match="retention_ms"):
        LogConfig(retention_ms=-2)


def test_closed_log_refuses_work(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "t", SMALL, now_ms=0)
    log.close()
    log.close()
    assert log.flush() == 0
    with pytest.raises(LogClosedError):
        append(log, [b"a"])
    with pytest.raises(LogClosedError):
        log.read(0, 10)


def test_delete_removes_directory(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "t", SMALL, now_ms=0)
    append(log, [b"a"])
    log.delete()
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("partial", [0, 30])
def test_disk_full_leaves_the_log_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, partial: int
) -> None:
    directory = tmp_path / "t"
    log = PartitionLog.open(directory, SMALL, now_ms=0)
    expected = fill(log, 12)
    sizes = log.segments()
    real_write = os.write
    calls = 0

    def failing_write(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 1 and partial:
            return real_write(fd, memoryview(data)[:partial])  # a short write first
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(StorageFullError) as info:
        append(log, [b"doomed" * 10])
    assert info.value.errno == code
    assert isinstance(info.value, OSError)
    monkeypatch.setattr(os, "write", real_write)

    assert log.log_end_offset == len(expected)
    assert log.segments()[: len(sizes)] == sizes
    assert all(
        size == (log.directory / f"{base:020d}.log").stat().st_size for base, size in log.segments()
    )
    assert append(log, [b"after"]) == len(expected)
    assert read_all(log) == [*expected, (len(expected), b"after")]
    log.close()
    log = PartitionLog.open(directory, SMALL, now_ms=0)
    assert read_all(log) == [*expected, (len(expected), b"after")]
    assert log.recovery_truncated_bytes == 0
    log.close()


def test_flush_from_a_thread_while_appending(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    config = LogConfig(segment_bytes=4096, index_interval_bytes=256, retention_ms=-1)
    log = PartitionLog.open(directory, config, now_ms=0)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def flusher() -> None:
        try:
            while not stop.is_set():
                seen.append(log.flush())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=flusher)
    worker.start()
    try:
        for i in range(2_000):
            append(log, [f"{i}".encode() * 5])
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert seen == sorted(seen)
    assert all(s <= 2_000 for s in seen)
    assert len(log.segments()) > 10
    assert log.flush() == 2_000
    log.close()
    log = PartitionLog.open(directory, config, now_ms=0)
    assert [v for _, v in read_all(log)] == [f"{i}".encode() * 5 for i in range(2_000)]
    log.close()


def test_compressed_batches_are_stored_verbatim(log: PartitionLog) -> None:
    payload = build_batch([NewRecord(b"k", b"v" * 100, 1)] * 3, compression=4)
    stored_before = bytes(payload[12:])
    log.append(payload, split_batches(payload), now_ms=0)
    assert log.read(0, 10_000)[12:] == stored_before


def test_failed_fsync_poisons_the_log_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PartitionLog.open(tmp_path / "t", SMALL, now_ms=0)
    append(log, [b"a"])
    log.flush()
    append(log, [b"b"])

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        log.flush()
    monkeypatch.undo()
    assert log.flushed_offset == 1
    with pytest.raises(LogClosedError):  # the page cache may have dropped the data
        log.flush()
    with pytest.raises(OSError):
        append(log, [b"c"])
    assert read_all(log) == [(0, b"a"), (1, b"b")]
    log.close()
    log = PartitionLog.open(tmp_path / "t", SMALL, now_ms=0)
    assert read_all(log)[0] == (0, b"a")
    log.close()


def test_rolls_before_relative_offsets_overflow(log: PartitionLog) -> None:
    span = (1 << 31) - 1  # the largest last_offset_delta a batch can carry
    for _ in range(3):
        wide = build_batch(
            [NewRecord(None, b"a", 0), NewRecord(None, b"b", 0)], offset_deltas=[0, span]
        )
        log.append(wide, split_batches(wide), now_ms=0)
    assert log.log_end_offset == 3 << 31
    # The third batch would end past u32 relative to base 0, so it starts a new segment.
    assert [base for base, _ in log.segments()] == [0, 2 << 31]
    assert [o for o, _ in read_all(log)] == [
        0,
        span,
        1 << 31,
        (1 << 31) + span,
        2 << 31,
        (2 << 31) + span,
    ]
