"""The SQL sink against the embedded broker, real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from _postgres import postgres, postgres_url  # noqa: F401  (fixtures)
from _sinks import (
    SinkProcess,
    create_topic,
    headers_of,
    produce_json,
    read_topic,
    run_until,
    wait_for,
)
from headwater.connect import SinkRunner, SinkSettings, SqlMode, SqlSink, SqlSinkConfig
from headwater.testing import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sink.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def _rows(url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _runner(bootstrap: str, url: str, group: str, **config: Any) -> SinkRunner:
    sink = SqlSink(SqlSinkConfig(url, **config))
    settings = SinkSettings(bootstrap, [config.get("topic", "events")], group, batch_size=300)
    return SinkRunner(sink, settings)


def _drain(bootstrap: str, url: str, group: str, consumed: int, **config: Any) -> SinkRunner:
    topic = config.pop("topic", "events")
    sink = SqlSink(SqlSinkConfig(url, **config))
    runner = SinkRunner(sink, SinkSettings(bootstrap, [topic], group, batch_size=300))
    run_until(runner, lambda: runner.stats.records_consumed >= consumed, f"{consumed} records")
    return runner


def _event(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "customer": f"c{i % 17}",
        "amount": i * 0.5,
        "paid": i % 2 == 0,
        "items": [{"sku": f"s{i % 5}", "qty": 1 + i % 3}],
    }


def test_append_creates_table_from_records_and_writes_each_once(
    bootstrap: str, db_url: str
) -> None:
    create_topic(bootstrap, "events", 3)
    # Key-less records all go to one partition when produced within librdkafka's sticky
    # partitioning linger, so each partition is named: the sink must read all three.
    for partition in range(3):
        events = (_event(i) for i in range(partition, 2000, 3))
        produce_json(bootstrap, "events", events, partition=partition)

    runner = _drain(bootstrap, db_url, "g-append", 2000, table="events")

    assert runner.stats.records_written == 2000
    assert runner.stats.records_dead_lettered == 0
    assert runner.stats.lag == 0
    rows = _rows(db_url, "SELECT id, customer, amount, paid, _partition FROM events ORDER BY id")
    assert [r[0] for r in rows] == list(range(2000))
    assert rows[3][1:4] == ("c3", 1.5, False)
    assert {r[4] for r in rows} == {0, 1, 2}
    engine = sa.create_engine(db_url)
    columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("events")}
    engine.dispose()
    assert isinstance(columns["id"], sa.BigInteger)
    assert isinstance(columns["amount"], sa.Float)
    assert isinstance(columns["paid"], sa.Boolean)
    assert isinstance(columns["customer"], sa.Text | sa.String)
    items = _rows(db_url, "SELECT items FROM events WHERE id = 7")[0][0]
    assert "s2" in str(items)


def test_append_replay_from_the_start_adds_no_rows(bootstrap: str, db_url: str) -> None:
    produce_json(bootstrap, "events", (_event(i) for i in range(700)))
    _drain(bootstrap, db_url, "g-first", 700, table="events")
    # A new group starts from the beginning: every record is replayed.
    replay = _drain(bootstrap, db_url, "g-second", 700, table="events")

    assert replay.stats.records_written == 700
    assert _rows(db_url, "SELECT count(*), count(DISTINCT _offset) FROM events") == [(700, 700)]


def test_upsert_keeps_the_latest_record_per_key(bootstrap: str, db_url: str) -> None:
    updates = [
        {"sku": f"s{k}", "region": "eu", "version": v, "stock": k * 100 + v}
        for v in range(8)
        for k in range(40)
    ]
    produce_json(bootstrap, "stock", updates)

    runner = _drain(
        bootstrap,
        db_url,
        "g-upsert",
        len(updates),
        topic="stock",
        table="stock",
        mode=SqlMode.UPSERT,
        key_fields=["sku", "region"],
    )

    assert runner.stats.records_written == len(updates)
    rows = _rows(db_url, "SELECT sku, version, stock FROM stock ORDER BY sku")
    assert len(rows) == 40
    assert all(version == 7 for _sku, version, _stock in rows)
    assert sorted(stock for *_rest, stock in rows) == sorted(k * 100 + 7 for k in range(40))


def test_fields_that_appear_later_get_new_columns(bootstrap: str, db_url: str) -> None:
    produce_json(bootstrap, "events", [{"id": 1}])
    produce_json(bootstrap, "events", [{"id": 2, "note": "late"}])
    sink = SqlSink(SqlSinkConfig(db_url, "events"))
    runner = SinkRunner(sink, SinkSettings(bootstrap, ["events"], "g-evolve", batch_size=1))
    run_until(runner, lambda: runner.stats.records_written >= 2, "two records")

    assert _rows(db_url, "SELECT id, note FROM events ORDER BY id") == [(1, None), (2, "late")]


def test_records_that_cannot_be_written_go_to_the_dead_letter_topic(
    bootstrap: str, db_url: str
) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id BIGINT NOT NULL, amount BIGINT CHECK (amount >= 0), "
                "note TEXT, _topic TEXT, _partition INTEGER, _offset BIGINT, "
                "_timestamp_ms BIGINT, UNIQUE (_topic, _partition, _offset))"
            )
        )
    engine.dispose()
    good = [{"id": i, "amount": i, "note": "ok"} for i in range(100)]
    bad: list[Any] = [
        b"{not json",
        {"id": 1000, "amount": "lots"},  # wrong type for the BIGINT column
        {"amount": 5},  # id is NOT NULL
        {"id": 1001, "amount": -3},  # refused by the CHECK constraint in the database
    ]
    mixed = good[:40] + bad[:2] + good[40:70] + bad[2:] + good[70:]
    produce_json(bootstrap, "orders", mixed)

    runner = _drain(bootstrap, db_url, "g-dlq", len(mixed), topic="orders", table="orders")

    assert runner.stats.records_written == 100
    assert runner.stats.records_dead_lettered == 4
    assert _rows(db_url, "SELECT count(*), min(id), max(id) FROM orders") == [(100, 0, 99)]
    dead = read_topic(bootstrap, "g-dlq.dlq", 4)
    by_offset = {int(headers_of(m)["hw.dlq.offset"]): m for m in dead}
    assert sorted(by_offset) == [40, 41, 72, 73]
    assert by_offset[40].value() == b"{not json"
    first = headers_of(by_offset[40])
    assert first["hw.dlq.topic"] == "orders"
    assert first["hw.dlq.partition"] == "0"
    assert first["hw.dlq.stage"] == "sink:sql"
    assert first["hw.dlq.error_type"] == "DecodeError"
    assert "not valid JSON" in first["hw.dlq.error"]
    assert "hw.dlq.timestamp" in first
    assert "'amount'" in headers_of(by_offset[41])["hw.dlq.error"]
    assert "'id' is required" in headers_of(by_offset[72])["hw.dlq.error"]
    check = headers_of(by_offset[73])
    assert "check" in check["hw.dlq.error"].lower()
    assert check["hw.dlq.error_type"] in ("IntegrityError", "CheckViolation")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_kill_9_mid_run_then_restart_writes_each_record_once(
    bootstrap: str, db_url: str, mode: str
) -> None:
    total = 30_000
    create_topic(bootstrap, "clicks", 2)
    produce_json(bootstrap, "clicks", ({"click": i, "page": f"/p{i % 9}"} for i in range(total)))
    args = [
        "sql",
        db_url,
        "--topic",
        "clicks",
        "--table",
        "clicks",
        "--group",
        "g-crash",
        "--batch-size",
        "200",
        "--bootstrap",
        bootstrap,
        "--mode",
        mode,
    ]
    if mode == "upsert":
        args += ["--key", "click"]

    first = SinkProcess(*args)
    try:
        wait_for(lambda: first.written() >= 3000, "the first run to write some batches")
    finally:
        first.kill()
    written_before = _rows(db_url, "SELECT count(*) FROM clicks")[0][0]
    assert 0 < written_before < total

    second = SinkProcess(*args)
    try:
        wait_for(
            lambda: _rows(db_url, "SELECT count(*) FROM clicks")[0][0] >= total,
            "the restarted sink to catch up",
        )
        assert second.interrupt() == 0, second.output()
    finally:
        second.close()
    assert _rows(db_url, "SELECT count(*), count(DISTINCT click) FROM clicks") == [(total, total)]
    assert "stopped:" in second.output()


def test_a_missing_unique_key_is_reported_clearly(bootstrap: str, tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE t (id INTEGER, _topic TEXT, _partition INTEGER, _offset INTEGER, "
            "_timestamp_ms INTEGER)"
        )
    produce_json(bootstrap, "t", [{"id": 1}])
    runner = SinkRunner(
        SqlSink(SqlSinkConfig(f"sqlite:///{path}", "t")), SinkSettings(bootstrap, ["t"], "g")
    )
    with pytest.raises(ValueError, match="no primary key or unique constraint"):
        run_until(runner, lambda: False, "the sink to refuse the table")


def test_postgres_fixture_is_a_real_server(postgres: PostgresServer) -> None:  # noqa: F811
    assert _rows(postgres.url(), "SELECT version()")[0][0].startswith("PostgreSQL 15")


def test_each_sink_command_explains_its_options() -> None:
    from typer.testing import CliRunner

    from headwater.cli._app import app

    for kind, options in {
        "sql": ["--mode", "--key", "--table", "--add-columns"],
        "parquet": ["--rotate-rows", "--rotate-seconds", "--time-field", "--s3-endpoint"],
        "duckdb": ["--query", "--poll-ms"],
    }.items():
        result = CliRunner().invoke(app, ["sink", kind, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for option in [*options, "--topic", "--group", "--dlq-topic", "--batch-size"]:
            assert option in result.output, (kind, option)
