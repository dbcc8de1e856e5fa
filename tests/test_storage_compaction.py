"""Compaction: latest value per key, tombstones after delete_retention_ms, offsets kept."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.protocol import (
    NewRecord,
    build_batch,
    decode_batch,
    iter_batches,
    split_batches,
    validate_batch,
)
from headwater.storage import LogConfig, PartitionLog
from test_storage_support import log_files

CONFIG = LogConfig(
    segment_bytes=600,
    index_interval_bytes=100,
    retention_ms=-1,
    cleanup_policy="compact",
    delete_retention_ms=1_000,
)


def put(
    log: PartitionLog,
    pairs: list[tuple[bytes | None, bytes | None]],
    *,
    ts: int,
    now_ms: int = 0,
    **kwargs: object,
) -> int:
    payload = build_batch([NewRecord(k, v, ts) for k, v in pairs], **kwargs)  # type: ignore[arg-type]
    return log.append(payload, split_batches(payload), now_ms=now_ms).base_offset


def records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every stored record, validating each batch on the way."""
    out = []
    position = log.log_start_offset
    while position < log.log_end_offset:
        chunk = log.read(position, 100_000)
        if not chunk:
            break
        for pos, header in iter_batches(chunk):
            validate_batch(chunk, pos)
            _, recs = decode_batch(chunk, pos)
            out.extend((r.offset, r.key, r.value) for r in recs if r.offset >= position)
            position = header.last_offset + 1
    return out


