"""Protobuf compatibility: the writer's messages and fields as the reader sees them.

Follows Confluent's difference rules: messages are matched by full name and fields by number;
adding or removing optional fields, renaming fields and enum changes are compatible; a changed
package, a removed (or renamed) message, a field whose wire type changes, required fields
added or removed, and fields moved into an existing oneof are not.
"""

from __future__ import annotations

from headwater.registry._formats import Parsed
from headwater.registry._proto_model import SCALARS, ProtoField, ProtoMessage, ProtoModel

# Scalars that share a wire encoding, so a change within a group reads the same bytes.
_WIRE_GROUPS = (
    frozenset({"int32", "uint32", "int64", "uint64", "bool"}),
    frozenset({"sint32", "sint64"}),
    frozenset({"fixed32", "sfixed32"}),
    frozenset({"fixed64", "sfixed64"}),
    frozenset({"string", "bytes"}),
)


def proto_incompatibilities(reader: Parsed, writer: Parsed) -> list[str]:
    """Differences from ``writer`` (original) to ``reader`` (update) that break reading."""
    r: ProtoModel = reader.tree
    w: ProtoModel = writer.tree
    problems = []
    if r.package != w.package:
        problems.append(f"PACKAGE_CHANGED: package {w.package!r} became {r.package!r}")
    for name, message in w.messages.items():
        update = r.messages.get(name)
        if update is None:
            problems.append(f"MESSAGE_REMOVED at '{name}': message is missing (renamed or removed)")
            continue
        problems += _message(message, update, r, w)
    return problems


def _wire_compatible(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in _WIRE_GROUPS)


def _kind(type_name: str, model: ProtoModel) -> str:
    if type_name in SCALARS:
        return "scalar"
    if type_name.startswith("map<"):
        return "map"
    return "enum" if type_name in model.enums else "message"


def _message(
    original: ProtoMessage, update: ProtoMessage, r: ProtoModel, w: ProtoModel
) -> list[str]:
    problems = []
    at = original.full_name
    for number, old in original.fields.items():
        new = update.fields.get(number)
        if new is None:
            if old.label == "required":
                problems.append(f"REQUIRED_FIELD_REMOVED at '{at}.{number}': {old.name!r}")
            continue
        problems += _field(old, new, f"{at}.{number}", r, w)
    for number, new in update.fields.items():
        if number not in original.fields and new.label == "required":
            problems.append(f"REQUIRED_FIELD_ADDED at '{at}.{number}': {new.name!r}")
    problems += _oneofs(original, update)
    return problems


def _field(old: ProtoField, new: ProtoField, at: str, r: ProtoModel, w: ProtoModel) -> list[str]:
    old_kind, new_kind = _kind(old.type, w), _kind(new.type, r)
    if old_kind != new_kind:
        return [f"FIELD_KIND_CHANGED at '{at}': {old.type} became {new.type}"]
    if old_kind == "scalar" and not _wire_compatible(old.type, new.type):
        return [f"FIELD_SCALAR_KIND_CHANGED at '{at}': {old.type} became {new.type}"]
    if old_kind in ("message", "enum", "map") and old.type != new.type:
        return [f"FIELD_NAMED_TYPE_CHANGED at '{at}': {old.type} became {new.type}"]
    relabelled = (old.label == "repeated") != (new.label == "repeated")
    if relabelled and old_kind == "scalar" and old.type not in ("string", "bytes"):
        return [
            f"FIELD_NUMERIC_LABEL_CHANGED at '{at}': {old.label or 'singular'} "
            f"became {new.label or 'singular'}"
        ]
    return []


def _oneofs(original: ProtoMessage, update: ProtoMessage) -> list[str]:
    problems = []
    old_oneofs = {f.oneof for f in original.fields.values() if f.oneof}
    moved: dict[str, list[int]] = {}
    for number, new in update.fields.items():
        old = original.fields.get(number)
        if old is None or new.oneof is None or old.oneof == new.oneof:
            if old is not None and old.oneof and new.oneof != old.oneof:
                problems.append(
                    f"ONEOF_FIELD_REMOVED at '{original.full_name}.{number}': "
                    f"{old.name!r} left oneof {old.oneof!r}"
                )
            continue
        if new.oneof in old_oneofs:
            problems.append(
                f"FIELD_MOVED_TO_EXISTING_ONEOF at '{original.full_name}.{number}': "
                f"{new.name!r} moved into {new.oneof!r}"
            )
        else:
            moved.setdefault(new.oneof, []).append(number)
    for oneof, numbers in moved.items():
        if len(numbers) > 1:
            problems.append(
                f"MULTIPLE_FIELDS_MOVED_TO_ONEOF at '{original.full_name}': fields "
                f"{numbers} moved into new oneof {oneof!r}"
            )
    return problems
