"""One interface for turning values into bytes and back, whatever the format.

Producers, consumers, the streams library and sinks all take a :class:`Serde`, so switching a
topic from JSON to Avro is a one-argument change. The registry-aware formats (Avro, JSON
Schema, Protobuf in Confluent's wire format) implement the same two methods.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson


class SerdeError(ValueError):
    """A value could not be serialized or bytes could not be deserialized."""


class Serde(Protocol):
    """Serializer and deserializer for one format."""

    def serialize(self, value: Any, topic: str) -> bytes | None: ...

    def deserialize(self, data: bytes | None, topic: str) -> Any: ...


def deserialize_many(codec: Serde, datas: list[bytes | None], topic: str) -> list[Any]:
    """A whole batch through ``codec``: its batch method when it has one, else one by one."""
    batch = getattr(codec, "deserialize_many", None)
    if batch is not None:
        return list(batch(datas, topic))
    deserialize = codec.deserialize
    return [deserialize(data, topic) for data in datas]


def serialize_many(codec: Serde, values: list[Any], topic: str) -> list[bytes | None]:
    """A whole batch through ``codec`` in one comprehension (no per-record method lookups)."""
    batch = getattr(codec, "serialize_many", None)
    if batch is not None:
        return list(batch(values, topic))
    serialize = codec.serialize
    return [serialize(value, topic) for value in values]


class BytesSerde:
    """Passes bytes through untouched; ``None`` stays ``None``."""

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise SerdeError(f"bytes serde for {topic!r} got {type(value).__name__}, not bytes")

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        return data


class StringSerde:
    """UTF-8 text; other values are formatted with ``str()`` (ints as keys, say)."""

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bytes):
            return value
        return str(value).encode()

    def serialize_many(self, values: list[Any], topic: str) -> list[bytes | None]:
        return [v.encode() if type(v) is str else self.serialize(v, topic) for v in values]

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise SerdeError(f"record from {topic!r} is not valid UTF-8: {exc}") from exc

    def deserialize_many(self, datas: list[bytes | None], topic: str) -> list[Any]:
        try:
            return [None if d is None else d.decode() for d in datas]
        except UnicodeDecodeError as exc:
            raise SerdeError(f"a record from {topic!r} is not valid UTF-8: {exc}") from exc


class JsonSerde:
    """JSON through orjson: the fastest correct JSON codec for Python."""

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None:
            return None
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise SerdeError(f"value for {topic!r} is not JSON-serializable: {exc}") from exc

    def serialize_many(self, values: list[Any], topic: str) -> list[bytes | None]:
        dumps = orjson.dumps
        try:
            return [None if v is None else dumps(v) for v in values]
        except TypeError as exc:
            raise SerdeError(f"a value for {topic!r} is not JSON-serializable: {exc}") from exc

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerdeError(f"record from {topic!r} is not valid JSON: {exc}") from exc

    def deserialize_many(self, datas: list[bytes | None], topic: str) -> list[Any]:
        """Decode a batch with one parser call (several times faster than one per record).

        Raises :class:`SerdeError` if any record is invalid; decode one by one to find it.
        """
        if None in datas:
            return [self.deserialize(data, topic) for data in datas]
        joined = b",".join(datas)  # type: ignore[arg-type]
        try:
            values = orjson.loads(b"[" + joined + b"]")
        except orjson.JSONDecodeError as exc:
            raise SerdeError(f"a record from {topic!r} is not valid JSON: {exc}") from exc
        if len(values) != len(datas):
            # A record holding "1,2" parses as two values: decode one by one.
            return [self.deserialize(data, topic) for data in datas]
        return list(values)


_BY_NAME: dict[str, type[BytesSerde] | type[StringSerde] | type[JsonSerde]] = {
    "bytes": BytesSerde,
    "string": StringSerde,
    "json": JsonSerde,
}


def serde(spec: str | Serde) -> Serde:
    """A serde from its name (``json``, ``string``, ``bytes``) or the object itself."""
    if not isinstance(spec, str):
        return spec
    try:
        return _BY_NAME[spec]()
    except KeyError:
        raise ValueError(
            f"unknown serde {spec!r}; choose one of {', '.join(_BY_NAME)} or pass a Serde object"
        ) from None
