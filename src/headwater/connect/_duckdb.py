"""The live DuckDB sink: a table fed continuously from topics and queryable while it fills.

Each batch is inserted from Arrow in one DuckDB transaction together with the next offset of
every partition it covers (table ``_headwater_offsets``). On restart the sink seeks to those
stored offsets, so a crash neither loses nor repeats rows, whatever the group had committed.

Queries run on their own cursor (a separate DuckDB connection to the same database), which
sees every committed batch: DuckDB's MVCC lets one writer and many readers in one process
work at once. Batches are written as they are polled, so freshness is the poll interval plus
the insert time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from headwater.connect._arrow import to_table
from headwater.connect._records import Rejected, SinkRecord
from headwater.connect._schema import Kind, RowShape, SchemaMismatch, infer_kinds
from headwater.connect._sink import (
    BatchRejected,
    PartitionStart,
    Sink,
    TopicPartitionKey,
    TransientError,
)

log = logging.getLogger(__name__)

OFFSETS_TABLE = "_headwater_offsets"
META_KINDS = {
    "_topic": Kind.TEXT,
    "_partition": Kind.INT,
    "_offset": Kind.INT,
    "_timestamp_ms": Kind.INT,
}
_DUCK_TYPES = {
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.BOOL: "BOOLEAN",
    Kind.TEXT: "VARCHAR",
    Kind.JSON: "JSON",
    Kind.ANY: "VARCHAR",
}


def _kind_of_duck(type_name: str) -> Kind:
    upper = type_name.upper()
    if upper in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return Kind.INT
    if upper in ("DOUBLE", "FLOAT", "REAL") or upper.startswith("DECIMAL"):
        return Kind.FLOAT
    if upper == "BOOLEAN":
        return Kind.BOOL
    if upper == "VARCHAR":
        return Kind.TEXT
    if upper == "JSON":
        return Kind.JSON
    return Kind.ANY


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(slots=True)
class DuckDBSinkConfig:
    """The database file (or ``:memory:``), the table, and how often to commit to the group."""

    path: str
    table: str
    group_commit_interval_s: float = 1.0
    """Group offsets are for lag reports only (the table keeps its own), so commit them rarely."""


class DuckDBSink(Sink):
    """Appends batches to a DuckDB table; ``query`` is safe from any thread."""

    name = "duckdb"

    def __init__(self, config: DuckDBSinkConfig) -> None:
        self.config = config
        self._db = duckdb.connect(config.path)
        self._lock = threading.Lock()
        self._writer = self._db.cursor()
        self._writer.execute(
            f"CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (topic VARCHAR, partition INTEGER, "
            "next_offset BIGINT, PRIMARY KEY (topic, partition))"
        )
        self._shape: RowShape | None = None
        self._last_commit_s = 0.0

    # -- reading ---------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database, for one reader thread; close it when done."""
        with self._lock:
            return self._db.cursor()

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a fresh cursor and return all rows; callable while ingesting."""
        cur = self.cursor()
        try:
            return cur.execute(sql, parameters).fetchall()
        finally:
            cur.close()

    def query_arrow(self, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
        cur = self.cursor()
        try:
            return cur.execute(sql, parameters).to_arrow_table()
        finally:
            cur.close()

    # -- the sink contract -----------------------------------------------------------------

    def assigned(self, partitions: Sequence[PartitionStart]) -> Mapping[TopicPartitionKey, int]:
        with self._lock:
            rows = self._writer.execute(
                f"SELECT topic, partition, next_offset FROM {OFFSETS_TABLE}"  # noqa: S608
            ).fetchall()
        stored = {(str(t), int(p)): int(o) for t, p, o in rows}
        wanted = {(s.topic, s.partition) for s in partitions}
        return {key: offset for key, offset in stored.items() if key in wanted}

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        shape = self._prepare(batch)
        rows: list[list[Any]] = []
        rejected: list[Rejected] = []
        next_offsets: dict[TopicPartitionKey, int] = {}
        for record in batch:
            next_offsets[(record.topic, record.partition)] = record.offset + 1
            try:
                values = shape.values(record.value)
            except SchemaMismatch as exc:
                rejected.append(Rejected(record, exc))
                continue
            values += (record.topic, record.partition, record.offset, record.timestamp_ms)
            rows.append(values)
        kinds = {**shape.kinds, **META_KINDS}
        self._insert(to_table(kinds, rows) if rows else None, list(kinds), next_offsets)
        return rejected

    def flush_due(self, now_s: float) -> bool:
        if now_s - self._last_commit_s >= self.config.group_commit_interval_s:
            self._last_commit_s = now_s
            return True
        return False

    def close(self) -> None:
        with self._lock:
            self._writer.close()
            self._db.close()

    # -- internals -------------------------------------------------------------------------

    def _insert(
        self, table: pa.Table | None, names: list[str], next_offsets: dict[TopicPartitionKey, int]
    ) -> None:
        columns = ", ".join(quote(n) for n in names)
        cur = self._writer
        with self._lock:
            try:
                cur.execute("BEGIN TRANSACTION")
                if table is not None:
                    cur.register("_hw_batch", table)
                    insert = f"INSERT INTO {quote(self.config.table)} ({columns}) SELECT {columns}"
                    cur.execute(insert + " FROM _hw_batch")
                    cur.unregister("_hw_batch")
                cur.executemany(
                    f"INSERT OR REPLACE INTO {OFFSETS_TABLE} VALUES (?, ?, ?)",  # noqa: S608
                    [[t, p, o] for (t, p), o in next_offsets.items()],
                )
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                if isinstance(exc, duckdb.ConstraintException | duckdb.ConversionException):
                    raise BatchRejected(str(exc).splitlines()[0]) from exc
                if isinstance(exc, duckdb.IOException | duckdb.TransactionException):
                    raise TransientError(str(exc).splitlines()[0]) from exc
                raise

    def _prepare(self, batch: Sequence[SinkRecord]) -> RowShape:
        table = self.config.table
        if self._shape is None:
            existing = self._describe()
            if not existing:
                kinds = infer_kinds(r.value for r in batch)
                columns = {**kinds, **META_KINDS}
                ddl = ", ".join(f"{quote(n)} {_DUCK_TYPES[k]}" for n, k in columns.items())
                with self._lock:
                    self._writer.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({ddl})")
                log.info("created table table=%s columns=%s", table, ",".join(kinds))
            self._load_shape()
        assert self._shape is not None
        fresh = self._shape.new_fields(r.value for r in batch)
        fresh = {k: v for k, v in fresh.items() if k not in META_KINDS}
        if fresh:
            with self._lock:
                for name, kind in fresh.items():
                    self._writer.execute(
                        f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {_DUCK_TYPES[kind]}"
                    )
            self._load_shape()
        return self._shape

    def _describe(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._writer.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [self.config.table],
            ).fetchall()

    def _load_shape(self) -> None:
        described = self._describe()
        kinds = {str(n): _kind_of_duck(str(t)) for n, t, _ in described if n not in META_KINDS}
        required = {str(n) for n, _, nullable in described if nullable == "NO"}
        missing = [m for m in META_KINDS if m not in {d[0] for d in described}]
        if missing:
            raise ValueError(
                f"table {self.config.table!r} exists but lacks the sink's columns {missing}; "
                "choose a new table name so the sink creates it"
            )
        self._shape = RowShape(kinds, required)
