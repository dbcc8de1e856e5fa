"""Sink records: a consumed message with its value decoded, and the decoders that make them.

Decoding happens once, in the runtime, so every sink sees plain dicts and a record that
cannot be decoded is parked on the dead-letter topic before any sink code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from headwater.client import Message

Decoder = Callable[[bytes | None], dict[str, Any]]
"""Turns a message value into a row; raises ``DecodeError`` (or any error) when it cannot."""


class DecodeError(ValueError):
    """The message value is not a record this sink can write."""


def decode_json(raw: bytes | None) -> dict[str, Any]:
    """The default decoder: a JSON object per message value."""
    if raw is None:
        raise DecodeError("the record has no value (a tombstone); sinks need a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"the value is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DecodeError(f"the value is JSON {type(value).__name__}, not an object")
    return value


@dataclass(slots=True)
class SinkRecord:
    """One consumed record: where it came from, its decoded row and the original message."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: dict[str, Any]
    message: Message

    @property
    def raw_value(self) -> bytes | None:
        raw = self.message.value()
        return raw if isinstance(raw, bytes) or raw is None else str(raw).encode()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record a sink will not write, and why; the runtime sends it to the dead-letter topic."""

    record: SinkRecord
    error: BaseException | str


def message_position(message: Message) -> tuple[str, int, int]:
    topic = message.topic()
    partition = message.partition()
    offset = message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def message_timestamp_ms(message: Message) -> int:
    _kind, value = message.timestamp()
    return int(value)
