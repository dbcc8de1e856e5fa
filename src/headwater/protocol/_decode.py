"""Bounds-checked decoding of request bodies from untrusted peers into kio entities.

kio's native reader sizes its buffers from the length fields it reads, before it knows whether
the frame holds that many bytes: one array length of 2**32 made it ask for 34 GB and abort the
process. This decoder reads the same kio schemas, but checks every length against the bytes
left in the frame *before* it allocates anything: a string or bytes field of length L needs L
bytes, an array of N elements needs N times the smallest encoding of one element. It also
applies the rules kio leaves to the caller: null is refused where the schema does not allow it,
and tagged fields the schema does not know are skipped, as the protocol requires (kio raises).

Each entity type gets a straight-line reader generated from its schema on first use (franz-go
generates its codecs the same way): consecutive fixed-width fields are read with one struct
unpack, and the only loops are over arrays. Everything here raises ``MalformedRequest`` (a
``ProtocolError``) for bad input and nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import struct
import uuid
from collections.abc import Callable
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    is_optional,
)
from kio.serial.readers import tz_aware_from_i64
from kio.static.protocol import Entity

from headwater.protocol._errors import ErrorCode, ProtocolError

__all__ = ["MalformedRequest", "decode_entity", "entity_min_bytes", "read_uvarint"]

# A reader takes (frame, position, end) and returns (value, next position). ``end`` is the end
# of the frame, or of the tagged field being read, so a value can never run past its container.
Reader = Callable[[bytes, int, int], tuple[Any, int]]

_VARINT_BYTES_MAX = 5


class MalformedRequest(ProtocolError):
    """A request body that does not follow its schema: short, oversized, or null where not
    allowed. The connection that sent it is closed, as Apache Kafka does."""


def _short(what: str, need: int, left: int) -> MalformedRequest:
    return MalformedRequest(f"{what} needs {need} bytes but {left} are left")


def _null(name: str) -> MalformedRequest:
    return MalformedRequest(f"{name} is null, which its schema does not allow")


def read_uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes, as Kafka writes lengths and tags."""
    value = 0
    for index in range(_VARINT_BYTES_MAX):
        if pos >= end:
            raise _short("varint", 1, 0)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, pos
    raise MalformedRequest("varint longer than 5 bytes")


# -- length-prefixed values: each returns None for null; the caller decides if null is valid --

_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from


def _compact_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:  # lengths under 127 are one byte: the common case
        return buf[pos] - 1, pos + 1
    value, pos = read_uvarint(buf, pos, end)
    return value - 1, pos


