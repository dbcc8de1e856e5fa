"""Zig-zag varints as used inside v2 records."""

from __future__ import annotations

from headwater.protocol._errors import CorruptBatchError


def encode_varint(value: int, out: bytearray) -> None:
    """Append the zig-zag varint encoding of a signed 64-bit value."""
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def decode_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Return (value, next position); raise CorruptBatchError on truncation or overlong input."""
    shift = 0
    result = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise CorruptBatchError("varint truncated")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise CorruptBatchError("varint longer than 10 bytes")
    return (result >> 1) ^ -(result & 1), pos
