"""Sparse offset index and time index of one segment, in memory and in Kafka's file format.

The offset index maps a batch's base offset (relative to the segment, u32) to its file
position (u32), one entry per ``index_interval_bytes``. The time index entry (T, rel) says
"every batch up to and including the one at rel has max timestamp <= T"; T strictly increases,
so a binary search gives a safe place to start scanning for a timestamp.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left, bisect_right

OFFSET_ENTRY = struct.Struct(">II")
TIME_ENTRY = struct.Struct(">qI")
U32_MAX = 0xFFFFFFFF


class OffsetIndex:
    """Relative offset -> file position, both strictly increasing."""

    __slots__ = ("positions", "rels")

    def __init__(self) -> None:
        self.rels = array("I")
        self.positions = array("I")

    def __len__(self) -> int:
        return len(self.rels)

    def append(self, rel: int, position: int) -> None:
        assert not self.rels or (rel > self.rels[-1] and position > self.positions[-1])
        self.rels.append(rel)
        self.positions.append(position)

    def floor(self, rel: int) -> tuple[int, int] | None:
        """The last entry with relative offset <= ``rel``."""
        i = bisect_right(self.rels, rel) - 1
        return None if i < 0 else (self.rels[i], self.positions[i])

    def last_below_position(self, position: int) -> int:
        """Index of the last entry whose position is < ``position``, or -1."""
        return bisect_left(self.positions, position) - 1

    def truncate(self, count: int) -> None:
        del self.rels[count:]
        del self.positions[count:]

    def encode(self, start: int = 0) -> bytes:
        out = bytearray()
        for i in range(start, len(self.rels)):
            out += OFFSET_ENTRY.pack(self.rels[i], self.positions[i])
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes, file_bytes: int) -> tuple[OffsetIndex, bool]:
        """Entries from a file and whether the file was wholly valid.

        Stops at the first entry that breaks monotonicity or points past ``file_bytes``.
        """
        index = cls()
        whole = len(raw) - len(raw) % OFFSET_ENTRY.size
        valid = whole == len(raw)
        for rel, position in OFFSET_ENTRY.iter_unpack(raw[:whole]):
            if position >= file_bytes or (
                index.rels and (rel <= index.rels[-1] or position <= index.positions[-1])
            ):
                valid = False
                break
            index.append(rel, position)
        return index, valid


class TimeIndex:
    """Running max timestamp -> relative offset of the batch where it was recorded."""

    __slots__ = ("rels", "timestamps")

    def __init__(self) -> None:
        self.timestamps = array("q")
        self.rels = array("I")

    def __len__(self) -> int:
        return len(self.rels)

    @property
    def last_timestamp(self) -> int:
        return self.timestamps[-1] if self.timestamps else -1

    def append(self, timestamp: int, rel: int) -> None:
        assert timestamp > self.last_timestamp and (not self.rels or rel >= self.rels[-1])
        self.timestamps.append(timestamp)
        self.rels.append(rel)

    def last_before(self, timestamp: int) -> int | None:
        """Relative offset of the last entry with T < ``timestamp``: all up to it are older."""
        i = bisect_left(self.timestamps, timestamp) - 1
        return None if i < 0 else self.rels[i]

    def truncate_after_rel(self, rel: int) -> None:
        count = bisect_right(self.rels, rel)
        del self.timestamps[count:]
        del self.rels[count:]

    def encode(self, start: int = 0) -> bytes:
        out = bytearray()
        for i in range(start, len(self.rels)):
            out += TIME_ENTRY.pack(self.timestamps[i], self.rels[i])
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes, rel_max: int) -> tuple[TimeIndex, bool]:
        """Entries from a file and whether it was wholly valid (monotonic, rel <= rel_max)."""
        index = cls()
        whole = len(raw) - len(raw) % TIME_ENTRY.size
        valid = whole == len(raw)
        for timestamp, rel in TIME_ENTRY.iter_unpack(raw[:whole]):
            if (
                rel > rel_max
                or timestamp <= index.last_timestamp
                or (index.rels and rel < index.rels[-1])
            ):
                valid = False
                break
            index.append(timestamp, rel)
        return index, valid
