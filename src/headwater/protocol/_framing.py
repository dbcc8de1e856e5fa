"""Splitting a connection's byte stream into request frames, sans I/O.

A frame is a 4-byte signed big-endian size, then that many bytes. The size is checked against
the frame limit the moment its prefix arrives, before any of the frame is buffered, so a peer
announcing 2 GB is refused after 4 bytes. The connection shell feeds whatever the socket
returned and gets back the frames that are now complete.
"""

from __future__ import annotations

from headwater.protocol._errors import FrameError

__all__ = ["FRAME_HEADER_BYTES_MIN", "FrameReader"]

# api_key, api_version and correlation_id: the least a request header can be.
FRAME_HEADER_BYTES_MIN = 8
_PREFIX_BYTES = 4


class FrameReader:
    """Accumulates bytes and cuts complete frames; ``FrameError`` on an impossible size."""

    __slots__ = ("_buffer", "_frame_bytes_max", "_need")

    def __init__(self, frame_bytes_max: int) -> None:
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._need = -1  # size of the frame being read, -1 while its prefix is incomplete

    @property
    def frame_bytes_max(self) -> int:
        """The largest frame accepted; a connection raises it once its peer is trusted."""
        return self._frame_bytes_max

    @frame_bytes_max.setter
    def frame_bytes_max(self, value: int) -> None:
        self._frame_bytes_max = value

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    @property
    def frame_bytes_expected(self) -> int:
        """Size of the frame being received (without its prefix), or 0 between frames."""
        return max(self._need, 0)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame (without its size prefix) it completes."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        while True:
            if self._need < 0:
                if len(buffer) - start < _PREFIX_BYTES:
                    break
                size = int.from_bytes(buffer[start : start + _PREFIX_BYTES], "big", signed=True)
                if not FRAME_HEADER_BYTES_MIN <= size <= self._frame_bytes_max:
                    raise FrameError(
                        f"frame size {size} outside {FRAME_HEADER_BYTES_MIN}.."
                        f"{self._frame_bytes_max} (frame_bytes_max)"
                    )
                start += _PREFIX_BYTES
                self._need = size
            if len(buffer) - start < self._need:
                break
            with memoryview(buffer) as view:  # one copy out, not a slice and then a copy
                frames.append(view[start : start + self._need].tobytes())
            start += self._need
            self._need = -1
        if start:
            del buffer[:start]
        return frames