def _legacy_length16(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 2 > end:
        raise _short("length", 2, end - pos)
    value = int(_I16(buf, pos)[0])
    if value < -1:
        raise MalformedRequest(f"negative length {value}")
    return value, pos + 2


def _legacy_length32(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end:
        raise _short("length", 4, end - pos)
    value = int(_I32(buf, pos)[0])
    if value < -1:
        raise MalformedRequest(f"negative length {value}")
    return value, pos + 4


def _blob(length_of: Reader) -> Reader:
    def read(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
        length, pos = length_of(buf, pos, end)
        if length < 0:
            return None, pos
        stop = pos + length
        if stop > end:
            raise _short("bytes", length, end - pos)
        return buf[pos:stop], stop

    return read


def _text(length_of: Reader) -> Reader:
    def read(buf: bytes, pos: int, end: int) -> tuple[str | None, int]:
        length, pos = length_of(buf, pos, end)
        if length < 0:
            return None, pos
        stop = pos + length
        if stop > end:
            raise _short("string", length, end - pos)
        return buf[pos:stop].decode(), stop  # UnicodeDecodeError is turned into Malformed

    return read


_COMPACT_STRING = _text(_compact_length)
_LEGACY_STRING = _text(_legacy_length16)
_COMPACT_BYTES = _blob(_compact_length)
_LEGACY_BYTES = _blob(_legacy_length32)


def _array(
    name: str, item: Reader | None, item_min: int, fmt: str, flexible: bool, nullable: bool
) -> Reader:
    """An array reader: checks count times smallest element against the bytes left first."""
    length_of = _compact_length if flexible else _legacy_length32
    # An element that could encode in zero bytes cannot be bounded by the frame; no Kafka
    # schema has one, but count it as one byte so a bogus count still fails the check.
    item_min = max(item_min, 1)

    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        count, pos = length_of(buf, pos, end)
        if count < 0:
            if not nullable:
                raise _null(name)
            return None, pos
        if count * item_min > end - pos:
            raise MalformedRequest(
                f"{name} claims {count} elements of at least {item_min} bytes "
                f"but {end - pos} bytes are left"
            )
        if item is None:  # fixed-width numbers: one unpack for the whole array
            return struct.unpack_from(f">{count}{fmt}", buf, pos), pos + count * item_min
        items = []
        for _ in range(count):
            value, pos = item(buf, pos, end)
            if value is None:
                raise _null(f"an element of {name}")
            items.append(value)
        return tuple(items), pos

    return read


def _struct(entity_type: type[Entity], nullable: bool) -> Reader:
    """A nested struct field; a nullable one is preceded by a presence byte, as in Kafka."""
    read_entity = entity_reader(entity_type)
    if not nullable:
        return read_entity

    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        if pos >= end:
            raise _short("struct marker", 1, 0)
        if buf[pos] >= 0x80:  # a negative int8 marks null
            return None, pos + 1
        return read_entity(buf, pos + 1, end)

    return read


# -- fixed-width fields: struct format and the conversion kio applies ------------------------


_MILLIS_MAX = datetime.timedelta.max // datetime.timedelta(milliseconds=1)
_MILLIS_MIN = datetime.timedelta.min // datetime.timedelta(milliseconds=1)


def _millis(value: int) -> datetime.timedelta:
    # Kafka takes any int64 (Long.MAX_VALUE means "forever"); a timedelta holds about 2.7
    # million years, so larger magnitudes are clamped to that rather than refused.
    return datetime.timedelta(milliseconds=max(_MILLIS_MIN, min(value, _MILLIS_MAX)))


def _uuid(raw: bytes) -> uuid.UUID | None:
    return None if raw == bytes(16) else uuid.UUID(bytes=raw)


def _bool(value: int) -> bool:
    return value != 0  # any non-zero byte is true, as Kafka reads it


_FIXED: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "bool": ("B", _bool),
    "int8": ("b", None),
    "int16": ("h", None),
    "int32": ("i", None),
    "int64": ("q", None),
    "uint8": ("B", None),
    "uint16": ("H", None),
    "uint32": ("I", None),
    "uint64": ("Q", None),
    "float64": ("d", None),
    "uuid": ("16s", _uuid),
    "error_code": ("h", ErrorCode),
    "timedelta_i32": ("i", _millis),
    "timedelta_i64": ("q", _millis),
    "datetime_i64": ("q", tz_aware_from_i64),
}


# -- code generation --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Tagged:
    name: str
    read: Reader


@dataclasses.dataclass(slots=True)
class _Generator:
    """Writes the source of one entity's reader; ``env`` holds the objects it refers to."""

    entity_type: type[Entity]
    lines: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, Any] = dataclasses.field(default_factory=dict)
    pending: list[tuple[str, str, Callable[[Any], Any] | None]] = dataclasses.field(
        default_factory=list
    )
    min_bytes: int = 0

    def bind(self, value: Any) -> str:
        name = f"_o{len(self.env)}"
        self.env[name] = value
        return name

    def emit(self, line: str) -> None:
        self.lines.append("        " + line)

    def flush_fixed(self) -> None:
        """One bounds check and one unpack for a run of fixed-width fields."""
        if not self.pending:
            return
        layout = struct.Struct(">" + "".join(fmt for _, fmt, _ in self.pending))
        names = ", ".join(f"f_{name}" for name, _, _ in self.pending)
        what = "/".join(name for name, _, _ in self.pending)
        self.emit(f"if pos + {layout.size} > end:")
        self.emit(f"    raise _short({what!r}, {layout.size}, end - pos)")
        self.emit(f"{names}, = {self.bind(layout.unpack_from)}(buf, pos)")
        self.emit(f"pos += {layout.size}")
        for name, _, convert in self.pending:
            if convert is not None:
                self.emit(f"f_{name} = {self.bind(convert)}(f_{name})")
        self.min_bytes += layout.size
        self.pending.clear()

    def value(self, name: str, reader: Reader, nullable: bool, min_bytes: int) -> None:
        self.flush_fixed()
        self.emit(f"f_{name}, pos = {self.bind(reader)}(buf, pos, end)")
        if not nullable:
            self.emit(f"if f_{name} is None:")
            self.emit(f"    raise _null({name!r})")
        self.min_bytes += min_bytes

    def field(self, field: dataclasses.Field[Any], flexible: bool, in_header: bool) -> None:
        kind = classify_field(field)
        nullable = is_optional(field)
        name = field.name
        if isinstance(kind, EntityTupleField):
            item_type = kind.type_
            read = _array(
                name,
                entity_reader(item_type),
                entity_min_bytes(item_type),
                "",
                flexible,
                nullable,
            )
            self.value(name, read, True, 1 if flexible else 4)
            return
        if isinstance(kind, EntityField):
            read = _struct(kind.type_, nullable)
            self.value(name, read, nullable, entity_min_bytes(kind.type_) + (1 if nullable else 0))
            return
        kafka_type = field.metadata["kafka_type"]
        if isinstance(kind, PrimitiveTupleField):
            item, item_min, fmt = _primitive_item(kafka_type, flexible and not in_header)
            self.value(
                name,
                _array(name, item, item_min, fmt, flexible, nullable),
                True,
                1 if flexible else 4,
            )
            return
        if kafka_type in _FIXED:
            fmt, convert = _FIXED[kafka_type]
            self.pending.append((name, fmt, convert))
            return
        reader, min_bytes = _length_prefixed(kafka_type, flexible and not in_header, name)
        self.value(name, reader, nullable, min_bytes)


def _length_prefixed(kafka_type: str, compact: bool, name: str) -> tuple[Reader, int]:
    if kafka_type == "string":
        return (_COMPACT_STRING, 1) if compact else (_LEGACY_STRING, 2)
    if kafka_type in ("bytes", "records"):
        return (_COMPACT_BYTES, 1) if compact else (_LEGACY_BYTES, 4)
    raise NotImplementedError(f"no bounded reader for kafka_type {kafka_type!r} ({name})")


def _primitive_item(kafka_type: str, compact: bool) -> tuple[Reader | None, int, str]:
    """(reader or None for one-unpack numbers, smallest encoding, struct format)."""
    if kafka_type in _FIXED:
        fmt, convert = _FIXED[kafka_type]
        size = struct.calcsize(">" + fmt)
        if convert is None:
            return None, size, fmt
        layout = struct.Struct(">" + fmt)

        def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            if pos + size > end:
                raise _short(kafka_type, size, end - pos)
            return convert(layout.unpack_from(buf, pos)[0]), pos + size

        return read, size, fmt
    reader, min_bytes = _length_prefixed(kafka_type, compact, "array element")
    return reader, min_bytes, ""


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    read: Reader
    min_bytes: int


def _read_tagged(
    tagged: dict[int, _Tagged], buf: bytes, pos: int, end: int
) -> tuple[dict[str, Any], int]:
    count, pos = read_uvarint(buf, pos, end)
    if count * 2 > end - pos:  # each tagged field takes at least a tag and a size byte
        raise MalformedRequest(f"{count} tagged fields cannot fit in {end - pos} bytes")
    values: dict[str, Any] = {}
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos, end)
        size, pos = read_uvarint(buf, pos, end)
        stop = pos + size
        if stop > end:
            raise _short(f"tagged field {tag}", size, end - pos)
        known = tagged.get(tag)
        if known is not None:
            value, used = known.read(buf, pos, stop)
            if used != stop:
                raise MalformedRequest(f"tagged field {known.name} is {size} bytes, read {used}")
            values[known.name] = value
        pos = stop  # a tag this version does not know is skipped, as the protocol requires
    return values, pos


