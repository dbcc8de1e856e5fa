"""One segment: a .log file of verbatim batches plus its sparse offset and time indexes.

The active segment keeps its three files open for appending and its indexes in memory. Older
segments open their .log for reading on first use and load (or rebuild) their indexes lazily,
so opening a log costs one stat per segment however much data it holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from headwater.protocol import BatchHeader, CorruptBatchError, read_header
from headwater.storage._errors import CorruptLogError
from headwater.storage._files import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    pread_exact,
    segment_name,
    unlink_quietly,
    write_all,
    write_atomically,
)
from headwater.storage._index import OFFSET_ENTRY, TIME_ENTRY, U32_MAX, OffsetIndex, TimeIndex

log = logging.getLogger(__name__)

HEADER_BYTES = 61
# One pread per this many bytes when walking headers; a sparse index gap is usually smaller.
SCAN_CHUNK_BYTES = 64 * 1024
# Index files are tiny next to their segments; refuse to slurp anything absurd.
INDEX_FILE_BYTES_MAX = 256 * 1024 * 1024


def iter_headers(fd: int, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each batch in [start, end); CorruptBatchError on a bad header."""
    pos = start
    buf = b""
    buf_at = start
    while pos < end:
        off = pos - buf_at
        if off + HEADER_BYTES > len(buf):
            buf = pread_exact(fd, min(max(SCAN_CHUNK_BYTES, HEADER_BYTES), end - pos), pos)
            buf_at = pos
            off = 0
        header = read_header(buf, off)
        if header.size > end - pos:
            raise CorruptBatchError(
                f"batch at byte {pos} claims {header.size} bytes but only {end - pos} remain"
            )
        yield pos, header
        pos += header.size


def iter_batch_bytes(fd: int, start: int, end: int) -> Iterator[tuple[int, BatchHeader, bytes]]:
    """(position, header, bytes) of each batch in [start, end), reading in large chunks."""
    pos = start
    buf = b""
    buf_at = start
    while pos < end:
        off = pos - buf_at
        if off + HEADER_BYTES > len(buf):
            buf, buf_at, off = pread_exact(fd, min(SCAN_CHUNK_BYTES, end - pos), pos), pos, 0
        header = read_header(buf, off)
        if header.size > end - pos:
            raise CorruptBatchError(
                f"batch at byte {pos} claims {header.size} bytes but only {end - pos} remain"
            )
        if off + header.size > len(buf):
            size = min(max(SCAN_CHUNK_BYTES, header.size), end - pos)
            buf, buf_at, off = pread_exact(fd, size, pos), pos, 0
        yield pos, header, buf[off : off + header.size]
        pos += header.size


