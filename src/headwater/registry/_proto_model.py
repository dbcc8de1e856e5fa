"""Protobuf schemas reduced to what compatibility needs: messages, fields by number, enums.

Two front ends produce the same model: ``.proto`` text (parsed with proto-schema-parser) and a
base64 ``FileDescriptorProto``, which is what Confluent's Protobuf serializers register.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from proto_schema_parser import ast
from proto_schema_parser.parser import Parser

SCALARS = frozenset(
    {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64"}
    | {"fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}
)
_DESCRIPTOR_SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
    8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
    17: "sint32", 18: "sint64",
}  # fmt: skip
_LABELS = {1: "optional", 2: "required", 3: "repeated"}


@dataclass(slots=True)
class ProtoField:
    name: str
    number: int
    type: str  # a scalar name, or the full name of a message or enum, or map<k,v>
    label: str  # "", "optional", "required" or "repeated"
    oneof: str | None = None


@dataclass(slots=True)
class ProtoMessage:
    full_name: str
    fields: dict[int, ProtoField] = field(default_factory=dict)


@dataclass(slots=True)
class ProtoModel:
    package: str
    syntax: str
    messages: dict[str, ProtoMessage] = field(default_factory=dict)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)


def parse_proto(text: str) -> ProtoModel:
    """A model from ``.proto`` text or a base64 FileDescriptorProto; ValueError if neither."""
    stripped = text.strip()
    if stripped and " " not in stripped and "\n" not in stripped and "{" not in stripped:
        try:
            raw = base64.b64decode(stripped, validate=True)
            return _from_descriptor(descriptor_pb2.FileDescriptorProto.FromString(raw))
        except (binascii.Error, DecodeError) as exc:
            raise ValueError(f"not .proto text and not a base64 descriptor: {exc}") from None
    try:
        tree = Parser(setup_lexer=_strict, setup_parser=_strict).parse(text)
    except Exception as exc:  # the parser raises its own error types
        raise ValueError(f"cannot parse .proto: {exc}") from None
    return _from_ast(tree)


class _Raise(ErrorListener):  # type: ignore[misc]
    """Turns the grammar's recoverable syntax errors into failures (it would print and go on)."""

    def syntaxError(
        self, _recognizer: Any, _symbol: Any, line: int, column: int, msg: str, _e: Any
    ) -> None:
        raise ValueError(f"line {line}:{column} {msg}")


def _strict(recognizer: Any) -> None:
    recognizer.removeErrorListeners()
    recognizer.addErrorListener(_Raise())


# -- .proto text ----------------------------------------------------------------------------
def _from_ast(tree: ast.File) -> ProtoModel:
    package = next((e.name for e in tree.file_elements if isinstance(e, ast.Package)), "")
    model = ProtoModel(package=package, syntax=tree.syntax or "proto2")
    model.imports = [e.name for e in tree.file_elements if isinstance(e, ast.Import)]
    raw: list[tuple[str, ast.Message]] = []
    _collect(tree.file_elements, package, model, raw)
    known = {full for full, _ in raw} | set(model.enums)
    for full, message in raw:
        model.messages[full] = _message(full, message, known)
    if not model.messages and not model.enums:
        raise ValueError(".proto defines no message and no enum")
    return model


def _collect(
    elements: Sequence[object], scope: str, model: ProtoModel, out: list[tuple[str, ast.Message]]
) -> None:
    for element in elements:
        if isinstance(element, ast.Message):
            full = f"{scope}.{element.name}" if scope else element.name
            out.append((full, element))
            _collect(list(element.elements), full, model, out)
        elif isinstance(element, ast.Enum):
            full = f"{scope}.{element.name}" if scope else element.name
            model.enums[full] = {
                v.name: v.number for v in element.elements if isinstance(v, ast.EnumValue)
            }


def _resolve(name: str, scope: str, known: set[str]) -> str:
    """A type name as protoc resolves it: innermost scope outwards."""
    if name in SCALARS:
        return name
    if name.startswith("."):
        return name[1:]
    parts = scope.split(".") if scope else []
    while True:
        candidate = ".".join([*parts, name])
        if candidate in known:
            return candidate
        if not parts:
            return name
        parts.pop()


def _message(full: str, message: ast.Message, known: set[str]) -> ProtoMessage:
    out = ProtoMessage(full)
    for element in message.elements:
        for f, oneof in _fields(element):
            out.fields[f.number] = ProtoField(
                f.name, f.number, _type_of(f, full, known), _label(f), oneof
            )
    return out


def _fields(element: object) -> list[tuple[ast.Field | ast.MapField, str | None]]:
    if isinstance(element, ast.Field | ast.MapField):
        return [(element, None)]
    if isinstance(element, ast.OneOf):
        return [(f, element.name) for f in element.elements if isinstance(f, ast.Field)]
    return []


def _type_of(f: ast.Field | ast.MapField, scope: str, known: set[str]) -> str:
    if isinstance(f, ast.MapField):
        value = _resolve(f.value_type, scope, known)
        return f"map<{f.key_type},{value}>"
    return _resolve(f.type, scope, known)


def _label(f: ast.Field | ast.MapField) -> str:
    if isinstance(f, ast.MapField):
        return "repeated"
    return f.cardinality.value.lower() if f.cardinality is not None else ""


# -- descriptors ----------------------------------------------------------------------------
def _from_descriptor(fd: descriptor_pb2.FileDescriptorProto) -> ProtoModel:
    model = ProtoModel(package=fd.package, syntax=fd.syntax or "proto2")
    model.imports = list(fd.dependency)
    prefix = f"{fd.package}." if fd.package else ""
    for enum in fd.enum_type:
        model.enums[prefix + enum.name] = {v.name: v.number for v in enum.value}
    for message in fd.message_type:
        _descriptor_message(prefix + message.name, message, model)
    return model


def _descriptor_message(
    full: str, message: descriptor_pb2.DescriptorProto, model: ProtoModel
) -> None:
    out = ProtoMessage(full)
    model.messages[full] = out
    maps = {f"{full}.{n.name}": n for n in message.nested_type if n.options.map_entry}
    for enum in message.enum_type:
        model.enums[f"{full}.{enum.name}"] = {v.name: v.number for v in enum.value}
    for nested in message.nested_type:
        if not nested.options.map_entry:
            _descriptor_message(f"{full}.{nested.name}", nested, model)
    for f in message.field:
        type_name = _DESCRIPTOR_SCALARS.get(f.type) or f.type_name.lstrip(".")
        label = _LABELS.get(f.label, "")
        if f.type_name.lstrip(".") in maps:
            entry = maps[f.type_name.lstrip(".")]
            k, v = entry.field[0], entry.field[1]
            value = _DESCRIPTOR_SCALARS.get(v.type) or v.type_name.lstrip(".")
            type_name = f"map<{_DESCRIPTOR_SCALARS.get(k.type, 'string')},{value}>"
        elif label == "optional" and (model.syntax == "proto3" and not f.proto3_optional):
            label = ""
        oneof = None
        if f.HasField("oneof_index") and not f.proto3_optional:
            oneof = message.oneof_decl[f.oneof_index].name
        out.fields[f.number] = ProtoField(f.name, f.number, type_name, label, oneof)
