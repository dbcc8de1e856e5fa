"""Log compaction: keep the latest record per key in inactive segments, offsets unchanged.

A pass builds key -> latest offset over the whole log (active segment included), then
rewrites runs of inactive segments into one ``.cleaned`` file each. The swap is crash-safe:
the fsynced ``.cleaned`` file is renamed to ``.swap`` (the commit point), the old segments are
removed, and ``.swap`` becomes the ``.log``; recovery finishes a swap it finds.

Transactional and control batches are kept verbatim and never supersede other records: the
cleaner does not know which transactions committed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from headwater.protocol import (
    BatchHeader,
    CorruptBatchError,
    NewRecord,
    Record,
    build_batch,
    decode_batch,
    read_header,
    set_log_append_time,
)
from headwater.storage._errors import CorruptLogError
from headwater.storage._files import (
    CLEANED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    fsync_dir,
    unlink_quietly,
    write_all,
    write_atomically,
)
from headwater.storage._index import U32_MAX, OffsetIndex, TimeIndex
from headwater.storage._segment import Segment, iter_batch_bytes

if TYPE_CHECKING:
    from headwater.storage._log import PartitionLog

log = logging.getLogger(__name__)

# Bound on distinct keys tracked per pass; keys first seen after it fills are simply kept.
KEYS_MAX = 1_000_000
# Rewrites are buffered up to this size before each os.write.
_WRITE_BUFFER_BYTES = 1024 * 1024


@dataclass(slots=True)
class CleanerState:
    """What the last pass covered, so an idle log is not rewritten on every run."""

    cleaned_to: int = -1
    tombstone_due_ms: int | None = None


@dataclass(slots=True)
class _Plan:
    """What to change in one group: the record offsets to keep in each batch that shrinks."""

    changes: dict[tuple[int, int], frozenset[int]] = field(default_factory=dict)
    removed: int = 0
    tombstone_due_ms: int | None = None


def compact(log_: PartitionLog, now_ms: int) -> int:
    """One cleaning pass over ``log_``'s inactive segments; returns records removed."""
    config = log_.config
    interval = config.index_interval_bytes
    segments = list(log_._segments)
    cleanable: list[Segment] = []
    lag_ms = config.min_compaction_lag_ms
    for seg in segments[:-1]:
        if lag_ms > 0 and seg.max_timestamp(interval) > now_ms - lag_ms:
            break
        cleanable.append(seg)
    if not cleanable:
        return 0
    state = log_._cleaner
    dirty_end = segments[len(cleanable)].base_offset
    due = state.tombstone_due_ms
    if dirty_end <= state.cleaned_to and (due is None or now_ms < due):
        return 0
    key_map = _latest_offsets(segments)
    ends = [s.base_offset - 1 for s in segments[1 : len(cleanable) + 1]]
    removed = 0
    next_due: int | None = None
    for group in _groups(cleanable, ends, config.segment_bytes):
        plan = _plan(group, key_map, now_ms, config.delete_retention_ms)
        next_due = _earliest(next_due, plan.tombstone_due_ms)
        if plan.removed == 0 and len(group) == 1:
            continue
        _rewrite(log_, group, plan, interval)
        removed += plan.removed
    state.cleaned_to = dirty_end
    state.tombstone_due_ms = next_due
    if removed:
        log.info("compacted dir=%s removed_records=%d", log_.directory, removed)
    return removed


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _each_batch(seg: Segment) -> Iterator[tuple[int, BatchHeader, bytes]]:
    """Whole batches of a trusted segment, one chunk in memory at a time.

    A bad header or offsets out of order is corruption of a trusted file, not a torn write.
    """
    previous = seg.base_offset - 1
    try:
        for pos, header, raw in iter_batch_bytes(seg.read_fd(), 0, seg.size):
            if header.base_offset <= previous or header.last_offset - seg.base_offset > U32_MAX:
                raise CorruptBatchError(f"batch at byte {pos} has offsets out of order")
            previous = header.last_offset
            yield pos, header, raw
    except CorruptBatchError as exc:
        raise CorruptLogError(f"{seg.path(LOG_SUFFIX)}: {exc}") from exc


def _records(seg: Segment, header: BatchHeader, raw: bytes) -> list[Record] | None:
    if header.is_control or header.is_transactional:
        return None
    try:
        return decode_batch(raw)[1]
    except CorruptBatchError as exc:
        log.warning(
            "keeping undecodable batch segment=%s offset=%d error=%s",
            seg.path(LOG_SUFFIX),
            header.base_offset,
            exc,
        )
        return None


def _latest_offsets(segments: list[Segment]) -> dict[bytes, int]:
    latest: dict[bytes, int] = {}
    for seg in segments:
        for _, header, raw in _each_batch(seg):
            for record in _records(seg, header, raw) or ():
                key = record.key
                if key is not None and (key in latest or len(latest) < KEYS_MAX):
                    latest[key] = record.offset
    return latest


