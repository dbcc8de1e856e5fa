"""PostgreSQL's fast path: COPY a batch into a temporary table, then one INSERT … SELECT.

COPY moves rows in psycopg's C encoder without a round trip per row; the final statement
applies the conflict rule (skip or update) for the whole batch inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import Connection as PgConnection
from psycopg import sql
from sqlalchemy import Connection


def copy_insert(
    conn: Connection,
    table: str,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: Sequence[str],
    upsert: bool,
    json_at: Sequence[int],
    stage: str,
) -> None:
    """Write ``rows`` into ``table`` in the caller's transaction; conflicts skip or update."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, PgConnection)
    target = sql.Identifier(table)
    staging = sql.Identifier(stage)
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    with raw.cursor() as cur:
        # The stage lives as long as the pooled connection and empties at each commit.
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            ).format(staging, target)
        )
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, columns)) as copy:
            if json_at:
                for row in rows:
                    encoded = list(row)
                    for i in json_at:
                        if encoded[i] is not None:
                            encoded[i] = orjson.dumps(encoded[i]).decode()
                    copy.write_row(encoded)
            else:
                for row in rows:
                    copy.write_row(row)
        keys = sql.SQL(", ").join(sql.Identifier(n) for n in conflict)
        if upsert:
            updates = sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n))
                for n in names
                if n not in conflict
            )
            action: sql.Composable = sql.SQL("DO UPDATE SET {}").format(updates)
        else:
            action = sql.SQL("DO NOTHING")
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
                target, columns, columns, staging, keys, action
            )
        )
