"""Rows into Arrow tables with the column types the sinks' kinds stand for.

JSON values (objects, lists) become JSON text, which DuckDB and most engines parse on read,
so one file never needs a nested type that a later record could contradict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from headwater.connect._schema import Kind

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.TEXT: pa.string(),
    Kind.JSON: pa.string(),
    Kind.ANY: pa.string(),
}


def arrow_schema(kinds: Mapping[str, Kind]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in kinds.items()])


def to_table(kinds: Mapping[str, Kind], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """A table whose columns follow ``kinds``; each row holds values in that order."""
    arrays = []
    for i, kind in enumerate(kinds.values()):
        column = [row[i] for row in rows]
        if kind is Kind.JSON or kind is Kind.ANY:
            column = [None if v is None else _json_text(v) for v in column]
        arrays.append(pa.array(column, type=ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(kinds))


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