@functools.cache
def _compile(entity_type: type[Entity]) -> _Compiled:
    flexible = bool(entity_type.__flexible__)
    in_header = entity_type.__name__ == "RequestHeader"  # its client_id stays a legacy string
    gen = _Generator(entity_type)
    inline: list[str] = []
    tagged: dict[int, _Tagged] = {}
    for field in dataclasses.fields(entity_type):
        tag = field.metadata.get("tag")
        if tag is not None:
            tagged[int(tag)] = _Tagged(field.name, _tagged_reader(field, flexible, in_header))
            continue
        inline.append(field.name)
        gen.field(field, flexible, in_header)
    gen.flush_fixed()
    kwargs = ", ".join(f"{name}=f_{name}" for name in inline)
    cls = gen.bind(entity_type)
    if flexible:
        gen.min_bytes += 1
        gen.emit("if pos < end and buf[pos] == 0:  # no tagged fields: the common case")
        gen.emit(f"    return {cls}({kwargs}), pos + 1")
        gen.emit(f"tags, pos = _read_tagged({gen.bind(tagged)}, buf, pos, end)")
        gen.emit(f"return {cls}({kwargs}{', ' if kwargs else ''}**tags), pos")
    else:
        gen.emit(f"return {cls}({kwargs}), pos")
    where = entity_type.__name__
    source = "\n".join(
        [
            "def read(buf, pos, end):",
            "    try:",
            *gen.lines,
            "    except MalformedRequest as exc:",
            f"        raise MalformedRequest(f'{where}: {{exc}}') from None",
            "    except (ValueError, OverflowError, UnicodeDecodeError) as exc:",
            f"        raise MalformedRequest(f'{where}: {{exc}}') from None",
        ]
    )
    namespace: dict[str, Any] = {
        **gen.env,
        "MalformedRequest": MalformedRequest,
        "_short": _short,
        "_null": _null,
        "_read_tagged": _read_tagged,
    }
    # The source is built only from kio's schema field names and our own helpers, never from
    # request data; compiling it once per entity type is what makes each request straight-line.
    exec(compile(source, f"<reader {entity_type.__module__}.{where}>", "exec"), namespace)  # noqa: S102
    return _Compiled(namespace["read"], gen.min_bytes)