def test_keeps_latest_per_key_and_offsets(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    for round_ in range(10):
        for key in (b"a", b"b", b"c"):
            put(log, [(key, f"{key.decode()}{round_}".encode())], ts=round_)
    put(log, [(None, b"no-key")], ts=10)
    for _ in range(8):
        put(log, [(b"d", b"filler" * 5)], ts=11)
    end = log.log_end_offset
    before = records(log)
    removed = log.compact(now_ms=100)
    assert removed > 0
    after = records(log)
    assert log.log_end_offset == end
    assert len(after) == len(before) - removed
    assert set(after) <= set(before)  # offsets and contents unchanged
    latest = {key: off for off, key, _ in before if key is not None}
    for off, key, _ in after:
        if key is not None and off < log.segments()[-1][0]:
            assert latest[key] == off
    assert (30, None, b"no-key") in after
    assert [o for o, _, _ in after] == sorted(o for o, _, _ in after)
    assert log.compact(now_ms=100) == 0  # nothing new to clean
    log.close()
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    assert records(log) == after
    assert log.log_end_offset == end
    for off, _, _ in after:
        assert log.read(off, 1)
    log.close()


def test_tombstones_removed_after_delete_retention(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    put(log, [(b"k", b"v1"), (b"j", b"v")], ts=0)
    put(log, [(b"k", None)], ts=5_000)  # tombstone for k
    for _ in range(12):
        put(log, [(b"z", b"filler" * 5)], ts=5_000)
    log.compact(now_ms=5_500)
    kept = {(k, v) for _, k, v in records(log)}
    assert (b"k", None) in kept and (b"k", b"v1") not in kept
    assert log.compact(now_ms=5_900) == 0  # not due yet
    assert log.compact(now_ms=6_001) == 1
    kept = {(k, v) for _, k, v in records(log)}
    assert all(k != b"k" for k, _ in kept)
    assert (b"j", b"v") in kept
    log.close()


def test_policy_and_lag_are_respected(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=600, retention_ms=-1, cleanup_policy="delete")
    log = PartitionLog.open(tmp_path, config, now_ms=0)
    for i in range(30):
        put(log, [(b"k", b"%d" % i)], ts=i)
    assert log.compact(now_ms=10**9) == 0
    lagged = LogConfig(
        segment_bytes=600, retention_ms=-1, cleanup_policy="compact", min_compaction_lag_ms=1_000
    )
    log.update_config(lagged)
    assert log.compact(now_ms=500) == 0
    assert log.compact(now_ms=2_000) > 0
    log.close()


def test_transactional_and_control_batches_kept_verbatim(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    put(
        log,
        [(b"k", b"txn")],
        ts=0,
        producer_id=7,
        producer_epoch=1,
        base_sequence=0,
        transactional=True,
    )
    put(
        log,
        [(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")],
        ts=0,
        producer_id=7,
        producer_epoch=1,
        transactional=True,
        control=True,
    )
    for i in range(20):
        put(log, [(b"k", b"%d" % i)], ts=1)
    log.compact(now_ms=10)
    kept = records(log)
    assert (0, b"k", b"txn") in kept
    assert kept[1][0] == 1
    log.close()


def test_rewritten_batch_keeps_producer_fields_and_log_append_time(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    payload = build_batch(
        [NewRecord(b"a", b"1", 3), NewRecord(b"b", b"2", 4), NewRecord(b"c", b"3", 5)],
        producer_id=42,
        producer_epoch=3,
        base_sequence=10,
        compression=1,
    )
    log.append(payload, split_batches(payload), now_ms=900, log_append_time=True)
    for i in range(20):
        put(log, [(b"b", b"new%d" % i)], ts=1_000)
    assert log.compact(now_ms=2_000) > 0
    chunk = log.read(0, 1)
    header = validate_batch(chunk)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 10)
    assert header.compression == 1
    assert header.log_append_time and header.max_timestamp == 900
    _, recs = decode_batch(chunk)
    assert [(r.offset, r.key) for r in recs] == [(0, b"a"), (2, b"c")]
    assert header.base_offset == 0 and header.last_offset == 2
    log.close()


def test_interrupted_swap_is_finished_on_open(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    for i in range(40):
        put(log, [(b"k%d" % (i % 3), b"%d" % i)], ts=0)
    expected_end = log.log_end_offset
    log.compact(now_ms=10)
    compacted = records(log)
    log.close()
    # Simulate a crash right after the commit point: the cleaned file is still a .swap,
    # and a stale segment it replaced is still around.
    first = log_files(tmp_path)[0]
    first.rename(first.with_name(first.name + ".swap"))
    (tmp_path / first.name.replace(".log", ".index")).write_bytes(b"\x00" * 16)
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    assert records(log) == compacted
    assert log.log_end_offset == expected_end
    assert not list(tmp_path.glob("*.swap"))
    log.close()


@settings(deadline=None, max_examples=25)
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 3_000)),
        min_size=1,
        max_size=80,
    ),
    now_ms=st.integers(0, 6_000),
    seed=st.integers(0, 2**32),
)
def test_compaction_preserves_latest_values(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[int, bool, int]],
    now_ms: int,
    seed: int,
) -> None:
    directory = tmp_path_factory.mktemp("c")
    log = PartitionLog.open(directory, CONFIG, now_ms=0)
    rng = random.Random(seed)
    latest: dict[bytes, tuple[int, bytes | None, int]] = {}
    for key_n, tombstone, ts in ops:
        key = b"key%d" % key_n
        value = None if tombstone else b"v" * rng.randrange(1, 80)
        offset = put(log, [(key, value)], ts=ts)
        latest[key] = (offset, value, ts)
    end = log.log_end_offset
    log.compact(now_ms=now_ms)
    log.close()
    log = PartitionLog.open(directory, CONFIG, now_ms=0)
    after = {(o, k): v for o, k, v in records(log)}
    active_base = log.segments()[-1][0]
    assert log.log_end_offset == end
    for key, (offset, value, ts) in latest.items():
        expired_tombstone = value is None and ts < now_ms - CONFIG.delete_retention_ms
        if offset >= active_base or not expired_tombstone:
            assert after.get((offset, key), "missing") == value
        else:
            assert (offset, key) not in after
    for (offset, key), _ in after.items():
        assert offset >= active_base or latest[key][0] == offset
    log.close()


def test_small_cleaned_segments_are_merged_and_empty_ones_removed(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    for i in range(200):
        put(log, [(b"k%d" % (i % 4), b"v%d" % i + b"." * 40)], ts=0)
    many = len(log.segments())
    assert many > 20
    log.compact(now_ms=0)
    assert len(log.segments()) <= 3
    assert len(log_files(tmp_path)) == len(log.segments())
    kept = records(log)
    assert {k for _, k, _ in kept} == {b"k0", b"k1", b"k2", b"k3"}
    assert log.log_start_offset == log.segments()[0][0]
    assert log.log_end_offset == 200
    log.close()
    log = PartitionLog.open(tmp_path, CONFIG, now_ms=0)
    assert records(log) == kept
    log.close()
