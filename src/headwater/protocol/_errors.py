"""The protocol error tree.

    ProtocolError            malformed input from the network; closes that one connection
    ├── FrameError           bad frame size or truncated frame
    └── CorruptBatchError    a record batch failed its header, length or CRC32C check

Kafka error codes travel as data (``ErrorCode``), not as exceptions: handlers put them in
responses. These exceptions are for bytes that cannot be understood at all.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = ["CorruptBatchError", "ErrorCode", "FrameError", "ProtocolError"]


class ProtocolError(Exception):
    """Input that does not follow the Kafka wire protocol."""


class FrameError(ProtocolError):
    """A frame whose size prefix is negative, too large, or whose body is truncated."""


class CorruptBatchError(ProtocolError):
    """A record batch that fails its magic, length or CRC32C check."""
