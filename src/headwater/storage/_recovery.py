"""Open-time recovery: finish interrupted deletes and swaps, then validate only the tail.

Segments before the recovery point were fsynced together with their indexes, so they are
trusted as they are. From the recovery point (or, without one, from the last index entry of
the last segment that still checks out) every batch is validated: header, length, CRC32C and
consecutive offsets. The first batch that fails marks a torn write: the file is cut there and
any later segment, which can only hold unacknowledged data, is removed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from headwater.protocol import BatchHeader, CorruptBatchError, read_header, validate_batch
from headwater.storage._files import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_START_OFFSET,
    LOG_SUFFIX,
    RECOVERY_POINT,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    TMP_SUFFIX,
    parse_segment_name,
    pread_exact,
    read_checkpoint,
    unlink_quietly,
    write_atomically,
    write_checkpoint,
)
from headwater.storage._index import U32_MAX, OffsetIndex, TimeIndex
from headwater.storage._segment import HEADER_BYTES, SCAN_CHUNK_BYTES, Segment, iter_headers

log = logging.getLogger(__name__)

# Without a recovery point, try this many index entries from the end before scanning from 0.
_INDEX_PROBES_MAX = 8


@dataclass(slots=True)
class Recovered:
    """What recovery learned: the segments in order and the offsets that bound them."""

    segments: list[Segment]
    log_start_offset: int
    log_end_offset: int
    scanned_bytes: int
    truncated_bytes: int


def remove_segment_files(directory: Path, base_offset: int) -> None:
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
        unlink_quietly(directory / f"{base_offset:020d}{suffix}")


def finish_interrupted(directory: Path) -> None:
    """Complete compaction swaps and drop leftovers of deletes, cleanings and checkpoints."""
    for swap in sorted(directory.glob(f"*{LOG_SUFFIX}{SWAP_SUFFIX}")):
        base = parse_segment_name(swap.name[: -len(SWAP_SUFFIX)], LOG_SUFFIX)
        if base is None:
            continue
        _finish_swap(directory, base, swap)
    for suffix in (DELETED_SUFFIX, CLEANED_SUFFIX, TMP_SUFFIX):
        for leftover in directory.glob(f"*{suffix}"):
            log.info("removing leftover file=%s", leftover)
            unlink_quietly(leftover)
    logs = {p.name[:20] for p in directory.glob(f"*{LOG_SUFFIX}")}
    for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
        for index in directory.glob(f"*{suffix}"):
            if index.name[:20] not in logs:
                unlink_quietly(index)


def _finish_swap(directory: Path, base: int, swap: Path) -> None:
    """A cleaned segment was fully written before its rename to .swap; finish replacing."""
    last_offset = base - 1
    fd = os.open(swap, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for _, header in iter_headers(fd, 0, os.fstat(fd).st_size):
            last_offset = header.last_offset
    except CorruptBatchError as exc:
        log.warning("cleaned segment damaged file=%s error=%s", swap, exc)
    finally:
        os.close(fd)
    for path in directory.glob(f"*{LOG_SUFFIX}"):
        other = parse_segment_name(path.name, LOG_SUFFIX)
        if other is not None and base < other <= last_offset:
            remove_segment_files(directory, other)
    unlink_quietly(directory / f"{base:020d}{INDEX_SUFFIX}")
    unlink_quietly(directory / f"{base:020d}{TIME_INDEX_SUFFIX}")
    os.replace(swap, directory / f"{base:020d}{LOG_SUFFIX}")
    log.info("finished interrupted compaction swap segment=%d", base)


def _list_segments(directory: Path) -> list[Segment]:
    found: list[Segment] = []
    for path in directory.glob(f"*{LOG_SUFFIX}"):
        base = parse_segment_name(path.name, LOG_SUFFIX)
        if base is not None:
            found.append(Segment(directory, base, path.stat().st_size))
    found.sort(key=lambda s: s.base_offset)
    kept: list[Segment] = []
    for i, seg in enumerate(found):
        if seg.size == 0 and i < len(found) - 1:
            log.info("removing empty segment base_offset=%d", seg.base_offset)
            remove_segment_files(directory, seg.base_offset)
        else:
            kept.append(seg)
    return kept


def recover(directory: Path, interval_bytes: int, now_ms: int) -> Recovered:
    """Bring the directory back to a consistent log and return its in-memory state."""
    finish_interrupted(directory)
    segments = _list_segments(directory)
    saved_start = read_checkpoint(directory / LOG_START_OFFSET, 1)
    start_floor = saved_start[0] if saved_start else 0
    if not segments:
        seg = Segment.create(directory, start_floor)
        seg.first_append_ms = None
        return Recovered([seg], start_floor, start_floor, 0, 0)

    point = read_checkpoint(directory / RECOVERY_POINT, 3)
    first_scanned = len(segments) - 1
    resume: tuple[int, int] | None = None  # (position, offset) promised by the recovery point
    if point is not None:
        offset, base, position = point
        match = [i for i, s in enumerate(segments) if s.base_offset == base]
        if match and position <= segments[match[0]].size:
            first_scanned, resume = match[0], (position, offset)
        else:
            log.warning("recovery point does not match the files dir=%s point=%s", directory, point)

    scanner = _TailScanner(interval_bytes)
    expected = -1
    for i in range(first_scanned, len(segments)):
        seg = segments[i]
        if i == first_scanned:
            position, expected = scanner.resume_point(seg, resume)
        else:
            if seg.base_offset != expected:
                log.warning(
                    "dropping segment after a gap base_offset=%d expected=%d",
                    seg.base_offset,
                    expected,
                )
                _drop_from(directory, segments, i, scanner)
                break
            position = 0
            _fresh_indexes(seg)
            seg.fd = os.open(seg.path(LOG_SUFFIX), os.O_RDWR | os.O_CLOEXEC)
        expected, clean = scanner.scan(seg, position, expected)
        if not clean:
            _drop_from(directory, segments, i + 1, scanner)
            break
    del segments[len(segments) - scanner.dropped :]

    for seg in segments[first_scanned:-1]:
        _seal_inactive(seg)
    active = segments[-1]
    active.first_append_ms = _first_timestamp(active, now_ms)
    active.open_for_append()
    log_start = min(max(segments[0].base_offset, start_floor), expected)
    if start_floor > log_start:
        # DeleteRecords reached past data a crash then lost: offsets are reused from here on,
        # so the old start must not hide them after the next restart.
        write_checkpoint(directory / LOG_START_OFFSET, log_start)
    return Recovered(segments, log_start, expected, scanner.scanned_bytes, scanner.truncated_bytes)


def _fresh_indexes(seg: Segment) -> None:
    seg.index, seg.time_index = OffsetIndex(), TimeIndex()
    seg.bytes_since_index, seg.running_max, seg.last_rel = 0, -1, -1


def _drop_from(directory: Path, segments: list[Segment], start: int, scanner: _TailScanner) -> None:
    for seg in segments[start:]:
        log.warning("removing segment past a torn write base_offset=%d", seg.base_offset)
        seg.close()
        remove_segment_files(directory, seg.base_offset)
        scanner.truncated_bytes += seg.size
    scanner.dropped = len(segments) - start


def _seal_inactive(seg: Segment) -> None:
    """A rolled segment found after the recovery point: make it trusted for the next open."""
    assert seg.index is not None and seg.time_index is not None and seg.fd is not None
    seg.seal()
    os.fsync(seg.fd)
    write_atomically(seg.path(INDEX_SUFFIX), seg.index.encode(), sync_dir=False)
    write_atomically(seg.path(TIME_INDEX_SUFFIX), seg.time_index.encode())


def _first_timestamp(seg: Segment, now_ms: int) -> int | None:
    """When the segment's first batch was written, for segment_ms rolls (Kafka uses this too)."""
    if seg.size == 0:
        return None
    try:
        header = read_header(pread_exact(seg.read_fd(), HEADER_BYTES, 0))
    except CorruptBatchError:
        return now_ms
    return min(now_ms, max(header.max_timestamp, 0))


