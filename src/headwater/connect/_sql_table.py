"""SQL tables for sinks: created from the record shape when missing, reflected when present.

Append tables carry the record's source position (``_topic``, ``_partition``, ``_offset``)
under a unique constraint, so a replayed record collides instead of duplicating. Upsert tables
use the record's key fields as the primary key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from headwater.connect._schema import Kind

META_COLUMNS: dict[str, Kind] = {
    "_topic": Kind.TEXT,
    "_partition": Kind.INT,
    "_offset": Kind.INT,
    "_timestamp_ms": Kind.INT,
}
POSITION = ("_topic", "_partition", "_offset")


class SqlMode(StrEnum):
    APPEND = "append"
    """Every record is a new row (event history); replays collide on the source position."""
    UPSERT = "upsert"
    """One row per key (current state); a later record with the same key replaces the row."""


class TableError(ValueError):
    """The target table cannot be used as configured."""


@dataclass(frozen=True, slots=True)
class TableShape:
    """The columns a sink writes (record fields, then the meta columns) and the conflict key."""

    name: str
    kinds: dict[str, Kind]
    conflict: tuple[str, ...]
    required: frozenset[str]

    @property
    def field_kinds(self) -> dict[str, Kind]:
        return {n: k for n, k in self.kinds.items() if n not in META_COLUMNS}


def sql_type(kind: Kind) -> TypeEngine[Any]:
    """The column type created for a kind; JSON becomes JSONB on PostgreSQL."""
    if kind is Kind.INT:
        return BigInteger()
    if kind is Kind.FLOAT:
        return Double()
    if kind is Kind.BOOL:
        return Boolean()
    if kind is Kind.JSON:
        return JSON().with_variant(JSONB(), "postgresql")
    return Text()


def kind_of_sql(column_type: TypeEngine[Any]) -> Kind:
    """The kind checked for a reflected column; types we do not know are left to the store."""
    if isinstance(column_type, Boolean):
        return Kind.BOOL
    if isinstance(column_type, Integer):
        return Kind.INT
    if isinstance(column_type, Float | Numeric):
        return Kind.FLOAT
    if isinstance(column_type, JSON):
        return Kind.JSON
    if isinstance(column_type, String):
        return Kind.TEXT
    return Kind.ANY


def create_table(
    engine: Engine, name: str, mode: SqlMode, fields: Mapping[str, Kind], keys: Sequence[str]
) -> None:
    """Create the table for ``fields`` unless another writer created it first."""
    columns = [
        Column(field, sql_type(kind), nullable=field not in keys)
        for field, kind in fields.items()
        if field not in META_COLUMNS
    ]
    columns += [Column(meta, sql_type(kind)) for meta, kind in META_COLUMNS.items()]
    if mode is SqlMode.APPEND:
        constraint: UniqueConstraint | PrimaryKeyConstraint = UniqueConstraint(
            *POSITION, name=f"{name}_position_key"
        )
    else:
        constraint = PrimaryKeyConstraint(*keys, name=f"{name}_pkey")
    Table(name, MetaData(), *columns, constraint).create(engine, checkfirst=True)


def reflect_shape(engine: Engine, name: str, mode: SqlMode, keys: Sequence[str]) -> TableShape:
    """The shape of an existing table, checked against what the mode needs."""
    inspector = inspect(engine)
    columns = inspector.get_columns(name)
    kinds = {c["name"]: kind_of_sql(c["type"]) for c in columns}
    required = frozenset(
        c["name"] for c in columns if not c["nullable"] and c.get("default") is None
    )
    missing_meta = [m for m in META_COLUMNS if m not in kinds]
    if missing_meta:
        raise TableError(
            f"table {name!r} exists but lacks the sink's columns {missing_meta}; add them "
            "(see docs/sinks.md) or choose a new table name so the sink creates it"
        )
    unique_sets = {tuple(inspector.get_pk_constraint(name).get("constrained_columns") or [])}
    unique_sets |= {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)}
    unique_sets |= {
        tuple(str(c) for c in i["column_names"])
        for i in inspector.get_indexes(name)
        if i.get("unique")
    }
    conflict = POSITION if mode is SqlMode.APPEND else tuple(keys)
    if not any(sorted(found) == sorted(conflict) for found in unique_sets):
        raise TableError(
            f"table {name!r} exists but has no primary key or unique constraint on "
            f"{list(conflict)}, which {mode.value} mode needs to make replays harmless; "
            "add one or choose a new table name"
        )
    return TableShape(name, kinds, conflict, required)


def add_columns(engine: Engine, name: str, fields: Mapping[str, Kind]) -> None:
    """Add nullable columns for fields that appeared after the table was created."""
    preparer = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        for field, kind in fields.items():
            type_sql = sql_type(kind).compile(dialect=engine.dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {preparer.quote(name)} ADD COLUMN {preparer.quote(field)} {type_sql}"
            )
