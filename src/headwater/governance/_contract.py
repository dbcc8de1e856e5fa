"""Data contracts: one YAML file per topic naming its owner, schema, limits and quality rules.

A contract is the single place a topic's promises are written down; ``apply`` makes the
cluster and the registry match it and ``check`` reports where they have drifted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from headwater.governance._rules import QualityRules

SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)


class ContractError(ValueError):
    """A contract file that cannot be used, or a cluster that refuses it; says which and why."""


@dataclass(frozen=True, slots=True)
class Contract:
    """What a topic promises: who owns it, its shape, its limits and its quality rules."""

    topic: str
    owner: str
    schema: str
    schema_type: str = "AVRO"
    partitions: int = 1
    compatibility: str = "BACKWARD"
    retention_ms: int | None = None
    validation: bool = True
    description: str = ""
    quality: QualityRules = field(default_factory=QualityRules)
    source: str = ""

    @property
    def subject(self) -> str:
        return f"{self.topic}-value"


def load(path: Path) -> Contract:
    """Read and check one contract file; ContractError names the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read contract: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{path}: a contract must be a YAML mapping")
    try:
        return from_dict(raw, base=path.parent, source=str(path))
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from None


def _schema_text(spec: Any, base: Path) -> tuple[str, str]:
    if not isinstance(spec, dict):
        raise ContractError("'schema' must be a mapping with 'type' and 'file' or 'inline'")
    schema_type = str(spec.get("type", "AVRO")).upper()
    if schema_type not in SCHEMA_TYPES:
        raise ContractError(f"schema type {schema_type!r} is not one of {', '.join(SCHEMA_TYPES)}")
    if "file" in spec:
        try:
            return (base / str(spec["file"])).read_text(), schema_type
        except OSError as exc:
            raise ContractError(f"schema file cannot be read: {exc}") from None
    inline = spec.get("inline")
    if inline is None:
        raise ContractError("'schema' needs 'file' (a path next to the contract) or 'inline'")
    return (inline if isinstance(inline, str) else json.dumps(inline)), schema_type


def _quality(raw: Any) -> QualityRules:
    try:
        return QualityRules.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ContractError(f"quality rules: {exc}") from None


def from_dict(raw: dict[str, Any], *, base: Path = Path(), source: str = "") -> Contract:
    for key in ("topic", "owner", "schema"):
        if not raw.get(key):
            raise ContractError(f"missing required key {key!r}")
    schema, schema_type = _schema_text(raw["schema"], base)
    compatibility = str(raw.get("compatibility", "BACKWARD")).upper()
    if compatibility not in LEVELS:
        raise ContractError(f"compatibility {compatibility!r} is not one of {', '.join(LEVELS)}")
    retention = raw.get("retention.ms", raw.get("retention_ms"))
    partitions = raw.get("partitions", 1)
    if not isinstance(partitions, int) or partitions < 1:
        raise ContractError(f"partitions must be a positive integer, got {partitions!r}")
    return Contract(
        topic=str(raw["topic"]),
        owner=str(raw["owner"]),
        schema=schema,
        schema_type=schema_type,
        partitions=partitions,
        compatibility=compatibility,
        retention_ms=None if retention is None else int(retention),
        validation=bool(raw.get("validation", True)),
        description=str(raw.get("description", "")),
        quality=_quality(raw.get("quality") or {}),
        source=source,
    )
