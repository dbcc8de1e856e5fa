"""Parsing and canonical forms of Avro, JSON Schema and Protobuf schemas, references included.

Each format is parsed with a well-kept library (fastavro, jsonschema, proto-schema-parser); a
schema that does not parse is refused at registration with Confluent's 42201. The canonical
string (compact JSON for Avro and JSON Schema) decides whether two registrations are the same
schema and therefore share an id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastavro
import jsonschema  # type: ignore[import-untyped]
from fastavro.types import NamedSchemas

from headwater.registry._proto_model import ProtoModel, parse_proto
from headwater.registry._state import Reference, SchemaVersion

SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")

Resolver = Callable[[Reference], SchemaVersion]
"""Finds the registered version a reference names; raises RegistryError when missing."""


class SchemaParseError(ValueError):
    """A schema that is not valid for its type; the message says where."""


@dataclass(slots=True)
class Parsed:
    """A schema ready for compatibility checks and serializers."""

    schema_type: str
    canonical: str
    tree: Any
    named: dict[str, Any] = field(default_factory=dict)


def parse(
    schema_type: str, text: str, references: tuple[Reference, ...], resolve: Resolver
) -> Parsed:
    """Parse ``text`` with every referenced schema resolved (transitively, dependencies first)."""
    if schema_type not in SCHEMA_TYPES:
        raise SchemaParseError(
            f"unknown schemaType {schema_type!r}; use one of {', '.join(SCHEMA_TYPES)}"
        )
    deps = _dependencies(references, resolve)
    if schema_type == "AVRO":
        return _avro(text, deps)
    if schema_type == "JSON":
        return _json(text, deps)
    return _protobuf(text, deps)


def _dependencies(
    references: tuple[Reference, ...], resolve: Resolver
) -> list[tuple[Reference, SchemaVersion]]:
    out: list[tuple[Reference, SchemaVersion]] = []
    seen: set[tuple[str, int]] = set()

    def visit(refs: tuple[Reference, ...]) -> None:
        for ref in refs:
            if (ref.subject, ref.version) in seen:
                continue
            seen.add((ref.subject, ref.version))
            target = resolve(ref)
            visit(target.references)
            out.append((ref, target))

    visit(references)
    return out


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SchemaParseError(f"{what} is not valid JSON: {exc}") from None


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _avro(text: str, deps: list[tuple[Reference, SchemaVersion]]) -> Parsed:
    named: NamedSchemas = {}
    try:
        for ref, target in deps:
            fastavro.parse_schema(
                _load_json(target.schema, f"referenced schema {ref.name!r}"),
                named_schemas=named,
                _write_hint=False,
            )
        raw = _load_json(text, "Avro schema")
        tree = fastavro.parse_schema(raw, named_schemas=named, _write_hint=False)
    except SchemaParseError:
        raise
    except Exception as exc:  # fastavro raises several unrelated types
        raise SchemaParseError(f"not a valid Avro schema: {exc}") from None
    return Parsed("AVRO", _compact(raw), tree, dict(named))


def _json(text: str, deps: list[tuple[Reference, SchemaVersion]]) -> Parsed:
    raw = _load_json(text, "JSON Schema")
    if not isinstance(raw, dict | bool):
        raise SchemaParseError("a JSON Schema must be an object or a boolean")
    try:
        jsonschema.validators.validator_for(raw).check_schema(raw)
    except jsonschema.SchemaError as exc:
        raise SchemaParseError(f"not a valid JSON Schema: {exc.message}") from None
    named = {ref.name: _load_json(t.schema, f"referenced schema {ref.name!r}") for ref, t in deps}
    return Parsed("JSON", _compact(raw), raw, named)


def _protobuf(text: str, deps: list[tuple[Reference, SchemaVersion]]) -> Parsed:
    try:
        model = parse_proto(text)
        imported: dict[str, ProtoModel] = {ref.name: parse_proto(t.schema) for ref, t in deps}
    except ValueError as exc:
        raise SchemaParseError(str(exc)) from None
    for name in model.imports:
        if name not in imported and not name.startswith("google/protobuf/"):
            raise SchemaParseError(f"import {name!r} has no matching reference")
    return Parsed("PROTOBUF", text, model, dict(imported))
