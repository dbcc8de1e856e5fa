"""The storage error tree.

StorageError              base of everything the log raises on purpose
├── OffsetOutOfRangeError an offset outside [log_start_offset, log_end_offset]
├── StorageFullError      a write failed with ENOSPC/EDQUOT (also an OSError)
├── CorruptLogError       bytes on disk that cannot be trusted and cannot be truncated away
└── LogClosedError        used after close() or after a failed fsync (also an OSError)
"""

from __future__ import annotations


class StorageError(Exception):
    """Something the partition log refuses to do."""


class OffsetOutOfRangeError(StorageError):
    """Requested offset is not in the log; carries the bounds the client should reset to."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(f"offset {offset} is outside [{log_start_offset}, {log_end_offset}]")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class StorageFullError(StorageError, OSError):
    """The disk is full or over quota; the failed append left no trace in the log."""


class CorruptLogError(StorageError):
    """An already-trusted segment holds bytes that are not a valid batch."""


class LogClosedError(StorageError, OSError):
    """The log is closed, or poisoned by a failed write or fsync and must be reopened.

    An OSError so that I/O error handling around flushes and maintenance also catches it.
    """
