"""Encode and decode the records inside a v2 batch.

Used where the broker must look inside a batch (compaction keys, its own internal topics,
control markers) and by tools and tests; the produce and fetch paths never call it.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field

from headwater.protocol import _batch, _compression
from headwater.protocol._errors import CorruptBatchError
from headwater.protocol._varint import decode_varint, encode_varint

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1


@dataclass(frozen=True, slots=True)
class Record:
    """One record with its absolute offset and timestamp resolved from the batch."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A record to be written into a new batch."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes | None], ...] = field(default=())


def _put_bytes(value: bytes | None, out: bytearray) -> None:
    if value is None:
        encode_varint(-1, out)
    else:
        encode_varint(len(value), out)
        out += value


def build_batch(
    records: list[NewRecord],
    *,
    base_offset: int = 0,
    compression: int = _compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = 0,
    offset_deltas: list[int] | None = None,
) -> bytearray:
    """Build a complete v2 batch with a correct length and CRC32C.

    ``offset_deltas`` (strictly increasing, one per record) keeps the offsets of records that
    survived compaction; by default records get consecutive deltas from 0.
    """
    if not records:
        raise ValueError("a batch needs at least one record")
    if offset_deltas is None:
        deltas = list(range(len(records)))
    else:
        deltas = list(offset_deltas)
        if (
            len(deltas) != len(records)
            or deltas[0] < 0
            or any(b <= a for a, b in itertools.pairwise(deltas))
        ):
            raise ValueError("offset_deltas must be strictly increasing, one per record")
    base_ts = records[0].timestamp_ms
    max_ts = max(r.timestamp_ms for r in records)
    body = bytearray()
    for delta, rec in zip(deltas, records, strict=True):
        one = bytearray(b"\x00")  # attributes
        encode_varint(rec.timestamp_ms - base_ts, one)
        encode_varint(delta, one)
        _put_bytes(rec.key, one)
        _put_bytes(rec.value, one)
        encode_varint(len(rec.headers), one)
        for name, hval in rec.headers:
            encoded = name.encode()
            encode_varint(len(encoded), one)
            one += encoded
            _put_bytes(hval, one)
        encode_varint(len(one), body)
        body += one
    payload = _compression.compress(compression, bytes(body))
    attributes = compression
    if transactional:
        attributes |= _batch.TRANSACTIONAL_BIT
    if control:
        attributes |= _batch.CONTROL_BIT
    length = _batch.HEADER_BYTES - _batch.LOG_OVERHEAD + len(payload)
    out = bytearray(_batch.HEADER_BYTES)
    struct.pack_into(
        ">qiibIhiqqqhii",
        out,
        0,
        base_offset,
        length,
        partition_leader_epoch,
        2,
        0,
        attributes,
        deltas[-1],
        base_ts,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    out += payload
    struct.pack_into(">I", out, _batch.CRC_AT, _batch.compute_crc(out, 0, len(out)))
    return out


def _get_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    size, pos = decode_varint(buf, pos)
    if size < 0:
        return None, pos
    if pos + size > len(buf):
        raise CorruptBatchError("record field runs past the end of the batch")
    return buf[pos : pos + size], pos + size


def decode_batch(
    buf: bytes | bytearray | memoryview, pos: int = 0
) -> tuple[_batch.BatchHeader, list[Record]]:
    """Validate one batch and decode all of its records."""
    header = _batch.validate_batch(buf, pos)
    raw = bytes(memoryview(buf)[pos + _batch.HEADER_BYTES : pos + header.size])
    body = _compression.decompress(header.compression, raw)
    records: list[Record] = []
    at = 0
    for _ in range(header.records_count):
        length, at = decode_varint(body, at)
        end = at + length
        if end > len(body) or length < 0:
            raise CorruptBatchError("record length runs past the end of the batch")
        at += 1  # record attributes, unused in v2
        ts_delta, at = decode_varint(body, at)
        offset_delta, at = decode_varint(body, at)
        key, at = _get_bytes(body, at)
        value, at = _get_bytes(body, at)
        count, at = decode_varint(body, at)
        headers: list[tuple[str, bytes | None]] = []
        for _h in range(count):
            name, at = _get_bytes(body, at)
            hval, at = _get_bytes(body, at)
            headers.append(((name or b"").decode(errors="replace"), hval))
        if at != end:
            raise CorruptBatchError("record length does not match its fields")
        records.append(
            Record(
                offset=header.base_offset + offset_delta,
                timestamp_ms=header.base_timestamp + ts_delta,
                key=key,
                value=value,
                headers=tuple(headers),
            )
        )
    return header, records


def iter_batches(buf: bytes | bytearray | memoryview) -> list[tuple[int, _batch.BatchHeader]]:
    """(position, header) of each whole batch in ``buf``, stopping at a partial tail."""
    out: list[tuple[int, _batch.BatchHeader]] = []
    pos = 0
    while len(buf) - pos >= _batch.HEADER_BYTES:
        header = _batch.read_header(buf, pos)
        if pos + header.size > len(buf):
            break
        out.append((pos, header))
        pos += header.size
    return out
