"""Compatibility levels, checked the way Confluent checks them.

BACKWARD: the new schema reads data written with the latest version; FORWARD: the latest
version reads data written with the new one; FULL: both. The _TRANSITIVE forms check against
every live version instead of the latest only. NONE checks nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from headwater.registry._compat_avro import avro_incompatibilities
from headwater.registry._compat_json import json_incompatibilities
from headwater.registry._compat_proto import proto_incompatibilities
from headwater.registry._formats import Parsed

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"

_CHECKERS: dict[str, Callable[[Parsed, Parsed], list[str]]] = {
    "AVRO": avro_incompatibilities,
    "JSON": json_incompatibilities,
    "PROTOBUF": proto_incompatibilities,
}


def can_read(reader: Parsed, writer: Parsed) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    if reader.schema_type != writer.schema_type:
        return [f"SCHEMA_TYPE_CHANGED: {writer.schema_type} cannot be read as {reader.schema_type}"]
    return _CHECKERS[reader.schema_type](reader, writer)


def check(level: str, new: Parsed, previous: list[tuple[int, Parsed]]) -> list[str]:
    """Reasons ``new`` breaks ``level`` against ``previous`` (version, schema), oldest first."""
    assert level in LEVELS, level
    if level == "NONE" or not previous:
        return []
    targets = previous if level.endswith("_TRANSITIVE") else previous[-1:]
    backward = level.startswith(("BACKWARD", "FULL"))
    forward = level.startswith(("FORWARD", "FULL"))
    reasons = []
    for version, old in reversed(targets):
        if backward:
            reasons += [
                f"{r} (new schema reading data written with version {version})"
                for r in can_read(new, old)
            ]
        if forward:
            reasons += [
                f"{r} (version {version} reading data written with the new schema)"
                for r in can_read(old, new)
            ]
    return reasons
