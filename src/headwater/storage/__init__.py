"""The partition log: segments, sparse indexes, recovery, retention and compaction.

Files per partition directory, laid out like Kafka's so operators recognise them::

    00000000000000000000.log        record batches, verbatim
    00000000000000000000.index      relative offset (u32) -> file position (u32), sparse
    00000000000000000000.timeindex  max timestamp so far (i64) -> relative offset (u32)
    recovery-point                  offset, segment and position known to be fsynced
    log-start-offset                persisted DeleteRecords position
"""

from headwater.storage._config import LogConfig
from headwater.storage._errors import (
    CorruptLogError,
    LogClosedError,
    OffsetOutOfRangeError,
    StorageError,
    StorageFullError,
)
from headwater.storage._log import AppendResult, PartitionLog

__all__ = [
    "AppendResult",
    "CorruptLogError",
    "LogClosedError",
    "LogConfig",
    "OffsetOutOfRangeError",
    "PartitionLog",
    "StorageError",
    "StorageFullError",
]
