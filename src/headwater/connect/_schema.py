"""Column kinds inferred from records, and the check that a row fits them.

Every sink stores rows in typed columns (SQL tables, Parquet files, DuckDB tables). The kinds
are inferred from the first records seen, then each row is checked in Python before it is
written, because SQLite would otherwise store a string in an integer column without complaint
and one bad value would fail a whole Arrow batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """The portable column types a sink creates."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TEXT = "text"
    JSON = "json"
    ANY = "any"
    """A column of a type the sink does not check (left to the store to accept or refuse)."""


class SchemaMismatch(ValueError):
    """A row does not fit the columns of its table."""


_KIND_OF_TYPE: dict[type, Kind] = {
    bool: Kind.BOOL,
    int: Kind.INT,
    float: Kind.FLOAT,
    str: Kind.TEXT,
    dict: Kind.JSON,
    list: Kind.JSON,
}


def kind_of(value: Any) -> Kind | None:
    """The kind a column would get from ``value``; None for null (no evidence)."""
    if value is None:
        return None
    return _KIND_OF_TYPE.get(type(value), Kind.JSON)


def infer_kinds(rows: Iterable[Mapping[str, Any]]) -> dict[str, Kind]:
    """Columns in order of first appearance; each takes the kind of its first non-null value.

    An int column that later holds floats becomes FLOAT so a batch of mixed numbers is not
    split by an accident of which came first; a column that is null everywhere becomes TEXT.
    """
    kinds: dict[str, Kind | None] = {}
    for row in rows:
        for name, value in row.items():
            seen = kinds.get(name)
            found = kind_of(value)
            if seen is None:
                kinds[name] = found
            elif seen is Kind.INT and found is Kind.FLOAT:
                kinds[name] = Kind.FLOAT
    return {name: kind or Kind.TEXT for name, kind in kinds.items()}


def fits(kind: Kind, value: Any) -> bool:
    if value is None or kind is Kind.ANY or kind is Kind.JSON:
        return True
    actual = type(value)
    if kind is Kind.INT:
        return actual is int
    if kind is Kind.FLOAT:
        return actual is float or actual is int
    if kind is Kind.BOOL:
        return actual is bool
    return actual is str


class RowShape:
    """The columns a sink writes, in order, and the conversion of a row into their values."""

    def __init__(self, kinds: Mapping[str, Kind], required: Iterable[str] = ()) -> None:
        self.kinds = dict(kinds)
        self.names = list(self.kinds)
        self.required = frozenset(required)
        self._pairs = list(self.kinds.items())

    def values(self, row: Mapping[str, Any]) -> list[Any]:
        """The row's values in column order; fields the table lacks are not written."""
        out = []
        for name, kind in self._pairs:
            value = row.get(name)
            if value is None:
                if name in self.required:
                    raise SchemaMismatch(f"field {name!r} is required but missing or null")
            elif not fits(kind, value):
                raise SchemaMismatch(
                    f"field {name!r} holds {type(value).__name__} {_short(value)}, "
                    f"but its column is {kind.value}"
                )
            out.append(value)
        return out

    def new_fields(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, Kind]:
        """Kinds of fields that appear in ``rows`` but have no column yet."""
        fresh = [row for row in rows if not self.kinds.keys() >= row.keys()]
        if not fresh:
            return {}
        inferred = infer_kinds(fresh)
        return {name: kind for name, kind in inferred.items() if name not in self.kinds}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
