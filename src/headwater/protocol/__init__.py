"""Kafka wire codecs: framing, message codecs by version, record batches. Pure, no I/O."""

from headwater.protocol._batch import (
    BatchHeader,
    compute_crc,
    read_header,
    set_base_offset,
    set_leader_epoch,
    set_log_append_time,
    split_batches,
    validate_batch,
)
from headwater.protocol._compression import compress, decompress
from headwater.protocol._errors import CorruptBatchError, ErrorCode, FrameError, ProtocolError
from headwater.protocol._records import NewRecord, Record, build_batch, decode_batch, iter_batches

__all__ = [
    "BatchHeader",
    "CorruptBatchError",
    "ErrorCode",
    "FrameError",
    "NewRecord",
    "ProtocolError",
    "Record",
    "build_batch",
    "compress",
    "compute_crc",
    "decode_batch",
    "decompress",
    "iter_batches",
    "read_header",
    "set_base_offset",
    "set_leader_epoch",
    "set_log_append_time",
    "split_batches",
    "validate_batch",
]
