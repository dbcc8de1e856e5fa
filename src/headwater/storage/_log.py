"""The partition log: ordered segments, offset assignment, reads, flushes and retention.

Threading: the event-loop thread owns appends, reads, retention and compaction. Only
``flush`` runs on a worker thread. It reads ``_tail`` (end offset, segment, position), which
``append`` replaces in one assignment after the bytes and index entries are written, so a
flush never promises more than it synced. ``_lock`` keeps roll, segment deletion and close
from closing a descriptor a flush is using; appends never take it except to roll.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from headwater.protocol import (
    BatchHeader,
    CorruptBatchError,
    decode_batch,
    read_header,
    set_base_offset,
    set_log_append_time,
)
from headwater.storage import _compaction
from headwater.storage._config import SEGMENT_BYTES_MAX, LogConfig
from headwater.storage._errors import (
    CorruptLogError,
    LogClosedError,
    OffsetOutOfRangeError,
    StorageFullError,
)
from headwater.storage._files import (
    FULL_ERRNOS,
    LOG_START_OFFSET,
    LOG_SUFFIX,
    RECOVERY_POINT,
    fsync_dir,
    pread_exact,
    write_all,
    write_checkpoint,
)
from headwater.storage._index import U32_MAX
from headwater.storage._recovery import recover
from headwater.storage._segment import HEADER_BYTES, Segment, iter_headers

log = logging.getLogger(__name__)

# A flush rewrites the recovery point only after this much progress (or a roll), so group
# commit pays one data fsync per round; recovery rescans at most this much flushed data.
CHECKPOINT_INTERVAL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed, as the produce response reports it."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int
    log_start_offset: int


class PartitionLog:
    """One partition's durable log in one directory; see the module docstring for threading."""

    # Slots: one per partition, and a broker may hold tens of thousands of partitions.
    __slots__ = (
        "_bases",
        "_checkpoint",
        "_cleaner",
        "_closed",
        "_dir_dirty",
        "_lock",
        "_pending_sync",
        "_poisoned",
        "_segments",
        "_tail",
        "config",
        "directory",
        "flushed_offset",
        "log_start_offset",
        "recovery_scanned_bytes",
        "recovery_truncated_bytes",
    )

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        segments: list[Segment],
        log_start_offset: int,
        log_end_offset: int,
    ) -> None:
        """Use ``PartitionLog.open``; this only wires up recovered state."""
        self.directory = directory
        self.config = config
        self.log_start_offset = log_start_offset
        self.flushed_offset = 0
        self.recovery_scanned_bytes = 0
        self.recovery_truncated_bytes = 0
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._tail = (log_end_offset, segments[-1], segments[-1].size)
        self._lock = threading.Lock()
        self._pending_sync: list[Segment] = []
        self._dir_dirty = True
        self._checkpoint: tuple[int, int, int] | None = None
        self._closed = False
        self._poisoned: BaseException | None = None
        self._cleaner = _compaction.CleanerState()

    @classmethod
    def open(cls, directory: Path, config: LogConfig, *, now_ms: int) -> PartitionLog:
        """Open (creating if missing) and recover the log in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        recovered = recover(directory, config.index_interval_bytes, now_ms)
        self = cls(
            directory,
            config,
            recovered.segments,
            recovered.log_start_offset,
            recovered.log_end_offset,
        )
        self.recovery_scanned_bytes = recovered.scanned_bytes
        self.recovery_truncated_bytes = recovered.truncated_bytes
        try:
            with self._lock:
                self._sync_locked(force_checkpoint=True)
        except BaseException:
            for seg in self._segments:
                seg.close()
            raise
        log.debug(
            "opened log dir=%s log_start_offset=%d log_end_offset=%d segments=%d "
            "scanned_bytes=%d truncated_bytes=%d",
            directory,
            self.log_start_offset,
            self.log_end_offset,
            len(self._segments),
            recovered.scanned_bytes,
            recovered.truncated_bytes,
        )
        return self

    def __repr__(self) -> str:
        return (
            f"PartitionLog({str(self.directory)!r}, start={self.log_start_offset}, "
            f"end={self.log_end_offset})"
        )

    # -- state ---------------------------------------------------------------------------
    @property
    def log_end_offset(self) -> int:
        return self._tail[0]

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def segments(self) -> list[tuple[int, int]]:
        """(base_offset, size_bytes) of each segment, oldest first."""
        return [(s.base_offset, s.size) for s in self._segments]

    def update_config(self, config: LogConfig) -> None:
        """New settings apply to future appends, rolls, retention and compaction runs."""
        self.config = config
        self._cleaner = _compaction.CleanerState()

    def _check_usable(self) -> None:
        if self._closed:
            raise LogClosedError(errno.EBADF, f"log {self.directory} is closed")
        if self._poisoned is not None:
            raise LogClosedError(
                errno.EIO,
                f"log {self.directory} had a failed write or fsync ({self._poisoned}); "
                "reopen it to recover",
            )

    # -- append --------------------------------------------------------------------------
    def append(
        self,
        payload: bytearray,
        headers: list[BatchHeader],
        *,
        now_ms: int,
        log_append_time: bool = False,
    ) -> AppendResult:
        """Give ``payload``'s batches their offsets (in place) and write them; no fsync."""
        self._check_usable()
        if not headers:
            raise ValueError("append needs at least one batch")
        total = sum(h.size for h in headers)
        if total != len(payload):
            raise ValueError(f"headers cover {total} bytes but the payload has {len(payload)}")
        if total > SEGMENT_BYTES_MAX:
            raise ValueError(f"payload of {total} bytes exceeds {SEGMENT_BYTES_MAX}")
        base = self.log_end_offset
        last = base + sum(h.last_offset_delta + 1 for h in headers) - 1
        if self._should_roll(total, last, now_ms):
            self._roll()
        seg = self._segments[-1]
        batches: list[tuple[int, int, int]] = []
        position = 0
        offset = base
        for header in headers:
            set_base_offset(payload, position, offset)
            max_ts = header.max_timestamp
            if log_append_time:
                set_log_append_time(payload, position, header.size, now_ms)
                max_ts = now_ms
            batches.append((offset, header.size, max_ts))
            offset += header.last_offset_delta + 1
            position += header.size
        try:
            seg.append(payload, batches, self.config.index_interval_bytes)
        except OSError as exc:
            if seg.broken:
                self._poisoned = exc
            if exc.errno in FULL_ERRNOS:
                raise StorageFullError(
                    exc.errno, f"disk full appending to {self.directory}: {exc.strerror}"
                ) from exc
            raise
        if seg.first_append_ms is None:
            seg.first_append_ms = now_ms
        self._tail = (last + 1, seg, seg.size)
        return AppendResult(base, last, now_ms if log_append_time else -1, self.log_start_offset)

    def _should_roll(self, total: int, last_offset: int, now_ms: int) -> bool:
        seg = self._segments[-1]
        if seg.size == 0:
            return False
        first = seg.first_append_ms
        return (
            seg.size + total > self.config.segment_bytes
            or (first is not None and now_ms - first > self.config.segment_ms)
            or last_offset - seg.base_offset > U32_MAX
            or seg.size + total > U32_MAX
        )

    def _roll(self) -> None:
        """Start a new active segment; the old one is fsynced by the next flush."""
        with self._lock:
            old = self._segments[-1]
            assert old.time_fd is not None and old.time_index is not None
            try:
                if old.seal():
                    try:
                        write_all(old.time_fd, old.time_index.encode(len(old.time_index) - 1))
                    except OSError:
                        del old.time_index.timestamps[-1]
                        del old.time_index.rels[-1]
                        raise
                new = Segment.create(self.directory, self.log_end_offset)
            except OSError as exc:
                if exc.errno in FULL_ERRNOS:
                    raise StorageFullError(
                        exc.errno, f"disk full rolling {self.directory}: {exc.strerror}"
                    ) from exc
                raise
            self._segments.append(new)
            self._bases.append(new.base_offset)
            self._pending_sync.append(old)
            self._dir_dirty = True
        log.debug("rolled segment dir=%s base_offset=%d", self.directory, new.base_offset)

    # -- flush and close -----------------------------------------------------------------
    def flush(self) -> int:
        """fsync everything appended so far; returns the new flushed_offset. Thread-safe."""
        with self._lock:
            if self._closed:
                return self.flushed_offset
            self._check_usable()
            return self._sync_locked(force_checkpoint=False)

    def _sync_locked(self, *, force_checkpoint: bool) -> int:
        end, seg, position = self._tail
        point = self._checkpoint
        checkpoint_due = (
            force_checkpoint
            or point is None
            or point[1] != seg.base_offset
            or position - point[2] >= CHECKPOINT_INTERVAL_BYTES
        ) and point != (end, seg.base_offset, position)
        try:
            for old in self._pending_sync:
                old.sync()
                old.close_index_fds()
            self._pending_sync.clear()
            # Recovery trusts index entries only below the recovery point and rebuilds the
            # rest from the log, so the index files need an fsync only before a new recovery
            # point is written; in between, one fsync of the log file makes data durable.
            if checkpoint_due:
                seg.sync()
            else:
                seg.sync_log()
            if self._dir_dirty:
                fsync_dir(self.directory)
                self._dir_dirty = False
        except OSError as exc:
            # After a failed fsync the page cache may have dropped the data; never claim it.
            self._poisoned = exc
            raise
        if checkpoint_due:
            try:
                write_checkpoint(self.directory / RECOVERY_POINT, end, seg.base_offset, position)
                self._checkpoint = (end, seg.base_offset, position)
            except OSError as exc:  # the data is durable; recovery just scans further
                log.warning("cannot write recovery point dir=%s error=%s", self.directory, exc)
        self.flushed_offset = max(self.flushed_offset, end)
        return self.flushed_offset

    def close(self) -> None:
        """Flush, write the recovery point and release every file descriptor."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._poisoned is None:
                    self._sync_locked(force_checkpoint=True)
            finally:
                self._closed = True
                for seg in self._segments:
                    seg.close()

    def _abandon(self) -> None:
        """Drop every descriptor without flushing, as a crash would (for fault tests)."""
        with self._lock:
            self._closed = True
            for seg in self._segments:
                seg.close()

    def delete(self) -> None:
        """Close the log and remove its directory."""
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- reads ---------------------------------------------------------------------------
    def read(
        self, offset: int, max_bytes: int, *, min_one: bool = True, max_offset: int | None = None
    ) -> bytes:
        """Stored bytes of whole batches from the one containing ``offset``, one segment."""
        if self._closed:
            raise LogClosedError(errno.EBADF, f"log {self.directory} is closed")
        start, end = self.log_start_offset, self.log_end_offset
        if offset < start or offset > end:
            raise OffsetOutOfRangeError(offset, start, end)
        if offset == end:
            return b""
        first = max(bisect_right(self._bases, offset) - 1, 0)
        interval = self.config.index_interval_bytes
        for seg in self._segments[first:]:
            found = seg.locate(offset, interval)
            if found is not None:
                return self._read_from(seg, found[0], found[1], max_bytes, min_one, max_offset)
        return b""

    def _read_from(
        self,
        seg: Segment,
        position: int,
        header: BatchHeader,
        max_bytes: int,
        min_one: bool,
        max_offset: int | None,
    ) -> bytes:
        if max_offset is not None and header.base_offset >= max_offset:
            return b""
        fd = seg.read_fd()
        if header.size > max_bytes:
            return pread_exact(fd, header.size, position) if min_one else b""
        data = pread_exact(fd, min(max_bytes, seg.size - position), position)
        cut = 0
        while len(data) - cut >= HEADER_BYTES:
            try:
                batch = read_header(data, cut)
            except CorruptBatchError as exc:
                if cut == 0:
                    raise CorruptLogError(f"{seg.path(LOG_SUFFIX)}: {exc}") from exc
                break  # return what is readable; the next fetch reports the bad batch
            if cut + batch.size > len(data):
                break
            if max_offset is not None and batch.base_offset >= max_offset:
                break
            cut += batch.size
        return data if cut == len(data) else data[:cut]

    def offset_for_timestamp(
        self, timestamp_ms: int, *, floor: int | None = None
    ) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``timestamp_ms`` at or
        after ``floor`` (the log start offset unless given)."""
        floor = self.log_start_offset if floor is None else floor
        interval = self.config.index_interval_bytes
        for seg in list(self._segments):
            if seg.max_timestamp(interval) < timestamp_ms:
                continue
            found = seg.seek_timestamp(timestamp_ms, interval)
            if found is None:
                continue
            try:
                for pos, header in iter_headers(seg.read_fd(), found[0], seg.size):
                    if header.max_timestamp < timestamp_ms:
                        continue
                    if header.last_offset < floor:
                        continue
                    hit = self._first_record_at(seg, pos, header, timestamp_ms, floor)
                    if hit is not None:
                        return hit
            except CorruptBatchError as exc:
                raise CorruptLogError(f"{seg.path(LOG_SUFFIX)}: {exc}") from exc
        return None

    def _first_record_at(
        self, seg: Segment, position: int, header: BatchHeader, timestamp_ms: int, floor: int
    ) -> tuple[int, int] | None:
        if header.log_append_time:
            return max(header.base_offset, floor), header.max_timestamp
        try:
            _, records = decode_batch(pread_exact(seg.read_fd(), header.size, position))
        except CorruptBatchError as exc:
            log.warning(
                "cannot decode batch for a timestamp lookup segment=%s error=%s",
                seg.path(LOG_SUFFIX),
                exc,
            )
            return max(header.base_offset, floor), header.max_timestamp
        for record in records:
            if record.offset >= floor and record.timestamp_ms >= timestamp_ms:
                return record.offset, record.timestamp_ms
        return None

    def last_timestamp(self) -> int:
        """Largest batch timestamp in the log, -1 if it holds no data."""
        if self.log_end_offset == self.log_start_offset:
            return -1
        interval = self.config.index_interval_bytes
        return max(s.max_timestamp(interval) for s in self._segments)

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp in the stored
        segments, None if the log holds no data.

        Like Kafka's max-timestamp query, records below the log start offset that are still
        stored (DeleteRecords hides them, only retention removes them) count: Kafka answers
        from each segment's max-timestamp metadata.
        """
        newest = self.last_timestamp()
        if newest < 0 or not self._segments:
            return None
        return self.offset_for_timestamp(newest, floor=self._segments[0].base_offset)

    # -- deletion ------------------------------------------------------------------------
    def delete_records(self, before_offset: int) -> int:
        """Move log_start_offset up to ``before_offset`` (persisted); returns the new start."""
        self._check_usable()
        if before_offset > self.log_end_offset or before_offset < 0:
            raise OffsetOutOfRangeError(before_offset, self.log_start_offset, self.log_end_offset)
        if before_offset <= self.log_start_offset:
            return self.log_start_offset
        try:
            write_checkpoint(self.directory / LOG_START_OFFSET, before_offset)
        except OSError as exc:
            if exc.errno in FULL_ERRNOS:
                raise StorageFullError(exc.errno, f"disk full in {self.directory}") from exc
            raise
        self.log_start_offset = before_offset
        covered = 0
        while (
            covered + 1 < len(self._segments)
            and self._segments[covered + 1].base_offset <= before_offset
        ):
            covered += 1
        self._delete_oldest(covered)
        return self.log_start_offset

    def enforce_retention(self, now_ms: int) -> int:
        """Delete old non-active segments by time and size; returns how many went."""
        self._check_usable()
        if not self.config.deletes:
            return 0
        segments = self._segments
        start = self.log_start_offset
        count = 0
        while count + 1 < len(segments) and segments[count + 1].base_offset <= start:
            count += 1
        interval = self.config.index_interval_bytes
        if self.config.retention_ms >= 0:
            expired_before = now_ms - self.config.retention_ms
            while (
                count + 1 < len(segments)
                and segments[count].max_timestamp(interval) < expired_before
            ):
                count += 1
        if self.config.retention_bytes >= 0:
            remaining = sum(s.size for s in segments[count:])
            while (
                count + 1 < len(segments)
                and remaining - segments[count].size >= self.config.retention_bytes
            ):
                remaining -= segments[count].size
                count += 1
        self._delete_oldest(count)
        return count

    def _delete_oldest(self, count: int) -> None:
        if count <= 0:
            return
        assert count < len(self._segments), "the active segment is never deleted"
        with self._lock:
            doomed = self._segments[:count]
            del self._segments[:count]
            del self._bases[:count]
            for seg in doomed:
                if seg in self._pending_sync:
                    self._pending_sync.remove(seg)
                seg.close()
        for seg in doomed:
            seg.remove_files()
        self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
        log.info(
            "deleted segments dir=%s count=%d log_start_offset=%d",
            self.directory,
            count,
            self.log_start_offset,
        )
        point = self._checkpoint
        if point is None or point[1] < self._segments[0].base_offset:
            with self._lock:
                self._sync_locked(force_checkpoint=True)

    # -- compaction ----------------------------------------------------------------------
    def compact(self, now_ms: int) -> int:
        """Keep only the latest record per key in non-active segments; returns records removed."""
        self._check_usable()
        if not self.config.compacts or len(self._segments) < 2:
            return 0
        point = self._checkpoint
        if self._pending_sync or point is None or point[1] != self._segments[-1].base_offset:
            # Cleaned segments must sit below the recovery point, never be rescanned.
            self.flush()
        return _compaction.compact(self, now_ms)

    def _replace_segments(self, old: list[Segment], new: Segment | None) -> None:
        """Swap ``old`` (consecutive, inactive) for ``new``; called by the cleaner."""
        first = self._segments.index(old[0])
        assert self._segments[first : first + len(old)] == old
        assert first + len(old) < len(self._segments)
        with self._lock:
            for seg in old:
                seg.close()
            self._segments[first : first + len(old)] = [] if new is None else [new]
            self._bases = [s.base_offset for s in self._segments]
        if first == 0:
            self.log_start_offset = max(self.log_start_offset, self._segments[0].base_offset)
