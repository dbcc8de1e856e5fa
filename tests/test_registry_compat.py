"""Compatibility rules per format and level, as tables of schema evolutions."""
# ruff: noqa: E501  (evolution tables read best one case per line)

from __future__ import annotations

import json
from typing import Any

import pytest

from headwater.registry import Parsed, Reference, SchemaVersion, check, parse
from headwater.registry._compat import can_read


def _no_refs(ref: Reference) -> SchemaVersion:
    raise AssertionError(ref)


def avro(obj: Any) -> Parsed:
    return parse("AVRO", json.dumps(obj), (), _no_refs)


def js(obj: Any) -> Parsed:
    return parse("JSON", json.dumps(obj), (), _no_refs)


def proto(body: str, package: str = "acme") -> Parsed:
    return parse("PROTOBUF", f'syntax = "proto3";\npackage {package};\n{body}\n', (), _no_refs)


def rec(*fields: dict[str, Any], name: str = "User", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "acme", "fields": list(fields), **extra}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": "Color", "symbols": list(symbols), **extra}


# (case, old, new, backward_ok, forward_ok): BACKWARD = new reads old, FORWARD = old reads new.
AVRO_CASES = [
    ("add field with default", rec(f("a", "int")), rec(f("a", "int"), f("b", "string", default="")), True, True),
    ("add field without default", rec(f("a", "int")), rec(f("a", "int"), f("b", "string")), False, True),
    ("remove field with default", rec(f("a", "int"), f("b", "int", default=0)), rec(f("a", "int")), True, True),
    ("remove field without default", rec(f("a", "int"), f("b", "int")), rec(f("a", "int")), True, False),
    ("promote int to long", rec(f("a", "int")), rec(f("a", "long")), True, False),
    ("promote long to double", rec(f("a", "long")), rec(f("a", "double")), True, False),
    ("promote float to double", rec(f("a", "float")), rec(f("a", "double")), True, False),
    ("string to bytes", rec(f("a", "string")), rec(f("a", "bytes")), True, True),
    ("int to string", rec(f("a", "int")), rec(f("a", "string")), False, False),
    ("enum symbol added", rec(f("c", enum("R", "G"))), rec(f("c", enum("R", "G", "B"))), True, False),
    ("enum symbol removed", rec(f("c", enum("R", "G"))), rec(f("c", enum("R"))), False, True),
    ("enum symbol removed, reader default", rec(f("c", enum("R", "G"))), rec(f("c", enum("R", default="R"))), True, True),
    ("rename field with alias", rec(f("a", "int")), rec(f("b", "int", aliases=["a"])), True, False),
    ("rename field without alias", rec(f("a", "int")), rec(f("b", "int")), False, False),
    ("rename record with alias", rec(f("a", "int")), rec(f("a", "int"), name="Person", aliases=["acme.User"]), True, False),
    ("rename record without alias", rec(f("a", "int")), rec(f("a", "int"), name="Person"), False, False),
    ("nested record adds field with default",
     rec(f("addr", rec(f("city", "string"), name="Addr"))),
     rec(f("addr", rec(f("city", "string"), f("zip", "string", default=""), name="Addr"))), True, True),
    ("nested record adds required field",
     rec(f("addr", rec(f("city", "string"), name="Addr"))),
     rec(f("addr", rec(f("city", "string"), f("zip", "string"), name="Addr"))), False, True),
    ("array items promoted", rec(f("xs", {"type": "array", "items": "int"})), rec(f("xs", {"type": "array", "items": "long"})), True, False),
    ("map values changed", rec(f("m", {"type": "map", "values": "int"})), rec(f("m", {"type": "map", "values": "string"})), False, False),
    ("make field nullable", rec(f("a", "string")), rec(f("a", ["null", "string"], default=None)), True, False),
    ("union branch added", rec(f("a", ["null", "int"])), rec(f("a", ["null", "int", "string"])), True, False),
    ("union branch removed", rec(f("a", ["null", "int", "string"])), rec(f("a", ["null", "int"])), False, True),
    ("fixed size changed", rec(f("h", {"type": "fixed", "name": "H", "size": 16})), rec(f("h", {"type": "fixed", "name": "H", "size": 32})), False, False),
    ("recursive type unchanged",
     rec(f("next", ["null", "acme.User"], default=None)), rec(f("next", ["null", "acme.User"], default=None)), True, True),
]  # fmt: skip

