"""The live DuckDB sink: rows queryable while ingesting, offsets kept with the rows, dead
letters, and kill -9 of the sink process."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from _sinks import (
    SinkProcess,
    create_topic,
    headers_of,
    produce_json,
    read_topic,
    run_until,
    wait_for,
)
from headwater.connect import DuckDBSink, DuckDBSinkConfig, SinkRunner, SinkSettings


def _click(i: int) -> dict[str, Any]:
    return {"id": i, "page": f"/p{i % 7}", "ms": i % 250, "bot": i % 10 == 0}


def _runner(bootstrap: str, sink: DuckDBSink, group: str) -> SinkRunner:
    return SinkRunner(sink, SinkSettings(bootstrap, ["clicks"], group, poll_timeout_s=0.05))


def test_rows_are_queryable_from_another_thread_while_ingesting(
    bootstrap: str, tmp_path: Path
) -> None:
    create_topic(bootstrap, "clicks", 2)
    sink = DuckDBSink(DuckDBSinkConfig(str(tmp_path / "live.duckdb"), "clicks"))
    runner = _runner(bootstrap, sink, "g-live").start()
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                seen.append(sink.query("SELECT count(*) FROM clicks")[0][0])
            except duckdb.CatalogException:
                pass  # the table appears with the first batch
            except BaseException as exc:
                errors.append(exc)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for start in range(0, 5000, 1000):
            produce_json(bootstrap, "clicks", (_click(i) for i in range(start, start + 1000)))
            wait_for(lambda s=start: bool(seen) and seen[-1] >= s + 1000, "rows to show up")
    finally:
        done.set()
        thread.join()
        runner.stop()
        runner.join()
    assert not errors
    assert seen == sorted(seen), "a reader never sees rows disappear"
    assert len(set(seen)) > 3, "the reader saw the table grow in steps"
    con = duckdb.connect(str(tmp_path / "live.duckdb"), read_only=True)
    assert con.sql("SELECT count(*), count(DISTINCT id), sum(bot::INT) FROM clicks").fetchall() == [
        (5000, 5000, 500)
    ]
    described = dict(
        con.sql(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'clicks'"
        ).fetchall()
    )
    assert described["id"] == "BIGINT" and described["bot"] == "BOOLEAN"
    assert described["page"] == "VARCHAR"
    con.close()


def test_a_marker_event_becomes_visible_while_the_sink_runs(bootstrap: str, tmp_path: Path) -> None:
    sink = DuckDBSink(DuckDBSinkConfig(":memory:", "clicks"))
    runner = _runner(bootstrap, sink, "g-fresh").start()
    try:
        produce_json(bootstrap, "clicks", (_click(i) for i in range(100)))
        wait_for(lambda: _count(sink, "SELECT count(*) FROM clicks") == 100, "the first rows")
        produce_json(bootstrap, "clicks", [{"id": -1, "page": "marker", "ms": 0, "bot": False}])
        wait_for(
            lambda: _count(sink, "SELECT count(*) FROM clicks WHERE id = -1") == 1, "the marker"
        )
    finally:
        runner.stop()
        runner.join()


def _count(sink: DuckDBSink, sql: str) -> int:
    try:
        return int(sink.query(sql)[0][0])
    except duckdb.CatalogException:
        return 0


def test_offsets_stored_with_the_rows_win_over_a_new_group(bootstrap: str, tmp_path: Path) -> None:
    path = str(tmp_path / "live.duckdb")
    produce_json(bootstrap, "clicks", (_click(i) for i in range(800)))
    first = _runner(bootstrap, DuckDBSink(DuckDBSinkConfig(path, "clicks")), "g-one")
    run_until(first, lambda: first.stats.records_written >= 800, "the first 800 rows")

    produce_json(bootstrap, "clicks", (_click(i) for i in range(800, 1000)))
    # Another group has no committed offsets, yet the table's own offsets say where to go on.
    sink = DuckDBSink(DuckDBSinkConfig(path, "clicks"))
    second = _runner(bootstrap, sink, "g-two")
    run_until(second, lambda: second.stats.records_written >= 200, "the next 200 rows")

    assert second.stats.records_consumed == 200
    con = duckdb.connect(path, read_only=True)
    assert con.sql("SELECT count(*), count(DISTINCT id) FROM clicks").fetchall() == [(1000, 1000)]
    assert con.sql("SELECT next_offset FROM _headwater_offsets").fetchall() == [(1000,)]
    con.close()


def test_unwritable_records_go_to_the_dead_letter_topic(bootstrap: str, tmp_path: Path) -> None:
    path = str(tmp_path / "live.duckdb")
    con = duckdb.connect(path)
    con.execute(
        "CREATE TABLE clicks (id BIGINT NOT NULL, page VARCHAR, ms BIGINT, bot BOOLEAN, "
        "_topic VARCHAR, _partition INTEGER, _offset BIGINT, _timestamp_ms BIGINT)"
    )
    con.close()
    rows: list[Any] = [_click(i) for i in range(60)]
    rows[5] = b"\xff\xfe"
    rows[15] = {"id": 15, "page": "/x", "ms": "slow", "bot": False}
    rows[25] = {"page": "/no-id", "ms": 1, "bot": False}
    produce_json(bootstrap, "clicks", rows)
    sink = DuckDBSink(DuckDBSinkConfig(path, "clicks"))
    runner = _runner(bootstrap, sink, "g-bad")

    run_until(runner, lambda: runner.stats.records_consumed >= 60, "all 60 records")

    assert runner.stats.records_written == 57
    dead = {
        int(headers_of(m)["hw.dlq.offset"]): (m, headers_of(m))
        for m in read_topic(bootstrap, "g-bad.dlq", 3)
    }
    assert sorted(dead) == [5, 15, 25]
    assert dead[5][0].value() == b"\xff\xfe"
    assert dead[5][1]["hw.dlq.error_type"] == "DecodeError"
    assert "'ms'" in dead[15][1]["hw.dlq.error"]
    assert "'id' is required" in dead[25][1]["hw.dlq.error"]
    assert all(h["hw.dlq.stage"] == "sink:duckdb" for _m, h in dead.values())
    con = duckdb.connect(path, read_only=True)
    assert con.sql("SELECT count(*) FROM clicks WHERE id IN (5, 15, 25)").fetchall() == [(0,)]
    con.close()


@pytest.mark.slow
def test_kill_9_mid_run_then_restart_writes_each_record_once(
    bootstrap: str, tmp_path: Path
) -> None:
    total = 30_000
    create_topic(bootstrap, "clicks", 2)
    produce_json(bootstrap, "clicks", (_click(i) for i in range(total)))
    path = str(tmp_path / "live.duckdb")
    args = [
        "duckdb",
        path,
        "--topic",
        "clicks",
        "--group",
        "g-crash",
        "--batch-size",
        "200",
        "--bootstrap",
        bootstrap,
        "--query",
        "SELECT 'rows', count(*) FROM clicks",
    ]

    def rows_seen(process: SinkProcess) -> int:
        found = re.findall(r"\('rows', (\d+)\)", process.output())
        return int(found[-1]) if found else 0

    first = SinkProcess(*args)
    try:
        wait_for(lambda: rows_seen(first) >= 3000, "the first run to write some batches")
    finally:
        first.kill()
    assert rows_seen(first) < total, "the first run was killed mid-run"
    second = SinkProcess(*args)
    try:
        wait_for(lambda: rows_seen(second) >= total, "the restarted sink to catch up")
        assert second.interrupt() == 0, second.output()
    finally:
        second.close()
    con = duckdb.connect(path, read_only=True)
    found = con.sql(
        "SELECT count(*), count(DISTINCT id), count(DISTINCT (_partition, _offset)) FROM clicks"
    ).fetchall()
    con.close()
    assert found == [(total, total, total)]
