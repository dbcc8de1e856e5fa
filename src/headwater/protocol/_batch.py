"""RecordBatch v2 framing: header parsing, CRC32C checks and in-place offset rewriting.

The broker never re-encodes client batches. It reads the 61-byte header, checks the CRC over the
bytes the client sent, and rewrites only the base offset (which the CRC does not cover) so that
stored bytes are exactly what the producer compressed.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import crc32c

from headwater.protocol._errors import CorruptBatchError

# Offsets of header fields inside a v2 batch (see the Kafka record format documentation).
BASE_OFFSET_AT = 0
BATCH_LENGTH_AT = 8
LEADER_EPOCH_AT = 12
MAGIC_AT = 16
CRC_AT = 17
ATTRIBUTES_AT = 21
MAX_TIMESTAMP_AT = 35
HEADER_BYTES = 61
# Size of the part before batchLength counts: baseOffset + batchLength.
LOG_OVERHEAD = 12

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

_HEADER = struct.Struct(">qiibIhiqqqhii")


class BatchHeader(NamedTuple):
    """The fixed-size header of a v2 record batch."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch on the wire and on disk."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the header at ``pos``; raise CorruptBatchError if it is short or not magic 2."""
    if len(buf) - pos < HEADER_BYTES:
        raise CorruptBatchError(f"batch header truncated at byte {pos}")
    header = BatchHeader._make(_HEADER.unpack_from(buf, pos))
    if header.magic != 2:
        raise CorruptBatchError(f"unsupported record batch magic {header.magic} (only v2)")
    if header.batch_length < HEADER_BYTES - LOG_OVERHEAD:
        raise CorruptBatchError(f"batch length {header.batch_length} is below the header size")
    if header.last_offset_delta < 0 or header.records_count < 0:
        raise CorruptBatchError("negative record count or offset delta")
    return header


def compute_crc(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    """CRC32C over attributes..end, the part of a batch its crc field covers."""
    view = memoryview(buf)[pos + ATTRIBUTES_AT : pos + size]
    return int(crc32c.crc32c(view))


def validate_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Header, length and CRC32C check of one batch; raise CorruptBatchError on any mismatch."""
    header = read_header(buf, pos)
    if pos + header.size > len(buf):
        raise CorruptBatchError(
            f"batch at byte {pos} claims {header.size} bytes but only {len(buf) - pos} remain"
        )
    actual = compute_crc(buf, pos, header.size)
    if actual != header.crc:
        raise CorruptBatchError(
            f"CRC32C mismatch: stored {header.crc:#010x}, actual {actual:#010x}"
        )
    return header


def split_batches(buf: bytes | bytearray | memoryview) -> list[BatchHeader]:
    """Validate every batch in a produce payload and return their headers in order.

    The payload must consist of whole batches only; any trailing partial batch is corruption.
    """
    headers: list[BatchHeader] = []
    pos = 0
    end = len(buf)
    while pos < end:
        header = validate_batch(buf, pos)
        headers.append(header)
        pos += header.size
    if not headers:
        raise CorruptBatchError("empty record set")
    return headers


def set_base_offset(buf: bytearray | memoryview, pos: int, base_offset: int) -> None:
    """Rewrite the base offset in place (outside the CRC, so the CRC stays valid)."""
    struct.pack_into(">q", buf, pos + BASE_OFFSET_AT, base_offset)


def set_log_append_time(
    buf: bytearray | memoryview, pos: int, size: int, timestamp_ms: int
) -> None:
    """Stamp a batch with LogAppendTime: set the attribute bit and maxTimestamp, redo the CRC."""
    (attributes,) = struct.unpack_from(">h", buf, pos + ATTRIBUTES_AT)
    struct.pack_into(">h", buf, pos + ATTRIBUTES_AT, attributes | TIMESTAMP_TYPE_BIT)
    struct.pack_into(">q", buf, pos + MAX_TIMESTAMP_AT, timestamp_ms)
    struct.pack_into(">I", buf, pos + CRC_AT, compute_crc(buf, pos, size))


def set_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Stamp the partition leader epoch, which lies outside the CRC like the base offset."""
    struct.pack_into(">i", buf, pos + LEADER_EPOCH_AT, epoch)