JSON_OPEN = {"type": "object", "properties": {"a": {"type": "integer"}}}
JSON_CLOSED = {**JSON_OPEN, "additionalProperties": False}
JSON_CASES = [
    ("property added to open model", JSON_OPEN, {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}, False, True),
    ("property added to closed model", JSON_CLOSED, {**JSON_CLOSED, "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}, True, False),
    ("property removed from open model", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}, JSON_OPEN, True, False),
    ("property removed from closed model", {**JSON_CLOSED, "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}, JSON_CLOSED, False, True),
    ("content model closed", JSON_OPEN, JSON_CLOSED, False, True),
    ("required added", JSON_OPEN, {**JSON_OPEN, "required": ["a"]}, False, True),
    ("required removed", {**JSON_OPEN, "required": ["a"]}, JSON_OPEN, True, False),
    ("type widened integer to number", {"type": "integer"}, {"type": "number"}, True, False),
    ("type narrowed number to integer", {"type": "number"}, {"type": "integer"}, False, True),
    ("type changed", {"type": "string"}, {"type": "integer"}, False, False),
    ("type union widened", {"type": "string"}, {"type": ["string", "null"]}, True, False),
    ("enum value added", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, True, False),
    ("enum value removed", {"enum": ["a", "b"]}, {"enum": ["a"]}, False, True),
    ("minimum increased", {"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 5}, False, True),
    ("maximum increased", {"type": "integer", "maximum": 5}, {"type": "integer", "maximum": 10}, True, False),
    ("maxLength decreased", {"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 5}, False, True),
    ("nested property type changed",
     {"type": "object", "properties": {"o": {"type": "object", "properties": {"x": {"type": "string"}}}}},
     {"type": "object", "properties": {"o": {"type": "object", "properties": {"x": {"type": "integer"}}}}}, False, False),
    ("array items widened", {"type": "array", "items": {"type": "integer"}}, {"type": "array", "items": {"type": "number"}}, True, False),
    ("maxItems decreased", {"type": "array", "maxItems": 3}, {"type": "array", "maxItems": 2}, False, True),
    ("oneOf branch added", {"oneOf": [{"type": "string"}]}, {"oneOf": [{"type": "string"}, {"type": "integer"}]}, True, False),
    ("local ref followed", {"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}, {"type": "number"}, True, False),
]  # fmt: skip

PROTO_CASES = [
    ("field added", "message A { int32 a = 1; }", "message A { int32 a = 1; string b = 2; }", True, True),
    ("field removed", "message A { int32 a = 1; string b = 2; }", "message A { int32 a = 1; }", True, True),
    ("field renamed", "message A { int32 a = 1; }", "message A { int32 renamed = 1; }", True, True),
    ("int32 to int64 (same wire type)", "message A { int32 a = 1; }", "message A { int64 a = 1; }", True, True),
    ("string to bytes", "message A { string a = 1; }", "message A { bytes a = 1; }", True, True),
    ("int32 to string", "message A { int32 a = 1; }", "message A { string a = 1; }", False, False),
    ("sint32 to int32", "message A { sint32 a = 1; }", "message A { int32 a = 1; }", False, False),
    ("field number changed", "message A { int32 a = 1; }", "message A { string a = 2; }", True, True),
    ("message renamed", "message A { int32 a = 1; }", "message B { int32 a = 1; }", False, False),
    ("message added", "message A { int32 a = 1; }", "message A { int32 a = 1; }\nmessage B { int32 b = 1; }", True, False),
    ("scalar to message", "message A { int32 a = 1; }\nmessage M { int32 x = 1; }", "message A { M a = 1; }\nmessage M { int32 x = 1; }", False, False),
    ("nested message type changed", "message A { B b = 1; message B { int32 x = 1; } }", "message A { B b = 1; message B { string x = 1; } }", False, False),
    ("one field into new oneof", "message A { int32 a = 1; }", "message A { oneof o { int32 a = 1; } }", True, False),
    ("two fields into new oneof", "message A { int32 a = 1; int32 b = 2; }", "message A { oneof o { int32 a = 1; int32 b = 2; } }", False, False),
    ("field into existing oneof", "message A { int32 a = 1; oneof o { int32 b = 2; } }", "message A { oneof o { int32 a = 1; int32 b = 2; } }", False, False),
    ("enum value added", "enum E { X = 0; }\nmessage A { E e = 1; }", "enum E { X = 0; Y = 1; }\nmessage A { E e = 1; }", True, True),
    ("repeated int changed to singular", "message A { repeated int32 a = 1; }", "message A { int32 a = 1; }", False, False),
]  # fmt: skip


def _expect(old: Parsed, new: Parsed, backward_ok: bool, forward_ok: bool) -> None:
    assert (check("BACKWARD", new, [(1, old)]) == []) is backward_ok, can_read(new, old)
    assert (check("FORWARD", new, [(1, old)]) == []) is forward_ok, can_read(old, new)
    assert (check("FULL", new, [(1, old)]) == []) is (backward_ok and forward_ok)
    assert check("NONE", new, [(1, old)]) == []


@pytest.mark.parametrize(
    ("case", "old", "new", "backward", "forward"), AVRO_CASES, ids=[c[0] for c in AVRO_CASES]
)
def test_avro(case: str, old: Any, new: Any, backward: bool, forward: bool) -> None:
    _expect(avro(old), avro(new), backward, forward)


@pytest.mark.parametrize(
    ("case", "old", "new", "backward", "forward"), JSON_CASES, ids=[c[0] for c in JSON_CASES]
)
def test_json_schema(case: str, old: Any, new: Any, backward: bool, forward: bool) -> None:
    _expect(js(old), js(new), backward, forward)


@pytest.mark.parametrize(
    ("case", "old", "new", "backward", "forward"), PROTO_CASES, ids=[c[0] for c in PROTO_CASES]
)
def test_protobuf(case: str, old: str, new: str, backward: bool, forward: bool) -> None:
    _expect(proto(old), proto(new), backward, forward)


def test_protobuf_package_change_is_incompatible() -> None:
    old, new = proto("message A {}", "acme"), proto("message A {}", "other")
    assert any("PACKAGE_CHANGED" in r for r in check("BACKWARD", new, [(1, old)]))


V1 = avro(rec(f("a", "int")))
V2 = avro(rec(f("a", "int"), f("b", "int", default=0)))


@pytest.mark.parametrize(
    ("level", "history", "ok"),
    [
        ("BACKWARD", [V1, V2], True),  # checked against the latest only
        ("BACKWARD_TRANSITIVE", [V1, V2], True),
        ("FORWARD", [V2], True),
        ("FORWARD_TRANSITIVE", [V1, V2], True),
        ("FULL", [V2], True),
        ("FULL_TRANSITIVE", [V1, V2], True),
    ],
)
def test_levels_accept(level: str, history: list[Parsed], ok: bool) -> None:
    new = avro(rec(f("a", "int"), f("b", "int", default=0), f("d", "int", default=1)))
    assert (check(level, new, list(enumerate(history, 1))) == []) is ok


def test_transitive_checks_every_version() -> None:
    latest = avro(rec(f("a", "int"), f("x", "int", default=0)))
    newest = avro(rec(f("x", "int")))  # reads latest (x present), not V1 (x missing, no default)
    history = [(1, V1), (2, latest)]
    assert check("BACKWARD", newest, history) == []  # against the latest only
    assert check("BACKWARD_TRANSITIVE", newest, history) != []
    assert any("version 1" in r for r in check("BACKWARD_TRANSITIVE", newest, history))


def test_references_resolve_named_types() -> None:
    address = SchemaVersion(
        "addr", 1, 1, "AVRO", json.dumps(rec(f("city", "string"), name="Address")), ()
    )

    def resolve(ref: Reference) -> SchemaVersion:
        assert (ref.subject, ref.version) == ("addr", 1)
        return address

    refs = (Reference("acme.Address", "addr", 1),)
    old = parse("AVRO", json.dumps(rec(f("to", "acme.Address"), name="Order")), refs, resolve)
    new = parse(
        "AVRO", json.dumps(rec(f("to", "acme.Address"), f("n", "int"), name="Order")), refs, resolve
    )
    assert check("BACKWARD", old, [(1, old)]) == []
    assert check("BACKWARD", new, [(1, old)]) != []
