"""Sink throughput and freshness, one run: SQL (PostgreSQL, SQLite), Parquet and live DuckDB.

    .venv/bin/python bench/sinks.py [--records 200000] [--markers 200] [--rate 5000]

Pre-produces JSON events of about 100 bytes into a broker process (the embedded broker, as
`headwater broker` runs it), then drains them through each sink with the connector runtime:
consume, decode, write, commit. A sink that discards records gives the runtime's own ceiling.
Rates count from the first write to the last commit, so the group join is not included.
Freshness: marker events produced one at a time while background events flow at --rate;
each is timed from produce to the moment a query on the live DuckDB table returns it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb
import orjson
import sqlalchemy as sa

from headwater.client import Admin, new_producer, produce_all
from headwater.connect import (
    DuckDBSink,
    DuckDBSinkConfig,
    ParquetSink,
    ParquetSinkConfig,
    PartitionStart,
    Rejected,
    Sink,
    SinkRecord,
    SinkRunner,
    SinkSettings,
    SqlMode,
    SqlSink,
    SqlSinkConfig,
)
from headwater.testing import BrokerProcess, postgres_server

TOPIC = "bench-events"
PARTITIONS = 4
BATCH = 5000


def event(i: int) -> bytes:
    return orjson.dumps(
        {
            "id": i,
            "user": f"u{i % 50_000:05d}",
            "page": f"/products/{i % 997}",
            "ms": i % 1000,
            "amount": round((i % 10_000) / 100, 2),
            "ts": 1_767_225_600_000 + i,
        }
    )


class Timed(Sink):
    """Wraps a sink to note when the first write began and the last flush ended."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name = inner.name
        self.first_write: float | None = None
        self.last_flush = 0.0

    def assigned(self, partitions: Sequence[PartitionStart]) -> Mapping[tuple[str, int], int]:
        return self.inner.assigned(partitions)

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        if self.first_write is None:
            self.first_write = time.perf_counter()
        return self.inner.write(batch)

    def flush_due(self, now_s: float) -> bool:
        return self.inner.flush_due(now_s)

    def flush(self) -> None:
        self.inner.flush()
        self.last_flush = time.perf_counter()

    def close(self) -> None:
        self.inner.close()


class Discard(Sink):
    name = "discard"

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        return []


def drain(bootstrap: str, sink: Sink, group: str, total: int) -> tuple[float, float]:
    """Run ``sink`` until ``total`` records are written and committed; (rows/s, seconds)."""
    timed = Timed(sink)
    settings = SinkSettings(bootstrap, [TOPIC], group, batch_size=BATCH, poll_timeout_s=0.1)
    runner = SinkRunner(timed, settings).start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and runner.error is None:
        progress = runner.stats.partitions.values()
        if runner.stats.records_written >= total and all(
            p.committed == p.written for p in progress
        ):
            break
        time.sleep(0.01)
    runner.stop()
    runner.join()
    assert timed.first_write is not None
    seconds = timed.last_flush - timed.first_write
    return total / seconds, seconds


