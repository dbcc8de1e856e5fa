"""Crash recovery: torn tails, garbage, lost or damaged indexes, and how much gets read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.storage import LogConfig, PartitionLog, _recovery
from test_storage_support import SMALL, append, crash, log_files, read_all


def build(directory: Path, batches: int, config: LogConfig = SMALL) -> list[tuple[int, bytes]]:
    log = PartitionLog.open(directory, config, now_ms=0)
    expected = []
    for i in range(batches):
        values = [f"v{i}-{j}".encode() for j in range(1 + i % 2)]
        base = append(log, values, ts=1_000 + i)
        expected.extend((base + j, v) for j, v in enumerate(values))
    log.close()
    return expected


def last_batch_bounds(log_path: Path) -> tuple[int, int]:
    """(start, end) file positions of the last batch in a segment file."""
    data = log_path.read_bytes()
    pos = 0
    start = 0
    while pos < len(data):
        start = pos
        pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "big")
    return start, pos


@settings(deadline=None, max_examples=25)
@given(cut=st.integers(min_value=1, max_value=10_000))
def test_torn_tail_is_truncated(tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    directory = tmp_path_factory.mktemp("torn")
    expected = build(directory, 30)
    last = log_files(directory)[-1]
    start, end = last_batch_bounds(last)
    torn_at = start + cut % (end - start)  # strictly inside the last batch
    with last.open("r+b") as f:
        f.truncate(torn_at)
    log = PartitionLog.open(directory, SMALL, now_ms=0)
    try:
        kept = [e for e in expected if e[0] < log.log_end_offset]
        assert read_all(log) == kept
        assert len(kept) < len(expected)
        assert kept == expected[: len(kept)]
        assert last.stat().st_size == start
        assert log.recovery_truncated_bytes == torn_at - start
        assert append(log, [b"next"]) == log.log_end_offset - 1 == kept[-1][0] + 1
    finally:
        log.close()


@pytest.mark.parametrize("garbage", [b"\x00" * 100, b"\xff" * 7, os.urandom(300)])
def test_garbage_tail_is_truncated(tmp_path: Path, garbage: bytes) -> None:
    expected = build(tmp_path, 20)
    last = log_files(tmp_path)[-1]
    size = last.stat().st_size
    with last.open("ab") as f:
        f.write(garbage)
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    assert last.stat().st_size == size
    assert append(log, [b"x"]) == len(expected)
    log.close()


def test_corrupted_byte_in_unflushed_tail_cuts_there(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(retention_ms=-1), now_ms=0)
    for i in range(10):
        append(log, [f"{i}".encode()])
    log.flush()
    flushed_size = log.segments()[-1][1]
    for i in range(10, 20):
        append(log, [f"{i}".encode()])
    crash(log)
    last = log_files(tmp_path)[-1]
    with last.open("r+b") as f:  # flip a byte inside the 15th batch's records
        batch_size = (last.stat().st_size - flushed_size) // 10
        f.seek(flushed_size + 5 * batch_size + 64)
        f.write(b"\x99")
    log = PartitionLog.open(tmp_path, LogConfig(retention_ms=-1), now_ms=0)
    assert [v for _, v in read_all(log)] == [f"{i}".encode() for i in range(15)]
    log.close()


def test_batch_with_wrong_offset_is_torn(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(retention_ms=-1), now_ms=0)
    append(log, [b"a"])
    log.flush()
    crash(log)
    # A valid batch whose base offset does not continue the log (stale bytes from elsewhere).
    from test_storage_support import batch

    stray = batch([b"stray"])
    stray[0:8] = (42).to_bytes(8, "big")
    with log_files(tmp_path)[-1].open("ab") as f:
        f.write(stray)
    log = PartitionLog.open(tmp_path, LogConfig(retention_ms=-1), now_ms=0)
    assert read_all(log) == [(0, b"a")]
    log.close()


@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("damage", ["delete", "garbage", "past-end", "truncate-odd"])
def test_damaged_index_files_are_rebuilt(tmp_path: Path, which: str, damage: str) -> None:
    expected = build(tmp_path, 60)
    base = log_files(tmp_path)[0 if which == "first" else -1].name[:20]
    for suffix in (".index", ".timeindex"):
        path = tmp_path / f"{base}{suffix}"
        if damage == "delete":
            path.unlink()
        elif damage == "garbage":
            path.write_bytes(os.urandom(48))
        elif damage == "past-end":
            path.write_bytes(b"\x00\x00\x00\x05\x7f\x00\x00\x00" * 3)
        else:
            path.write_bytes(path.read_bytes()[:-3])
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    for offset, _ in expected[::7]:
        assert log.read(offset, 1)
    assert log.offset_for_timestamp(1_030) is not None
    log.close()
    # The rebuilt index files are valid again: a reopen reads only the tail.
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    assert log.recovery_scanned_bytes < SMALL.segment_bytes
    log.close()


def test_recovery_validates_only_the_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = LogConfig(segment_bytes=2048, index_interval_bytes=256, retention_ms=-1)
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    for i in range(600):
        append(log, [f"record-{i}".encode()])
    last_base = log.segments()[-1][0]
    log.flush()
    for i in range(600, 610):  # unflushed tail past the recovery point
        append(log, [f"record-{i}".encode()])
    crash(log)
    assert len(log_files(tmp_path)) > 20

    validated: list[int] = []
    real = _recovery.validate_batch

    def counting(buf: bytes, pos: int = 0):  # type: ignore[no-untyped-def]
        header = real(buf, pos)
        validated.append(header.base_offset)
        return header

    monkeypatch.setattr(_recovery, "validate_batch", counting)
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    assert log.log_end_offset == 610
    assert validated and min(validated) >= last_base
    assert len(validated) < 40
    assert log.recovery_scanned_bytes < config.segment_bytes
    log.close()


def test_recovery_without_recovery_point_scans_last_segment_only(tmp_path: Path) -> None:
    expected = build(tmp_path, 80)
    (tmp_path / "recovery-point").unlink()
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    assert log.recovery_scanned_bytes <= SMALL.segment_bytes
    log.close()


def test_recovery_point_past_the_file_falls_back(tmp_path: Path) -> None:
    expected = build(tmp_path, 30)
    last = log_files(tmp_path)[-1]
    start, _ = last_batch_bounds(last)
    with last.open("r+b") as f:
        f.truncate(start + 10)
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == [e for e in expected if e[0] < log.log_end_offset]
    assert log.log_end_offset < len(expected)
    log.close()


@pytest.mark.parametrize("content", [b"", b"nonsense", b"1 2 3", b"1 -5 0 0", b"9" * 1000])
def test_invalid_recovery_point_is_ignored(tmp_path: Path, content: bytes) -> None:
    expected = build(tmp_path, 30)
    (tmp_path / "recovery-point").write_bytes(content)
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    log.close()


def test_leftovers_are_cleaned_up(tmp_path: Path) -> None:
    expected = build(tmp_path, 30)
    names = [
        "00000000000000000003.log.deleted",
        "00000000000000000000.log.cleaned",
        "00000000000000000000.index.cleaned",
        "recovery-point.tmp",
        "00000000000000099999.index",  # orphan index without a log
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"junk")
    bases = [int(p.name[:20]) for p in log_files(tmp_path)]
    empty = (bases[0] + bases[1]) // 2  # an empty segment between two real ones
    (tmp_path / f"{empty:020d}.log").write_bytes(b"")
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert read_all(log) == expected
    for name in names:
        assert not (tmp_path / name).exists(), name
    assert not (tmp_path / f"{empty:020d}.log").exists()
    log.close()


def test_unflushed_rolled_segments_are_recovered(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    append(log, [b"flushed"])
    log.flush()
    for i in range(40):  # several rolls, never flushed
        append(log, [f"{i}".encode() * 20])
    segments = log.segments()
    crash(log)
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert log.segments() == segments
    assert log.log_end_offset == 41
    log.close()


def test_torn_middle_segment_drops_later_segments(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    append(log, [b"flushed"])
    log.flush()
    for i in range(40):
        append(log, [f"{i}".encode() * 20])
    crash(log)
    files = log_files(tmp_path)
    assert len(files) > 3
    with files[1].open("r+b") as f:
        f.truncate(files[1].stat().st_size - 5)
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert len(log.segments()) == 2
    values = read_all(log)
    assert values[0] == (0, b"flushed")
    assert [o for o, _ in values] == list(range(len(values)))
    assert len(log_files(tmp_path)) == 2
    log.close()


def test_empty_directory_with_log_start_offset(tmp_path: Path) -> None:
    (tmp_path / "log-start-offset").write_bytes(b"1 500\n")
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)
    assert (log.log_start_offset, log.log_end_offset) == (500, 500)
    assert append(log, [b"a"]) == 500
    log.close()


def test_corrupt_trusted_segment_gives_a_clear_error(tmp_path: Path) -> None:
    from headwater.storage import CorruptLogError

    expected = build(tmp_path, 40)
    first = log_files(tmp_path)[0]
    data = bytearray(first.read_bytes())
    second = 12 + int.from_bytes(data[8:12], "big")
    data[second + 16] = 7  # magic byte of the second batch
    first.write_bytes(bytes(data))
    (tmp_path / first.name.replace(".log", ".index")).unlink()
    log = PartitionLog.open(tmp_path, SMALL, now_ms=0)  # old segments are trusted, not read
    assert log.log_end_offset == expected[-1][0] + 1
    with pytest.raises(CorruptLogError, match="magic"):
        log.read(1, 100)
    later = int(log_files(tmp_path)[1].name[:20])
    assert read_all(log, later) == [e for e in expected if e[0] >= later]
    log.close()