def _tagged_reader(field: dataclasses.Field[Any], flexible: bool, in_header: bool) -> Reader:
    """A tagged field is read on its own, inside the window its size prefix gives."""
    kind = classify_field(field)
    if isinstance(kind, EntityTupleField | EntityField | PrimitiveTupleField):
        raise NotImplementedError(f"no bounded reader for tagged field {field.name}")
    kafka_type = field.metadata["kafka_type"]
    if kafka_type in _FIXED:
        item, _, fmt = _primitive_item(kafka_type, False)
        if item is not None:
            return item
        layout = struct.Struct(">" + fmt)

        def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            if pos + layout.size > end:
                raise _short(field.name, layout.size, end - pos)
            return layout.unpack_from(buf, pos)[0], pos + layout.size

        return read
    reader, _ = _length_prefixed(kafka_type, flexible and not in_header, field.name)
    return reader


def entity_reader(entity_type: type[Entity]) -> Reader:
    """The bounded reader of ``entity_type`` (request bodies, their parts and headers)."""
    return _compile(entity_type).read


def entity_min_bytes(entity_type: type[Entity]) -> int:
    """The fewest bytes one encoded ``entity_type`` can take (empty arrays, null strings)."""
    return _compile(entity_type).min_bytes


def decode_entity(entity_type: type[Entity], frame: bytes, offset: int = 0) -> tuple[Any, int]:
    """Decode one ``entity_type`` from ``frame`` at ``offset``: (entity, next offset)."""
    return _compile(entity_type).read(frame, offset, len(frame))
