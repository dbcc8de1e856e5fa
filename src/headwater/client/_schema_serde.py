"""Registry-aware serdes: Avro, JSON Schema and Protobuf in Confluent's wire format.

Every value is framed as magic byte 0, the 4-byte big-endian schema id and (Protobuf only) the
message indexes, so consumers built on any Confluent-compatible client can read what these
write and the other way round. The writer schema is found once per subject, either by
registering it (the default), by taking the subject's latest version, or by a pinned id; reader
schemas are fetched once per id. After that, serializing never touches the network.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
from collections.abc import Callable
from typing import Any

import fastavro
import jsonschema  # type: ignore[import-untyped]
import orjson
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from headwater.client._registry_access import RegistryAccess
from headwater.client._serde import SerdeError

MAGIC = 0
_HEADER = struct.Struct(">bI")

SubjectNamer = Callable[[str], str]


def topic_value_subject(topic: str) -> str:
    """Confluent's TopicNameStrategy for record values."""
    return f"{topic}-value"


def topic_key_subject(topic: str) -> str:
    return f"{topic}-key"


def split_header(data: bytes, topic: str) -> tuple[int, memoryview]:
    """The schema id and the payload of a wire-format record; SerdeError if it is not one."""
    if len(data) < _HEADER.size or data[0] != MAGIC:
        raise SerdeError(
            f"record from {topic!r} is not in schema-registry wire format "
            "(magic byte 0 and a 4-byte schema id); was it written by a plain serializer?"
        )
    return _HEADER.unpack_from(data)[1], memoryview(data)[_HEADER.size :]


def registry_client(
    registry: SchemaRegistryClient | str,
    *,
    user_info: str | None = None,
    ca_location: str | None = None,
) -> SchemaRegistryClient:
    """A client for the registry at URL ``registry``, or ``registry`` itself if it is one.

    ``user_info`` (``user:password``) and ``ca_location`` default to ``HEADWATER_REGISTRY_AUTH``
    and ``HEADWATER_REGISTRY_CA`` (see ``headwater.client._registry_access``).
    """
    if isinstance(registry, str):
        access = RegistryAccess.resolve(user_info, ca_location)
        return SchemaRegistryClient({"url": registry, **access.confluent_conf()})
    return registry


class _RegistrySerde:
    """Finds and caches writer ids per subject and parsed schemas per id."""

    schema_type = "AVRO"

    def __init__(
        self,
        registry: SchemaRegistryClient | str,
        schema: str | None = None,
        *,
        subject_for: SubjectNamer = topic_value_subject,
        auto_register: bool = True,
        use_latest: bool = False,
        schema_id: int | None = None,
        registry_auth: str | None = None,
        registry_ca: str | None = None,
    ) -> None:
        if schema is None and schema_id is None and not use_latest:
            raise ValueError("give a schema, a pinned schema_id or use_latest=True")
        self.client = registry_client(registry, user_info=registry_auth, ca_location=registry_ca)
        self.schema = schema
        self.subject_for = subject_for
        self.auto_register = auto_register
        self.use_latest = use_latest
        self.pinned_id = schema_id
        self._writers: dict[str, tuple[bytes, Any]] = {}
        self._readers: dict[int, Any] = {}
        self._lock = threading.Lock()
        self.lookups = 0

    # -- schemas --------------------------------------------------------------------------
    def _parse(self, schema: Schema) -> Any:
        raise NotImplementedError

    def _writer(self, topic: str) -> tuple[bytes, Any]:
        """(wire header, parsed schema) for ``topic``; the registry is asked once."""
        subject = self.subject_for(topic)
        found = self._writers.get(subject)
        if found is not None:
            return found
        with self._lock:
            self.lookups += 1
            try:
                schema_id, schema = self._find_writer(subject)
                parsed = self._reader(schema_id, schema)
            except SerdeError:
                raise
            except Exception as exc:
                raise SerdeError(f"no usable schema for subject {subject!r}: {exc}") from exc
            found = (_HEADER.pack(MAGIC, schema_id), parsed)
            self._writers[subject] = found
            return found

    def _find_writer(self, subject: str) -> tuple[int, Schema]:
        if self.pinned_id is not None:
            return self.pinned_id, self.client.get_schema(self.pinned_id)
        if self.use_latest:
            latest = self.client.get_latest_version(subject)
            assert latest.schema_id is not None and latest.schema is not None
            return latest.schema_id, latest.schema
        assert self.schema is not None
        schema = Schema(self.schema, self.schema_type)
        if self.auto_register:
            return self.client.register_schema(subject, schema), schema
        found = self.client.lookup_schema(subject, schema)
        assert found.schema_id is not None
        return found.schema_id, schema

    def _reader(self, schema_id: int, schema: Schema | None = None) -> Any:
        parsed = self._readers.get(schema_id)
        if parsed is None:
            if schema is None:
                self.lookups += 1
                try:
                    schema = self.client.get_schema(schema_id)
                except Exception as exc:
                    raise SerdeError(f"schema id {schema_id} cannot be fetched: {exc}") from exc
            parsed = self._readers[schema_id] = self._parse(schema)
        return parsed

    def schema_id(self, topic: str) -> int:
        """The id this serde writes for ``topic`` (registering or looking it up if needed)."""
        header = self._writer(topic)[0]
        return int(_HEADER.unpack(header)[1])


