"""Pipeline benchmark: generator -> broker -> streams -> live DuckDB, sustained, with freshness.

    .venv/bin/python bench/pipeline.py [--rate 20000] [--seconds 20] [--pg-records 200000]

Runs the demo's pipeline for real, each part in its own process as it would be deployed: a
broker process, the event generator (orders, clicks, temperature readings at --rate events/s,
plus a marker order every 50 ms), the stream pipeline (exactly-once) and the live DuckDB sink
of enriched orders. The sink process polls its table for marker orders and times each from
its event time (set when it was produced) to the moment a query returns it: event-to-query
freshness. Then the SQL sink's append rate into PostgreSQL is measured (as bench/sinks.py
does). Targets: freshness p99 under 1 s at 20,000 events/s; SQL append >= 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def role_generator(bootstrap: str, rate: float, seconds: float, out: Path) -> None:
    from headwater.demo import EventGenerator

    generator = EventGenerator(bootstrap, rate=rate, seed=11, marker_interval_s=0.05)
    generator.seed_customers()
    started = time.monotonic()
    generator.start()
    time.sleep(seconds)
    generator.stop()
    elapsed = time.monotonic() - started
    stats = generator.stats
    out.write_text(
        json.dumps(
            {
                "events": stats.total,
                "seconds": elapsed,
                "markers": generator.markers,
                "orders": stats.orders,
            }
        )
    )


def role_pipeline(bootstrap: str, state: Path, out: Path) -> None:
    from headwater.demo import build_pipeline

    app = build_pipeline(bootstrap, state, "exactly-once")
    stats = app.run()
    out.write_text(json.dumps({"consumed": stats.consumed, "produced": stats.produced}))


def role_sink(bootstrap: str, path: Path, markers: int, out: Path) -> None:
    from headwater.connect import DuckDBSink, DuckDBSinkConfig, SinkRunner, SinkSettings

    sink = DuckDBSink(DuckDBSinkConfig(path=str(path), table="orders"))
    runner = SinkRunner(sink, SinkSettings(bootstrap, ["orders.enriched"], "bench-live")).start()
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < markers and time.monotonic() < deadline:
        try:
            rows = sink.query(
                "SELECT order_id, ts FROM orders WHERE order_id LIKE 'marker-%' AND ts > ? ",
                [max(seen.values(), default=0.0) - 10_000],
            )
        except Exception:
            rows = []
        now = time.time() * 1000
        for order_id, ts in rows:
            if order_id not in seen:
                seen[order_id] = now - float(ts)
        time.sleep(0.005)
    total = sink.query("SELECT count(*) FROM orders")[0][0]
    runner.stop()
    runner.join()
    out.write_text(json.dumps({"delays_ms": list(seen.values()), "rows": total}))


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(Path(__file__)), *args])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20_000, help="generated events/s")
    parser.add_argument("--seconds", type=float, default=20, help="how long to generate")
    parser.add_argument(
        "--pg-records",
        type=int,
        default=200_000,
        help="rows for the PostgreSQL append measurement (0 skips it)",
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "generator":
        bootstrap, rate, seconds, out = args.args
        role_generator(bootstrap, float(rate), float(seconds), Path(out))
        return
    if args.role == "pipeline":
        bootstrap, state, out = args.args
        role_pipeline(bootstrap, Path(state), Path(out))
        return
    if args.role == "sink":
        bootstrap, path, markers, out = args.args
        role_sink(bootstrap, Path(path), int(markers), Path(out))
        return

    from headwater.demo import create_demo_topics
    from headwater.testing import BrokerProcess

    work = Path(tempfile.mkdtemp(prefix="headwater-bench-pipeline-"))
    with BrokerProcess(work / "broker") as broker:
        bootstrap = broker.bootstrap
        create_demo_topics(bootstrap)
        markers = int(args.seconds / 0.05) - 2
        pipeline = spawn(
            "--role",
            "pipeline",
            "--args",
            bootstrap,
            str(work / "state"),
            str(work / "pipeline.json"),
        )
        sink = spawn(
            "--role",
            "sink",
            "--args",
            bootstrap,
            str(work / "live.duckdb"),
            str(markers),
            str(work / "sink.json"),
        )
        time.sleep(3)  # both have joined their groups before traffic starts
        print(f"generating {args.rate:,.0f} events/s for {args.seconds:g} s…", flush=True)
        generator = spawn(
            "--role",
            "generator",
            "--args",
            bootstrap,
            str(args.rate),
            str(args.seconds),
            str(work / "generator.json"),
        )
        generator.wait()
        drained_at = time.monotonic()
        sink.wait(600)
        drain_s = time.monotonic() - drained_at
        pipeline.terminate()
        pipeline.wait(60)
        gen = json.loads((work / "generator.json").read_text())
        fresh = json.loads((work / "sink.json").read_text())
        delays = sorted(fresh["delays_ms"])
        rate = gen["events"] / gen["seconds"]
        print(
            f"generated {gen['events']:,} events in {gen['seconds']:.1f} s = {rate:,.0f} events/s"
            f" ({gen['orders']:,} orders incl. {gen['markers']} markers)"
        )
        print(
            f"live DuckDB table holds {fresh['rows']:,} orders; last marker visible "
            f"{drain_s:.2f} s after the generator stopped"
        )
        if delays:
            p50 = statistics.median(delays)
            p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
            verdict = "meets" if p99 < 1000 else "misses"
            print(
                f"event-to-query freshness over {len(delays)} markers: p50 {p50:.0f} ms, "
                f"p99 {p99:.0f} ms, max {delays[-1]:.0f} ms ({verdict} the p99 < 1 s target)"
            )
    if args.pg_records:
        pg_append(args.pg_records, work)


def pg_append(total: int, work: Path) -> None:
    sys.path.insert(0, str(HERE))
    import sinks
    from headwater.client import Admin, produce_all
    from headwater.connect import SqlSink, SqlSinkConfig
    from headwater.testing import BrokerProcess, postgres_server

    with BrokerProcess(work / "broker-pg") as broker, postgres_server() as pg:
        Admin(broker.bootstrap).create_topic(sinks.TOPIC, sinks.PARTITIONS, {})
        produce_all(
            broker.bootstrap,
            sinks.TOPIC,
            ((None, sinks.event(i)) for i in range(total)),
            profile="high-throughput",
        )
        url = pg.create_database("bench")
        rate, seconds = sinks.drain(
            broker.bootstrap, SqlSink(SqlSinkConfig(url, "events")), "bench-pg", total
        )
        verdict = "meets" if rate >= 50_000 else "misses"
        print(
            f"SQL sink append into PostgreSQL: {rate:,.0f} rows/s ({total:,} rows in "
            f"{seconds:.2f} s; {verdict} the 50,000 rows/s target)"
        )


if __name__ == "__main__":
    main()