def freshness(bootstrap: str, path: str, markers: int, rate: int) -> list[float]:
    """Produce-to-queryable delay of marker events on the live DuckDB table, in ms."""
    sink = DuckDBSink(DuckDBSinkConfig(path, "fresh"))
    settings = SinkSettings(
        bootstrap, ["fresh"], "bench-fresh", batch_size=BATCH, poll_timeout_s=0.05
    )
    producer = new_producer(bootstrap, "low-latency")
    producer.produce("fresh", orjson.dumps({"id": -1, "marker": 0, "pad": "x" * 60}))
    producer.flush(10)
    runner = SinkRunner(sink, settings).start()
    while not sink.query("SELECT 1 FROM information_schema.tables WHERE table_name='fresh'"):
        time.sleep(0.01)
    stop = threading.Event()

    def background() -> None:
        i = 0
        start = time.perf_counter()
        while not stop.is_set():
            producer.produce("fresh", orjson.dumps({"id": i, "marker": 0, "pad": "x" * 60}))
            producer.poll(0)
            i += 1
            ahead = i / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)

    loader = threading.Thread(target=background)
    loader.start()
    delays: list[float] = []
    cur = sink.cursor()
    try:
        for m in range(1, markers + 1):
            time.sleep(0.02)
            sent = time.perf_counter()
            producer.produce("fresh", orjson.dumps({"id": -1, "marker": m, "pad": ""}))
            producer.poll(0)
            while not cur.execute("SELECT 1 FROM fresh WHERE marker = ?", [m]).fetchall():
                time.sleep(0.001)
            delays.append((time.perf_counter() - sent) * 1000)
    finally:
        cur.close()
        stop.set()
        loader.join()
        producer.flush(10)
        runner.stop()
        runner.join()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--markers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=5000, help="background events/s")
    args = parser.parse_args()
    total = args.records
    work = Path(tempfile.mkdtemp(prefix="headwater-bench-sinks-"))
    results: list[tuple[str, float, float]] = []

    def run(name: str, make: Callable[[], Sink], group: str) -> None:
        rate, seconds = drain(broker.bootstrap, make(), group, total)
        results.append((name, rate, seconds))
        print(f"{name:<34} {rate:>10,.0f} rows/s  ({total:,} rows in {seconds:.2f} s)", flush=True)

    with BrokerProcess(work / "broker") as broker, postgres_server() as pg:
        Admin(broker.bootstrap).create_topic(TOPIC, PARTITIONS, {})
        started = time.perf_counter()
        produce_all(
            broker.bootstrap,
            TOPIC,
            ((None, event(i)) for i in range(total)),
            profile="high-throughput",
        )
        size = len(event(total // 2))
        print(
            f"produced {total:,} events of ~{size} bytes in {time.perf_counter() - started:.1f} s"
            f" into {PARTITIONS} partitions",
            flush=True,
        )

        run("runtime only (discarding sink)", Discard, "bench-discard")
        pg_url = pg.create_database("bench")
        run(
            "sql append  -> PostgreSQL (COPY)",
            lambda: SqlSink(SqlSinkConfig(pg_url, "events")),
            "bench-pg",
        )
        run(
            "sql upsert  -> PostgreSQL (COPY)",
            lambda: SqlSink(SqlSinkConfig(pg_url, "users", SqlMode.UPSERT, ["user"])),
            "bench-pg-upsert",
        )
        run(
            "sql append  -> SQLite",
            lambda: SqlSink(SqlSinkConfig(f"sqlite:///{work}/bench.db", "events")),
            "bench-sqlite",
        )
        run(
            "parquet     -> local files",
            lambda: ParquetSink(
                ParquetSinkConfig(str(work / "lake"), rotate_rows=50_000, time_field="ts")
            ),
            "bench-parquet",
        )
        run(
            "duckdb live -> table",
            lambda: DuckDBSink(DuckDBSinkConfig(str(work / "live.duckdb"), "events")),
            "bench-duckdb",
        )

        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
            users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
        engine.dispose()
        files = duckdb.sql(f"SELECT count(*) FROM read_parquet('{work}/lake/**/*.parquet')")
        print(
            f"check: postgres events={rows:,} users={users:,} "
            f"parquet rows={files.fetchall()[0][0]:,}"
        )

        delays = freshness(broker.bootstrap, str(work / "fresh.duckdb"), args.markers, args.rate)
        delays.sort()
        p50 = statistics.median(delays)
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"duckdb freshness at {args.rate:,} events/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"max {delays[-1]:.0f} ms over {len(delays)} markers"
        )
        pg_rate = next(rate for name, rate, _ in results if "append  -> PostgreSQL" in name)
        verdict = "meets" if pg_rate >= 50_000 else "misses"
        print(f"PostgreSQL append {pg_rate:,.0f} rows/s {verdict} the 50,000 rows/s target")


if __name__ == "__main__":
    main()