class _TailScanner:
    """Validates batches from a resume point to the end of each scanned segment."""

    def __init__(self, interval_bytes: int) -> None:
        self.interval_bytes = interval_bytes
        self.scanned_bytes = 0
        self.truncated_bytes = 0
        self.dropped = 0

    def resume_point(self, seg: Segment, promised: tuple[int, int] | None) -> tuple[int, int]:
        """(position, next offset) to validate from, with the indexes trimmed to match."""
        seg.fd = os.open(seg.path(LOG_SUFFIX), os.O_RDWR | os.O_CLOEXEC)
        index, time_index, valid = seg.read_index_files()
        if valid:
            if promised is not None:
                # Only entries below the recovery point were fsynced with their data.
                candidates = [index.last_below_position(promised[0])]
            else:
                last = len(index) - 1
                candidates = list(range(last, max(last - _INDEX_PROBES_MAX, -1), -1))
            for k in candidates:
                if k < 0:
                    break
                header = self._probe(seg, index.rels[k], index.positions[k])
                if header is None:
                    continue
                index.truncate(k + 1)
                time_index.truncate_after_rel(index.rels[k])
                seg.index, seg.time_index = index, time_index
                seg.running_max = max(time_index.last_timestamp, header.max_timestamp)
                seg.bytes_since_index = header.size
                seg.last_rel = index.rels[k]
                return index.positions[k] + header.size, header.last_offset + 1
        elif seg.size > 0:
            log.warning("index missing or invalid, rebuilding segment=%s", seg.path(LOG_SUFFIX))
        _fresh_indexes(seg)
        return 0, seg.base_offset

    def _probe(self, seg: Segment, rel: int, position: int) -> BatchHeader | None:
        assert seg.fd is not None
        try:
            head = read_header(pread_exact(seg.fd, HEADER_BYTES, position))
            if head.base_offset != seg.base_offset + rel or head.size > seg.size - position:
                return None
            data = pread_exact(seg.fd, head.size, position)
            self.scanned_bytes += len(data)
            return validate_batch(data)
        except CorruptBatchError:
            return None

    def scan(self, seg: Segment, position: int, expected: int) -> tuple[int, bool]:
        """Validate from ``position``; cut the file at the first bad batch. (next offset, clean)"""
        assert seg.fd is not None
        end = seg.size
        buf = b""
        buf_at = position
        reason = ""
        while position < end:
            off = position - buf_at
            if off + HEADER_BYTES > len(buf):
                buf, buf_at, off = pread_exact(seg.fd, SCAN_CHUNK_BYTES, position), position, 0
            try:
                header = read_header(buf, off)
                if header.size > end - position:
                    raise CorruptBatchError(f"batch claims {header.size} bytes past the end")
                if off + header.size > len(buf):
                    size = max(SCAN_CHUNK_BYTES, header.size)
                    buf, buf_at, off = pread_exact(seg.fd, size, position), position, 0
                validate_batch(buf, off)
            except CorruptBatchError as exc:
                reason = str(exc)
                break
            if header.base_offset != expected:
                reason = f"base offset {header.base_offset} where {expected} was expected"
                break
            if header.last_offset - seg.base_offset > U32_MAX:
                reason = "offset does not fit the segment's relative index"
                break
            seg.note_batch(
                header.base_offset, position, header.size, header.max_timestamp, self.interval_bytes
            )
            self.scanned_bytes += header.size
            position += header.size
            expected = header.last_offset + 1
        if position == end:
            return expected, True
        log.warning(
            "truncating torn write segment=%s position=%d bytes=%d reason=%s",
            seg.path(LOG_SUFFIX),
            position,
            end - position,
            reason,
        )
        os.ftruncate(seg.fd, position)
        os.fsync(seg.fd)
        self.truncated_bytes += end - position
        seg.size = position
        return expected, False