def _groups(cleanable: list[Segment], ends: list[int], segment_bytes: int) -> list[list[Segment]]:
    """Runs of segments that fit one segment by size and by u32 relative offsets."""
    groups: list[list[Segment]] = []
    size = 0
    for seg, end in zip(cleanable, ends, strict=True):
        fits = groups and end - groups[-1][0].base_offset <= U32_MAX
        if fits and size + seg.size <= segment_bytes:
            groups[-1].append(seg)
            size += seg.size
        else:
            groups.append([seg])
            size = seg.size
    return groups


def _plan(
    group: list[Segment], latest: dict[bytes, int], now_ms: int, delete_retention_ms: int
) -> _Plan:
    plan = _Plan()
    horizon = now_ms - delete_retention_ms
    for seg in group:
        for pos, header, raw in _each_batch(seg):
            records = _records(seg, header, raw)
            if records is None:
                continue
            keep: list[int] = []
            for record in records:
                if record.key is not None:
                    newest = latest.get(record.key)
                    if newest is not None and newest > record.offset:
                        continue
                    if record.value is None and newest == record.offset:
                        ts = header.max_timestamp if header.log_append_time else record.timestamp_ms
                        if ts < horizon:
                            continue
                        plan.tombstone_due_ms = _earliest(
                            plan.tombstone_due_ms, ts + delete_retention_ms + 1
                        )
                keep.append(record.offset)
            if len(keep) < len(records):
                plan.removed += len(records) - len(keep)
                plan.changes[(seg.base_offset, pos)] = frozenset(keep)
    return plan


def _rebuild(raw: bytes, keep: frozenset[int]) -> bytearray:
    """The same batch with only the kept records, offsets and producer fields unchanged."""
    header, records = decode_batch(raw)
    kept = [r for r in records if r.offset in keep]
    out = build_batch(
        [NewRecord(r.key, r.value, r.timestamp_ms, r.headers) for r in kept],
        base_offset=header.base_offset,
        compression=header.compression,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        partition_leader_epoch=header.partition_leader_epoch,
        offset_deltas=[r.offset - header.base_offset for r in kept],
    )
    if header.log_append_time:
        set_log_append_time(out, 0, len(out), header.max_timestamp)
    return out


def _write_cleaned(group: list[Segment], plan: _Plan, new: Segment, interval: int) -> None:
    fd = os.open(
        new.path(LOG_SUFFIX + CLEANED_SUFFIX),
        os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
        0o644,
    )
    try:
        buffer = bytearray()
        for seg in group:
            for pos, _, raw in _each_batch(seg):
                keep = plan.changes.get((seg.base_offset, pos))
                if keep is not None and not keep:
                    continue
                data = raw if keep is None else _rebuild(raw, keep)
                header = read_header(data)
                new.note_batch(
                    header.base_offset, new.size, header.size, header.max_timestamp, interval
                )
                new.size += len(data)
                buffer += data
                if len(buffer) >= _WRITE_BUFFER_BYTES:
                    write_all(fd, buffer)
                    buffer.clear()
        write_all(fd, buffer)
        os.fsync(fd)
    finally:
        os.close(fd)


def _rewrite(log_: PartitionLog, group: list[Segment], plan: _Plan, interval: int) -> None:
    """Write the cleaned group and swap it in; see the module docstring for the order."""
    directory = log_.directory
    new = Segment(directory, group[0].base_offset, 0)
    new.index, new.time_index = OffsetIndex(), TimeIndex()
    cleaned = new.path(LOG_SUFFIX + CLEANED_SUFFIX)
    try:
        _write_cleaned(group, plan, new, interval)
        if new.size == 0:
            unlink_quietly(cleaned)
            log_._replace_segments(group, None)
            for seg in group:
                seg.remove_files()
            return
        new.seal()
        write_atomically(
            new.path(INDEX_SUFFIX + CLEANED_SUFFIX), new.index.encode(), sync_dir=False
        )
        write_atomically(
            new.path(TIME_INDEX_SUFFIX + CLEANED_SUFFIX), new.time_index.encode(), sync_dir=False
        )
        swap = new.path(LOG_SUFFIX + SWAP_SUFFIX)
        os.replace(cleaned, swap)
        fsync_dir(directory)
    except BaseException:
        for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            unlink_quietly(new.path(suffix + CLEANED_SUFFIX))
        raise
    # Past the commit point: recovery would finish these steps if we crashed now.
    log_._replace_segments(group, new)
    for seg in group[1:]:
        seg.remove_files()
    unlink_quietly(new.path(INDEX_SUFFIX))
    unlink_quietly(new.path(TIME_INDEX_SUFFIX))
    os.replace(swap, new.path(LOG_SUFFIX))
    os.replace(new.path(INDEX_SUFFIX + CLEANED_SUFFIX), new.path(INDEX_SUFFIX))
    os.replace(new.path(TIME_INDEX_SUFFIX + CLEANED_SUFFIX), new.path(TIME_INDEX_SUFFIX))
    fsync_dir(directory)
