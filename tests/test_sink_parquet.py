"""The Parquet sink against the embedded broker, local disk and a moto S3 server on loopback;
files are read back with DuckDB and pyarrow."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import s3fs

from _s3 import S3Endpoint, s3  # noqa: F401  (fixture)
from _sinks import (
    SinkProcess,
    create_topic,
    headers_of,
    produce_json,
    read_topic,
    run_until,
    wait_for,
)
from headwater.connect import ParquetSink, ParquetSinkConfig, SinkRunner, SinkSettings

NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)-(?P<first>\d{20})-(?P<last>\d{20})\.parquet$")
START_S = 1_767_225_600  # 2026-01-01T00:00:00Z


def _reading(i: int) -> dict[str, Any]:
    # Three hours of readings, one a minute apart per sensor.
    return {"id": i, "sensor": f"s{i % 4}", "ts": START_S + (i * 7) % (3 * 3600), "temp": 20.5}


def _drain(bootstrap: str, config: ParquetSinkConfig, group: str, consumed: int) -> SinkRunner:
    runner = SinkRunner(
        ParquetSink(config), SinkSettings(bootstrap, ["readings"], group, batch_size=250)
    )
    run_until(runner, lambda: runner.stats.records_consumed >= consumed, f"{consumed} records")
    return runner


def _files(base: Path) -> list[Path]:
    return sorted(base.glob("dt=*/hour=*/*.parquet"))


def _check_layout(paths: list[str], read: Any) -> int:
    """Every file sits in the hour of its rows and holds exactly the offsets in its name."""
    total = 0
    for path in paths:
        dt, hour, name = path.split("/")[-3:]
        match = NAME.match(name)
        assert match, name
        table = read(path)
        rows = table.to_pylist()
        offsets = [r["_offset"] for r in rows]
        assert offsets[0] == int(match["first"]) and offsets[-1] == int(match["last"])
        assert {r["_partition"] for r in rows} == {int(match["partition"])}
        for row in rows:
            moment = datetime.fromtimestamp(row["ts"], tz=UTC)
            assert (dt, hour) == (f"dt={moment:%Y-%m-%d}", f"hour={moment:%H}")
        total += len(rows)
    return total


def test_files_are_partitioned_by_event_hour_and_named_by_offsets(
    bootstrap: str, tmp_path: Path
) -> None:
    create_topic(bootstrap, "readings", 2)
    produce_json(bootstrap, "readings", (_reading(i) for i in range(3000)))
    base = tmp_path / "lake"
    config = ParquetSinkConfig(f"file://{base}", rotate_rows=700, time_field="ts")

    runner = _drain(bootstrap, config, "g-pq", 3000)

    files = _files(base)
    assert {p.parent.parent.name for p in files} == {"dt=2026-01-01"}
    assert {p.parent.name for p in files} == {"hour=00", "hour=01", "hour=02"}
    assert _check_layout([str(p) for p in files], pq.read_table) == 3000
    assert runner.stats.records_written == 3000
    found = duckdb.sql(
        f"SELECT count(*), count(DISTINCT id), count(DISTINCT hour), CAST(min(dt) AS VARCHAR) "
        f"FROM read_parquet('{base}/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert found == [(3000, 3000, 3, "2026-01-01")]
    dataset = ds.dataset(str(base), format="parquet", partitioning="hive")
    assert dataset.count_rows() == 3000
    assert not list(base.rglob("*.tmp"))


def test_files_rotate_on_time_without_reaching_the_size_bounds(
    bootstrap: str, tmp_path: Path
) -> None:
    produce_json(bootstrap, "readings", (_reading(i) for i in range(10)))
    base = tmp_path / "lake"
    config = ParquetSinkConfig(str(base), rotate_rows=1_000_000, rotate_seconds=0.3)
    runner = SinkRunner(ParquetSink(config), SinkSettings(bootstrap, ["readings"], "g-time"))
    # Stopping would flush too, so the file must appear while the sink still runs.
    run_until(runner, lambda: len(_files(base)) == 1, "a file closed by the time bound")
    (only,) = _files(base)
    assert pq.read_table(only).num_rows == 10


def test_writes_to_s3_compatible_storage(bootstrap: str, s3: S3Endpoint) -> None:  # noqa: F811
    produce_json(bootstrap, "readings", (_reading(i) for i in range(1200)))
    base = f"s3://{s3.bucket}/lake/readings"
    config = ParquetSinkConfig(
        base, storage_options=s3.storage_options, rotate_rows=500, time_field="ts"
    )

    _drain(bootstrap, config, "g-s3", 1200)

    fs = s3fs.S3FileSystem(**s3.storage_options)
    paths = sorted(fs.glob(f"{s3.bucket}/lake/readings/dt=*/hour=*/*.parquet"))
    assert paths
    assert _check_layout(paths, lambda p: pq.read_table(p, filesystem=fs)) == 1200
    table = ds.dataset(
        f"{s3.bucket}/lake/readings", filesystem=fs, format="parquet", partitioning="hive"
    ).to_table()
    counted = duckdb.from_arrow(table).query("t", "SELECT count(DISTINCT id), count(*) FROM t")
    assert counted.fetchall() == [(1200, 1200)]


def test_unwritable_records_go_to_the_dead_letter_topic(bootstrap: str, tmp_path: Path) -> None:
    rows: list[Any] = [_reading(i) for i in range(50)]
    rows[10] = b"[1, 2"
    rows[20] = {"id": "twenty", "sensor": "s0", "ts": START_S, "temp": 1.0}
    rows[30] = {"id": 30, "sensor": "s0", "temp": 1.0}  # no event time
    produce_json(bootstrap, "readings", rows)
    base = tmp_path / "lake"

    runner = _drain(bootstrap, ParquetSinkConfig(str(base), time_field="ts"), "g-bad", 50)

    assert runner.stats.records_dead_lettered == 3
    found = duckdb.sql(
        f"SELECT count(*), list(_offset ORDER BY _offset) FROM read_parquet('{base}/**/*.parquet')"
    ).fetchall()[0]
    assert found[0] == 47
    assert {10, 20, 30}.isdisjoint(found[1])
    dead = {
        int(headers_of(m)["hw.dlq.offset"]): headers_of(m)
        for m in read_topic(bootstrap, "g-bad.dlq", 3)
    }
    assert sorted(dead) == [10, 20, 30]
    assert dead[10]["hw.dlq.error_type"] == "DecodeError"
    assert dead[20]["hw.dlq.error_type"] == "SchemaMismatch"
    assert dead[30]["hw.dlq.error_type"] == "EventTimeError"
    assert all(h["hw.dlq.stage"] == "sink:parquet" for h in dead.values())


@pytest.mark.slow
def test_kill_9_mid_run_then_restart_writes_each_record_once(
    bootstrap: str, tmp_path: Path
) -> None:
    total = 30_000
    create_topic(bootstrap, "readings", 2)
    produce_json(bootstrap, "readings", (_reading(i) for i in range(total)))
    base = tmp_path / "lake"
    args = [
        "parquet",
        str(base),
        "--topic",
        "readings",
        "--group",
        "g-crash",
        "--time-field",
        "ts",
        "--batch-size",
        "200",
        "--rotate-rows",
        "450",
        "--bootstrap",
        bootstrap,
    ]

    def rows_in_files() -> int:
        try:
            found = duckdb.sql(f"SELECT count(*) FROM read_parquet('{base}/**/*.parquet')")
            return int(found.fetchall()[0][0])
        except duckdb.Error:  # no files yet, or one removed between listing and reading
            return -1

    first = SinkProcess(*args)
    try:
        wait_for(lambda: first.written() >= 5000, "the first run to write some files")
    finally:
        first.kill()
    assert 0 < rows_in_files() < total

    second = SinkProcess(*args)
    try:
        wait_for(lambda: rows_in_files() >= total, "the restarted sink to catch up")
        assert second.interrupt() == 0, second.output()
    finally:
        second.close()
    found = duckdb.sql(
        f"SELECT count(*), count(DISTINCT id), count(DISTINCT (_partition, _offset)) "
        f"FROM read_parquet('{base}/**/*.parquet')"
    ).fetchall()
    assert found == [(total, total, total)]
    assert _check_layout([str(p) for p in _files(base)], pq.read_table) == total