class Segment:
    """The files of one segment and what is known about them in memory."""

    # Slots: a broker holds one per partition at least, so per-instance dicts add up.
    __slots__ = (
        "_max_ts",
        "base_offset",
        "broken",
        "bytes_since_index",
        "directory",
        "fd",
        "first_append_ms",
        "index",
        "index_fd",
        "last_rel",
        "running_max",
        "size",
        "time_fd",
        "time_index",
    )

    def __init__(self, directory: Path, base_offset: int, size: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.size = size
        self.fd: int | None = None
        self.index_fd: int | None = None
        self.time_fd: int | None = None
        self.index: OffsetIndex | None = None
        self.time_index: TimeIndex | None = None
        # Index-building state; exact for the active segment, derived for older ones.
        self.bytes_since_index = 0
        self.running_max = -1
        self.last_rel = -1
        self.first_append_ms: int | None = None
        self._max_ts: int | None = None
        self.broken = False

    def __repr__(self) -> str:
        return f"Segment(base_offset={self.base_offset}, size={self.size})"

    def path(self, suffix: str) -> Path:
        return self.directory / segment_name(self.base_offset, suffix)

    # -- files ---------------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, base_offset: int) -> Segment:
        """A new, empty active segment with all three files open for appending."""
        seg = cls(directory, base_offset, 0)
        seg.index = OffsetIndex()
        seg.time_index = TimeIndex()
        flags = os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        seg.fd = os.open(seg.path(LOG_SUFFIX), flags | os.O_RDWR, 0o644)
        try:
            seg.index_fd = os.open(seg.path(INDEX_SUFFIX), flags | os.O_WRONLY, 0o644)
            seg.time_fd = os.open(seg.path(TIME_INDEX_SUFFIX), flags | os.O_WRONLY, 0o644)
        except OSError:
            seg.close()
            raise
        return seg

    def open_for_append(self) -> None:
        """Make this (recovered) segment the active one: index files rewritten from memory."""
        assert self.index is not None and self.time_index is not None
        flags = os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_WRONLY
        if self.fd is None:
            self.fd = os.open(self.path(LOG_SUFFIX), os.O_RDWR | os.O_CLOEXEC)
        os.lseek(self.fd, self.size, os.SEEK_SET)
        self.index_fd = os.open(self.path(INDEX_SUFFIX), flags, 0o644)
        write_all(self.index_fd, self.index.encode())
        self.time_fd = os.open(self.path(TIME_INDEX_SUFFIX), flags, 0o644)
        write_all(self.time_fd, self.time_index.encode())

    def read_fd(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path(LOG_SUFFIX), os.O_RDONLY | os.O_CLOEXEC)
        return self.fd

    def sync(self) -> None:
        for fd in (self.fd, self.index_fd, self.time_fd):
            if fd is not None:
                os.fsync(fd)

    def sync_log(self) -> None:
        """fsync the data file only (its indexes are rebuilt from it after a crash)."""
        if self.fd is not None:
            os.fsync(self.fd)

    def close_index_fds(self) -> None:
        for fd in (self.index_fd, self.time_fd):
            if fd is not None:
                os.close(fd)
        self.index_fd = self.time_fd = None

    def close(self) -> None:
        self.close_index_fds()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def remove_files(self) -> None:
        """Rename first: a crash mid-way leaves a .deleted file recovery removes, not a segment."""
        self.close()
        log_path = self.path(LOG_SUFFIX)
        doomed = log_path.with_name(log_path.name + DELETED_SUFFIX)
        with contextlib.suppress(FileNotFoundError):
            os.replace(log_path, doomed)
        unlink_quietly(self.path(INDEX_SUFFIX))
        unlink_quietly(self.path(TIME_INDEX_SUFFIX))
        unlink_quietly(doomed)

    # -- indexes -------------------------------------------------------------------------
    def load_indexes(self, interval_bytes: int) -> tuple[OffsetIndex, TimeIndex]:
        """The in-memory indexes, read from disk on first use and rebuilt if invalid."""
        if self.index is not None and self.time_index is not None:
            return self.index, self.time_index
        index, time_index, valid = self.read_index_files()
        if not valid:
            log.warning("rebuilding index segment=%s", self.path(LOG_SUFFIX))
            index, time_index = self.rebuild_indexes(interval_bytes)
        self.index, self.time_index = index, time_index
        self.running_max = time_index.last_timestamp
        return index, time_index

    def read_index_files(self) -> tuple[OffsetIndex, TimeIndex, bool]:
        """Both index files as stored; ``False`` when either is missing, torn or inconsistent."""
        raws: list[bytes | None] = []
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            try:
                with self.path(suffix).open("rb") as f:
                    raw = f.read(INDEX_FILE_BYTES_MAX + 1)
                raws.append(raw if len(raw) <= INDEX_FILE_BYTES_MAX else None)
            except FileNotFoundError:
                raws.append(None)
        index, offsets_ok = OffsetIndex.decode(raws[0] or b"", self.size)
        rel_max = min(U32_MAX, self.size)  # a batch spans >= 61 bytes, so rel < size
        time_index, times_ok = TimeIndex.decode(raws[1] or b"", rel_max)
        valid = raws[0] is not None and raws[1] is not None and offsets_ok and times_ok
        return index, time_index, valid

    def rebuild_indexes(self, interval_bytes: int) -> tuple[OffsetIndex, TimeIndex]:
        """Walk every header of this (trusted, inactive) segment and rewrite both index files."""
        self.index, self.time_index = OffsetIndex(), TimeIndex()
        self.bytes_since_index, self.running_max, self.last_rel = 0, -1, -1
        try:
            for pos, header in iter_headers(self.read_fd(), 0, self.size):
                self.check_order(header, pos)
                self.note_batch(
                    header.base_offset, pos, header.size, header.max_timestamp, interval_bytes
                )
        except CorruptBatchError as exc:
            raise CorruptLogError(f"{self.path(LOG_SUFFIX)}: {exc}") from exc
        self.seal()
        try:
            write_atomically(self.path(INDEX_SUFFIX), self.index.encode(), sync_dir=False)
            write_atomically(self.path(TIME_INDEX_SUFFIX), self.time_index.encode())
        except OSError as exc:  # the in-memory index is still right; the next open retries
            log.warning("cannot rewrite index segment=%s error=%s", self.path(LOG_SUFFIX), exc)
        return self.index, self.time_index

    def check_order(self, header: BatchHeader, position: int) -> None:
        """Offsets read back from disk must climb within the segment's u32 range."""
        rel = header.base_offset - self.base_offset
        if rel <= self.last_rel or header.last_offset - self.base_offset > U32_MAX:
            raise CorruptBatchError(
                f"batch at byte {position} has offset {header.base_offset} out of order"
            )

    def note_batch(
        self, base_offset: int, position: int, size: int, max_ts: int, interval_bytes: int
    ) -> tuple[bool, bool]:
        """Account for one appended batch; returns whether an offset/time entry was added."""
        assert self.index is not None and self.time_index is not None
        rel = base_offset - self.base_offset
        assert 0 <= rel <= U32_MAX
        self.running_max = max(self.running_max, max_ts)
        added_offset = added_time = False
        if self.bytes_since_index >= interval_bytes:
            self.index.append(rel, position)
            added_offset = True
            self.bytes_since_index = 0
            if self.running_max > self.time_index.last_timestamp:
                self.time_index.append(self.running_max, rel)
                added_time = True
        self.bytes_since_index += size
        self.last_rel = rel
        return added_offset, added_time

    def seal(self) -> bool:
        """Record the final running max so an inactive segment's max timestamp is on disk."""
        assert self.time_index is not None
        if self.last_rel >= 0 and self.running_max > self.time_index.last_timestamp:
            self.time_index.append(self.running_max, self.last_rel)
            return True
        return False

    def max_timestamp(self, interval_bytes: int) -> int:
        """Largest batch timestamp in the segment, -1 when it has none."""
        if self.time_index is not None:
            return max(self.running_max, self.time_index.last_timestamp)
        if self._max_ts is None:
            # Retention only needs the last time entry; keep the offset index off the heap.
            _, time_index, valid = self.read_index_files()
            if not valid:
                time_index = self.load_indexes(interval_bytes)[1]
            self._max_ts = time_index.last_timestamp
        return self._max_ts

    # -- appends -------------------------------------------------------------------------
    def append(
        self, payload: bytearray, batches: list[tuple[int, int, int]], interval_bytes: int
    ) -> None:
        """Write ``payload`` (batches as (base_offset, size, max_ts)) and their index entries.

        On any OSError the files and the in-memory state are put back as they were.
        """
        assert self.fd is not None and self.index_fd is not None and self.time_fd is not None
        assert self.index is not None and self.time_index is not None
        saved = (
            self.size,
            self.bytes_since_index,
            self.running_max,
            self.last_rel,
            len(self.index),
            len(self.time_index),
            self.first_append_ms,
        )
        position = self.size
        for base_offset, size, max_ts in batches:
            self.note_batch(base_offset, position, size, max_ts, interval_bytes)
            position += size
        try:
            write_all(self.fd, payload)
            if len(self.index) > saved[4]:
                write_all(self.index_fd, self.index.encode(saved[4]))
            if len(self.time_index) > saved[5]:
                write_all(self.time_fd, self.time_index.encode(saved[5]))
        except OSError:
            try:
                self._roll_back(saved)
            except OSError as exc:
                # The file may now end in bytes we do not account for; appending after
                # them would hide them mid-segment, so the log must be reopened instead.
                log.error(
                    "cannot undo a failed append segment=%s error=%s", self.path(LOG_SUFFIX), exc
                )
                self.broken = True
            raise
        self.size = position

    def _roll_back(self, saved: tuple[int, int, int, int, int, int, int | None]) -> None:
        assert self.fd is not None and self.index_fd is not None and self.time_fd is not None
        assert self.index is not None and self.time_index is not None
        size, since, running, last_rel, n_offsets, n_times, first_ms = saved
        self.bytes_since_index, self.running_max, self.last_rel = since, running, last_rel
        self.first_append_ms = first_ms
        self.index.truncate(n_offsets)
        del self.time_index.timestamps[n_times:]
        del self.time_index.rels[n_times:]
        for fd, length in (
            (self.fd, size),
            (self.index_fd, n_offsets * OFFSET_ENTRY.size),
            (self.time_fd, n_times * TIME_ENTRY.size),
        ):
            os.ftruncate(fd, length)
            os.lseek(fd, length, os.SEEK_SET)

    # -- lookups -------------------------------------------------------------------------
    def locate(self, offset: int, interval_bytes: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is >= ``offset``."""
        for attempt in range(2):
            index, _ = self.load_indexes(interval_bytes)
            entry = index.floor(offset - self.base_offset) if offset >= self.base_offset else None
            start = entry[1] if entry else 0
            try:
                for pos, header in iter_headers(self.read_fd(), start, self.size):
                    if entry and pos == start and header.base_offset != self.base_offset + entry[0]:
                        raise CorruptBatchError(f"index entry at byte {start} is stale")
                    if header.last_offset >= offset:
                        return pos, header
                return None
            except CorruptBatchError as exc:
                if attempt == 0 and entry is not None and self.index_fd is None:
                    log.warning("stale index segment=%s error=%s", self.path(LOG_SUFFIX), exc)
                    self.rebuild_indexes(interval_bytes)
                    continue
                raise CorruptLogError(f"{self.path(LOG_SUFFIX)}: {exc}") from exc
        raise AssertionError("unreachable")

    def seek_timestamp(self, timestamp: int, interval_bytes: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose max timestamp is >= ``timestamp``."""
        index, time_index = self.load_indexes(interval_bytes)
        rel = time_index.last_before(timestamp)
        entry = index.floor(rel) if rel is not None else None
        start = entry[1] if entry else 0
        try:
            for pos, header in iter_headers(self.read_fd(), start, self.size):
                if header.max_timestamp >= timestamp:
                    return pos, header
        except CorruptBatchError as exc:
            raise CorruptLogError(f"{self.path(LOG_SUFFIX)}: {exc}") from exc
        return None
