"""Version-agnostic message codecs over kio's generated schemas.

Handlers work with one shape per message (franz-go style): they read request entities by field
name and build responses as plain dicts holding the union of all versions' fields. ``to_entity``
converts such a dict to the kio entity of the negotiated version, dropping fields that version
does not have and filling absent ones with Kafka's defaults. kio does the byte-level encoding.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import io
import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_writer
from kio.serial._introspect import EntityField, EntityTupleField, classify_field
from kio.static.protocol import Entity

from headwater.protocol._decode import decode_entity
from headwater.protocol._errors import ProtocolError

_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
_ZERO_UUID = uuid.UUID(int=0)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestHeader:
    """The part of a request header every handler needs."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


_PREFIX = struct.Struct(">hhi")


def peek_header(frame: bytes | memoryview) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) from a frame, before choosing a schema."""
    if len(frame) < _PREFIX.size:
        raise ProtocolError(f"request header truncated: {len(frame)} bytes")
    api_key, api_version, correlation_id = _PREFIX.unpack_from(frame, 0)
    return int(api_key), int(api_version), int(correlation_id)


@functools.cache
def request_type(api_key: int, api_version: int) -> type[Entity]:
    return load_request_schema(api_key, api_version)


@functools.cache
def response_type(api_key: int, api_version: int) -> type[Entity]:
    return load_response_schema(api_key, api_version)


@functools.cache
def _writer(entity_type: type[Entity]) -> Callable[[io.BytesIO, Any], None]:
    return entity_writer(entity_type)


def decode_request(frame: bytes | memoryview) -> tuple[RequestHeader, Any]:
    """Decode a whole request frame (without its size prefix) into header and kio entity.

    The frame comes from an untrusted peer, so it goes through the bounds-checked reader
    (``_decode``), never kio's native one: no length in the frame can make the broker allocate
    more than the frame itself holds. Raises ``ProtocolError`` (``MalformedRequest``).
    """
    data = bytes(frame) if isinstance(frame, memoryview) else frame
    api_key, api_version, _ = peek_header(data)
    try:
        body_type = request_type(api_key, api_version)
    except Exception as exc:  # kio raises its own lookup errors for keys it does not know
        raise ProtocolError(f"no schema for api_key={api_key} v{api_version}") from exc
    header_type = RequestHeaderV2 if body_type.__flexible__ else RequestHeaderV1
    header, used = decode_entity(header_type, data)
    try:
        body, _body_used = decode_entity(body_type, data, used)
    except NotImplementedError as exc:  # a schema shape no request the broker serves uses
        raise ProtocolError(f"cannot decode api_key={api_key} v{api_version}: {exc}") from exc
    # Trailing bytes are ignored, as Kafka's own parser does: some librdkafka versions send
    # fields of neighbouring versions (e.g. Metadata v12 with authorized-operations flags).
    return (
        RequestHeader(api_key, api_version, header.correlation_id, header.client_id),
        body,
    )


def encode_response(
    api_key: int, api_version: int, correlation_id: int, body: Mapping[str, Any]
) -> bytes:
    """Encode a size-prefixed response frame for the given version from a plain dict."""
    entity_type = response_type(api_key, api_version)
    entity = to_entity(entity_type, body)
    out = io.BytesIO()
    out.write(b"\x00\x00\x00\x00")
    out.write(correlation_id.to_bytes(4, "big", signed=True))
    # ApiVersions responses always use header v0 so that clients can parse them before
    # they know which versions the broker speaks.
    if entity_type.__flexible__ and api_key != 18:
        out.write(b"\x00")
    _writer(entity_type)(out, entity)
    data = out.getbuffer()
    struct.pack_into(">i", data, 0, len(data) - 4)
    return out.getvalue()


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    kafka_type: str | None
    nested: type[Entity] | None
    is_array: bool
    optional: bool
    default: Any


def _is_optional(field: dataclasses.Field[Any]) -> bool:
    return "None" in str(field.type)


@functools.cache
def _plan(entity_type: type[Entity]) -> tuple[_FieldPlan, ...]:
    plans = []
    for field in dataclasses.fields(entity_type):
        kind = classify_field(field)
        nested = kind.type_ if isinstance(kind, EntityField | EntityTupleField) else None
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        plans.append(
            _FieldPlan(
                name=field.name,
                kafka_type=field.metadata.get("kafka_type"),
                nested=nested,
                is_array=kind.is_array,
                optional=_is_optional(field),
                default=default,
            )
        )
    return tuple(plans)


def _zero(plan: _FieldPlan) -> Any:
    if plan.default is not dataclasses.MISSING:
        return plan.default
    if plan.is_array:
        return ()
    if plan.optional:
        return None
    if plan.nested is not None:
        return to_entity(plan.nested, {})
    if plan.kafka_type == "string":
        return ""
    if plan.kafka_type in ("bytes", "records"):
        return b""
    if plan.kafka_type == "bool":
        return False
    return _coerce(plan.kafka_type, 0)


def _coerce(kafka_type: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kafka_type == "error_code":
        return value if isinstance(value, ErrorCode) else ErrorCode(value)
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        if isinstance(value, datetime.timedelta):
            return value
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "uuid":
        if isinstance(value, uuid.UUID):
            return None if value == _ZERO_UUID else value
        return None
    if kafka_type == "datetime_i64":
        if isinstance(value, datetime.datetime):
            return value
        return _EPOCH + datetime.timedelta(milliseconds=value)
    if kafka_type == "string" and isinstance(value, bytes):
        return value.decode()
    return value


def to_entity(entity_type: type[Entity], data: Mapping[str, Any]) -> Entity:
    """Build ``entity_type`` from a dict, keeping only the fields this version defines."""
    kwargs: dict[str, Any] = {}
    for plan in _plan(entity_type):
        value = data.get(plan.name, dataclasses.MISSING)
        if value is dataclasses.MISSING:
            kwargs[plan.name] = _zero(plan)
        elif value is None and plan.is_array:
            kwargs[plan.name] = None  # a nullable array answered as null
        elif plan.nested is not None:
            if plan.is_array:
                kwargs[plan.name] = tuple(
                    item if isinstance(item, plan.nested) else to_entity(plan.nested, item)
                    for item in value
                )
            elif value is None or isinstance(value, plan.nested):
                kwargs[plan.name] = value
            else:
                kwargs[plan.name] = to_entity(plan.nested, value)
        elif plan.is_array:
            kwargs[plan.name] = tuple(value)
        else:
            kwargs[plan.name] = _coerce(plan.kafka_type, value)
    return entity_type(**kwargs)


def millis(value: Any) -> int:
    """A kio duration or timestamp field as integer milliseconds."""
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return int((value - _EPOCH).total_seconds() * 1000)
    return int(value)
