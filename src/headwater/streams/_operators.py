"""Stateless operators: each works on a whole batch with one tight loop.

Per-record user functions are called inside list comprehensions (the cheapest loop CPython
has); batch functions receive the list of values and return a list, so vectorized code runs
once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from headwater.streams._core import Processor, Record

ValueFn = Callable[[Any], Any]


class Filter(Processor):
    def __init__(self, predicate: Callable[[Any], bool]) -> None:
        self.predicate = predicate

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        predicate = self.predicate
        return [r for r in records if predicate(r.value)]


class Map(Processor):
    """Replaces each value; records are new objects so branches never see each other's edits."""

    def __init__(self, fn: ValueFn) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        fn = self.fn
        return [
            Record(r.key, fn(r.value), r.timestamp, r.headers, r.topic, r.partition, r.offset)
            for r in records
        ]


class MapRecord(Processor):
    """Calls ``fn(record) -> record`` for code that needs key, timestamp or headers."""

    def __init__(self, fn: Callable[[Record], Record]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        return [self.fn(r) for r in records]


class FlatMap(Processor):
    def __init__(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        fn = self.fn
        return [
            Record(r.key, value, r.timestamp, r.headers, r.topic, r.partition, r.offset)
            for r in records
            for value in fn(r.value)
        ]


class Peek(Processor):
    def __init__(self, fn: Callable[[Record], None]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        for r in records:
            self.fn(r)
        return records


class Rekey(Processor):
    def __init__(self, fn: Callable[[Record], Any]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        fn = self.fn
        return [
            Record(fn(r), r.value, r.timestamp, r.headers, r.topic, r.partition, r.offset)
            for r in records
        ]


class FilterBatch(Processor):
    """``fn(values) -> flags``: one call per batch, e.g. a NumPy or Polars expression."""

    def __init__(self, fn: Callable[[list[Any]], Iterable[bool]]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        flags = self.fn([r.value for r in records])
        return [r for r, keep in zip(records, flags, strict=True) if keep]


class MapBatch(Processor):
    """``fn(values) -> values`` of the same length: one call per batch."""

    def __init__(self, fn: Callable[[list[Any]], Iterable[Any]]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        values = list(self.fn([r.value for r in records]))
        if len(values) != len(records):
            raise ValueError(
                f"map_batch function returned {len(values)} values for {len(records)} records; "
                "it must return exactly one value per input value"
            )
        return [
            Record(r.key, v, r.timestamp, r.headers, r.topic, r.partition, r.offset)
            for r, v in zip(records, values, strict=True)
        ]


class ApplyBatch(Processor):
    """``fn(records) -> records``: full control over a batch (may drop, add, reorder)."""

    def __init__(self, fn: Callable[[list[Record]], list[Record]]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        return list(self.fn(records))


class Pass(Processor):
    """Forwards everything: merge points and branch heads."""

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        return records


class Lookup(Protocol):
    """Anything keyed that answers ``get``: a global table, a dict in tests."""

    def get(self, key: Any, default: Any = None) -> Any: ...


class TableJoin(Processor):
    """Enrich each record with the table row for its key (or for ``key_fn(value)``).

    ``how="inner"`` drops records with no row; ``"left"`` passes ``None`` to the joiner.
    """

    def __init__(
        self,
        table: Lookup,
        joiner: Callable[[Any, Any], Any],
        how: Literal["inner", "left"] = "inner",
        key_fn: Callable[[Any], Any] | None = None,
    ) -> None:
        self.table = table
        self.joiner = joiner
        self.how = how
        self.key_fn = key_fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        get, joiner, key_fn = self.table.get, self.joiner, self.key_fn
        out: list[Record] = []
        for r in records:
            row = get(r.key if key_fn is None else key_fn(r.value))
            if row is None and self.how == "inner":
                continue
            out.append(
                Record(
                    r.key,
                    joiner(r.value, row),
                    r.timestamp,
                    r.headers,
                    r.topic,
                    r.partition,
                    r.offset,
                )
            )
        return out


class ValidationError(ValueError):
    """A record broke its contract; the message lists every reason."""


class Validate(Processor):
    """Pass records whose ``check(value)`` returns no reasons; the others raise, so the task
    isolates them and parks them in the dead-letter topic with the reasons."""

    def __init__(self, check: Callable[[Any], list[str]]) -> None:
        self.check = check

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        check = self.check
        for r in records:
            reasons = check(r.value)
            if reasons:
                raise ValidationError("; ".join(reasons))
        return records


KEY_COLUMN = "_key"
TIMESTAMP_COLUMN = "_timestamp"
ROW_COLUMN = "_row"


class ApplyArrow(Processor):
    """``fn(table) -> table`` on a pyarrow Table of the batch's values (dicts become columns),
    with the columns ``_key``, ``_timestamp`` and ``_row`` (the input position) added.

    The output table's rows become the output records: ``_key`` and ``_timestamp`` set key and
    event time when present, and a surviving ``_row`` keeps the input record's origin (for
    lineage); other columns form the value. Vectorized code (``pyarrow.compute``, or Polars
    through ``polars.from_arrow``) then runs once per batch.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        import pyarrow as pa  # type: ignore[import-untyped]

        rows = []
        for index, r in enumerate(records):
            if not isinstance(r.value, dict):
                raise TypeError(
                    f"apply_arrow needs dict values (they become columns), got "
                    f"{type(r.value).__name__}"
                )
            rows.append(
                {**r.value, KEY_COLUMN: r.key, TIMESTAMP_COLUMN: r.timestamp, ROW_COLUMN: index}
            )
        result = self.fn(pa.Table.from_pylist(rows))
        if not isinstance(result, pa.Table):
            raise TypeError(f"apply_arrow function must return a pyarrow.Table, not {result!r}")
        last = records[-1]
        out: list[Record] = []
        for row in result.to_pylist():
            index = row.pop(ROW_COLUMN, None)
            origin = records[index] if isinstance(index, int) else last
            key = row.pop(KEY_COLUMN, origin.key)
            timestamp = row.pop(TIMESTAMP_COLUMN, origin.timestamp)
            out.append(
                Record(
                    key,
                    row,
                    timestamp,
                    origin.headers,
                    origin.topic,
                    origin.partition,
                    origin.offset,
                )
            )
        return out