class AvroSerde(_RegistrySerde):
    """Avro records through fastavro; ``reader_schema`` resolves old data to a newer shape."""

    schema_type = "AVRO"

    def __init__(
        self,
        registry: SchemaRegistryClient | str,
        schema: str | dict[str, Any] | None = None,
        *,
        reader_schema: str | dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        text = json.dumps(schema) if isinstance(schema, dict) else schema
        super().__init__(registry, text, **options)
        self._reader_schema = (
            None if reader_schema is None else fastavro.parse_schema(_as_json(reader_schema))
        )

    def _parse(self, schema: Schema) -> Any:
        named: dict[str, Any] = {}
        for ref in schema.references or []:
            assert ref.subject is not None and ref.version is not None
            target = self.client.get_version(ref.subject, ref.version).schema
            assert target is not None and target.schema_str is not None
            fastavro.parse_schema(json.loads(target.schema_str), named_schemas=named)
        assert schema.schema_str is not None
        return fastavro.parse_schema(json.loads(schema.schema_str), named_schemas=named)

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None:
            return None
        header, parsed = self._writer(topic)
        out = io.BytesIO()
        out.write(header)
        try:
            fastavro.schemaless_writer(out, parsed, value)
        except Exception as exc:  # fastavro raises ValueError, TypeError, struct.error...
            raise SerdeError(f"value for {topic!r} does not match its Avro schema: {exc}") from exc
        return out.getvalue()

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        schema_id, payload = split_header(data, topic)
        writer = self._reader(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(payload), writer, self._reader_schema)
        except Exception as exc:
            raise SerdeError(f"record from {topic!r} is not valid Avro: {exc}") from exc


class JsonSchemaSerde(_RegistrySerde):
    """JSON documents validated against a JSON Schema on the way out and (optionally) in."""

    schema_type = "JSON"

    def __init__(
        self,
        registry: SchemaRegistryClient | str,
        schema: str | dict[str, Any] | None = None,
        *,
        validate_on_read: bool = True,
        **options: Any,
    ) -> None:
        text = json.dumps(schema) if isinstance(schema, dict) else schema
        super().__init__(registry, text, **options)
        self.validate_on_read = validate_on_read

    def _parse(self, schema: Schema) -> Any:
        assert schema.schema_str is not None
        document = json.loads(schema.schema_str)
        return jsonschema.validators.validator_for(document)(document)

    def _check(self, validator: Any, value: Any, topic: str) -> None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise SerdeError(
                f"value for {topic!r} fails its JSON Schema at {where}: {error.message}"
            )

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None:
            return None
        header, validator = self._writer(topic)
        self._check(validator, value, topic)
        try:
            return header + orjson.dumps(value)
        except TypeError as exc:
            raise SerdeError(f"value for {topic!r} is not JSON-serializable: {exc}") from exc

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        schema_id, payload = split_header(data, topic)
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise SerdeError(f"record from {topic!r} is not valid JSON: {exc}") from exc
        if self.validate_on_read:
            self._check(self._reader(schema_id), value, topic)
        return value


def _zigzag(n: int, out: bytearray) -> None:
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _read_zigzag(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise SerdeError("message indexes run past the end of the record")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def message_indexes(descriptor: Any) -> list[int]:
    """Where a message sits in its file: top-level index, then nested indexes."""
    path: list[int] = []
    while descriptor.containing_type is not None:
        parent = descriptor.containing_type
        path.append(list(parent.nested_types).index(descriptor))
        descriptor = parent
    path.append(list(descriptor.file.message_types_by_name.values()).index(descriptor))
    return list(reversed(path))


class ProtobufSerde(_RegistrySerde):
    """Generated protobuf messages; the schema registered is the message's file descriptor."""

    schema_type = "PROTOBUF"

    def __init__(
        self, registry: SchemaRegistryClient | str, message_type: Any, **options: Any
    ) -> None:
        from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]

        proto = descriptor_pb2.FileDescriptorProto()
        message_type.DESCRIPTOR.file.CopyToProto(proto)
        text = base64.b64encode(proto.SerializeToString()).decode()
        super().__init__(registry, text, **options)
        self.message_type = message_type
        indexes = message_indexes(message_type.DESCRIPTOR)
        framed = bytearray()
        if indexes == [0]:
            framed.append(0)  # the common case has a one-byte encoding
        else:
            _zigzag(len(indexes), framed)
            for index in indexes:
                _zigzag(index, framed)
        self._indexes = bytes(framed)

    def _parse(self, schema: Schema) -> Any:
        return schema

    def serialize(self, value: Any, topic: str) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, self.message_type):
            raise SerdeError(
                f"value for {topic!r} is a {type(value).__name__}, "
                f"not a {self.message_type.__name__} message"
            )
        header, _schema = self._writer(topic)
        body: bytes = value.SerializeToString()
        return header + self._indexes + body

    def deserialize(self, data: bytes | None, topic: str) -> Any:
        if data is None:
            return None
        _schema_id, payload = split_header(data, topic)
        count, pos = _read_zigzag(payload, 0)
        for _ in range(count):
            _index, pos = _read_zigzag(payload, pos)
        try:
            return self.message_type.FromString(bytes(payload[pos:]))
        except Exception as exc:
            raise SerdeError(f"record from {topic!r} is not a valid message: {exc}") from exc


def _as_json(schema: str | dict[str, Any]) -> Any:
    return json.loads(schema) if isinstance(schema, str) else schema
