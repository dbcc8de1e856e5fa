"""The SQL sink: batches of records into a SQLite or PostgreSQL table through SQLAlchemy.

Each batch is one transaction. Append mode inserts with ``ON CONFLICT (_topic, _partition,
_offset) DO NOTHING`` and upsert mode with ``ON CONFLICT (key) DO UPDATE``, so a batch replayed
after a crash leaves the table as if it had been written once. PostgreSQL batches go through
COPY into a temporary table and one ``INSERT … SELECT``, which is several times faster than
row-by-row inserts.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import ConnectionPoolEntry

from headwater.connect._records import Rejected, SinkRecord
from headwater.connect._schema import Kind, RowShape, SchemaMismatch, infer_kinds
from headwater.connect._sink import Sink
from headwater.connect._sql_errors import classify
from headwater.connect._sql_table import (
    META_COLUMNS,
    SqlMode,
    TableShape,
    add_columns,
    create_table,
    reflect_shape,
)

log = logging.getLogger(__name__)

_DIALECTS = ("postgresql", "sqlite")


@dataclass(slots=True)
class SqlSinkConfig:
    """Where and how to write: the database URL, table, mode and the upsert key."""

    url: str
    table: str
    mode: SqlMode = SqlMode.APPEND
    key_fields: list[str] = field(default_factory=list)
    add_new_fields: bool = True
    """Add a nullable column when a record brings a field the table lacks."""


class SqlSink(Sink):
    """Writes each batch in one transaction; replays are absorbed by the conflict key."""

    name = "sql"

    def __init__(self, config: SqlSinkConfig, engine: Engine | None = None) -> None:
        if config.mode is SqlMode.UPSERT and not config.key_fields:
            raise ValueError("upsert mode needs key fields (the columns of the primary key)")
        self.config = config
        self.engine = engine or _engine(config.url)
        if self.engine.dialect.name not in _DIALECTS:
            raise ValueError(
                f"the SQL sink supports {' and '.join(_DIALECTS)}, not "
                f"{self.engine.dialect.name!r}; use a postgresql+psycopg:// or sqlite:/// URL"
            )
        self._shape: TableShape | None = None
        self._rows: RowShape | None = None
        self._stage_version = 0
        self._table: Table | None = None

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        try:
            self._prepare(batch)
            assert self._shape is not None and self._rows is not None
            rows, rejected = self._rows_of(batch, self._rows)
            if rows:
                with self.engine.begin() as conn:
                    self._insert(conn, self._shape, rows)
        except (sa_exc.SQLAlchemyError, psycopg.Error, sqlite3.Error) as exc:
            mapped = classify(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return rejected

    def close(self) -> None:
        self.engine.dispose()

    # -- table shape -----------------------------------------------------------------------

    def _prepare(self, batch: Sequence[SinkRecord]) -> None:
        config = self.config
        if self._shape is None:
            if not inspect(self.engine).has_table(config.table):
                fields = infer_kinds(r.value for r in batch)
                fields.update({k: Kind.TEXT for k in config.key_fields if k not in fields})
                create_table(self.engine, config.table, config.mode, fields, config.key_fields)
                log.info("created table table=%s columns=%s", config.table, ",".join(fields))
            self._load_shape()
        assert self._rows is not None
        if config.add_new_fields:
            fresh = self._rows.new_fields(r.value for r in batch)
            fresh = {k: v for k, v in fresh.items() if k not in META_COLUMNS}
            if fresh:
                add_columns(self.engine, config.table, fresh)
                log.info("added columns table=%s columns=%s", config.table, ",".join(fresh))
                self._load_shape()

    def _load_shape(self) -> None:
        config = self.config
        shape = reflect_shape(self.engine, config.table, config.mode, config.key_fields)
        self._shape = shape
        required = shape.required | set(config.key_fields)
        self._rows = RowShape(shape.field_kinds, required)
        self._stage_version += 1
        if self.engine.dialect.name == "sqlite":
            self._table = Table(config.table, MetaData(), autoload_with=self.engine)

    def _rows_of(
        self, batch: Sequence[SinkRecord], shape: RowShape
    ) -> tuple[list[list[Any]], list[Rejected]]:
        rows: list[list[Any]] = []
        rejected: list[Rejected] = []
        for record in batch:
            try:
                values = shape.values(record.value)
            except SchemaMismatch as exc:
                rejected.append(Rejected(record, exc))
                continue
            values += (record.topic, record.partition, record.offset, record.timestamp_ms)
            rows.append(values)
        if self.config.mode is SqlMode.UPSERT:
            rows = _last_per_key(rows, [shape.names.index(k) for k in self.config.key_fields])
        return rows, rejected

    # -- statements ------------------------------------------------------------------------

    def _insert(self, conn: Connection, shape: TableShape, rows: list[list[Any]]) -> None:
        names = [*shape.field_kinds, *META_COLUMNS]
        if self.engine.dialect.name == "postgresql":
            from headwater.connect._sql_pg import copy_insert

            json_at = [i for i, n in enumerate(names) if shape.kinds[n] is Kind.JSON]
            copy_insert(
                conn,
                shape.name,
                names,
                rows,
                conflict=shape.conflict,
                upsert=self.config.mode is SqlMode.UPSERT,
                json_at=json_at,
                stage=f"_hw_stage_{self._stage_version}",
            )
            return
        assert self._table is not None
        stmt = sqlite.insert(self._table)
        if self.config.mode is SqlMode.UPSERT:
            updates = {n: stmt.excluded[n] for n in names if n not in shape.conflict}
            stmt = stmt.on_conflict_do_update(index_elements=list(shape.conflict), set_=updates)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(shape.conflict))
        conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows])


def _last_per_key(rows: list[list[Any]], key_at: list[int]) -> list[list[Any]]:
    """Keep the last row per key: one statement may not update the same row twice."""
    latest: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        latest[tuple(row[i] for i in key_at)] = row
    return list(latest.values())


def _engine(url: str) -> Engine:
    engine = create_engine(
        url,
        pool_pre_ping=True,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers query while the sink writes; the busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
