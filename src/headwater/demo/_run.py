"""The demo end to end: broker, generator, stream pipeline, sinks, dashboard, in one process.

``Demo.start()`` brings everything up; ``Demo.snapshot()`` is what the dashboard shows;
``Demo.stop()`` stops the generator, lets the pipeline and the sinks drain what is in flight,
stops them (committing), and leaves every file in the data directory for inspection.

With ``DemoSettings.bootstrap`` set, no embedded broker starts: the same generator, pipeline,
sinks and registry run against that cluster (Apache Kafka, say), and every topic they create
is replicated as the cluster allows (see ``headwater.client.Replication``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.broker import BrokerConfig, BrokerThread
from headwater.client import Admin, AdminError
from headwater.connect import DuckDBSink, SinkRunner
from headwater.console import ConsoleServer
from headwater.demo import _generator as gen
from headwater.demo._pipeline import (
    ALERTS,
    APP_ID,
    CLICK_COUNTS,
    ENRICHED,
    LATE_ORDERS,
    REVENUE,
    build_pipeline,
)
from headwater.demo._schemas import register_schemas
from headwater.demo._sinks import build_sinks
from headwater.monitor import LagMonitor
from headwater.registry import RegistryServer
from headwater.streams import App, Guarantee

log = logging.getLogger("headwater.demo")

PARTITIONS = 4
SAMPLE_S = 0.5
HISTORY = 240
#: Consumers learn a partition's end from fetch answers (at most 500 ms apart): a stage
#: counts as drained only by a check made this long after the writes it must have read.
DRAIN_MARGIN_S = 1.0


@dataclass(frozen=True, slots=True)
class DemoSettings:
    data_dir: Path = Path("headwater-demo")
    bootstrap: str | None = None
    """An existing cluster to use; None starts the embedded broker (on ``broker_port``)."""
    rate: float = 2000.0
    broker_port: int = 0
    dashboard_port: int = 8050
    dashboard: bool = True
    registry_port: int = 8081
    registry: bool = True
    guarantee: Guarantee = "exactly-once"
    seed: int | None = None
    anomaly_rate: float = 0.002
    malformed_rate: float = 0.002


def create_demo_topics(bootstrap: str) -> None:
    """The demo's input and output topics (internal topics are the pipeline's own), with
    min(3, brokers) replicas and ``min.insync.replicas=2`` at three."""
    admin = Admin(bootstrap)
    existing = admin.list_topics()
    wanted: dict[str, tuple[int, dict[str, str]]] = {
        gen.CUSTOMERS: (1, {"cleanup.policy": "compact"}),
        gen.ORDERS: (PARTITIONS, {}),
        gen.CLICKS: (PARTITIONS, {}),
        gen.TEMPERATURES: (PARTITIONS, {}),
        ENRICHED: (PARTITIONS, {}),
        REVENUE: (PARTITIONS, {"cleanup.policy": "compact"}),
        CLICK_COUNTS: (PARTITIONS, {"cleanup.policy": "compact"}),
        ALERTS: (1, {}),
        LATE_ORDERS: (PARTITIONS, {}),
    }
    for topic, (partitions, configs) in wanted.items():
        if topic not in existing:
            with contextlib.suppress(AdminError):
                admin.create_topic(topic, partitions, configs)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Demo:
    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.broker: BrokerThread | None = None
        self.generator: gen.EventGenerator | None = None
        self.app: App | None = None
        self.runners: list[SinkRunner] = []
        self.live: DuckDBSink | None = None
        self.console: ConsoleServer | None = None
        self.registry: RegistryServer | None = None
        self.schema_ids: dict[str, int] = {}
        self.lag: LagMonitor | None = None
        self.started_at = time.time()
        self._threads: list[threading.Thread] = []
        self._app_errors: list[BaseException] = []
        self._sink_errors: list[str] = []
        self._stop_sampling = threading.Event()
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=HISTORY)
        self._freshness: deque[tuple[float, float]] = deque(maxlen=HISTORY)

    # Start -------------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        if self.settings.bootstrap is not None:
            return self.settings.bootstrap
        assert self.broker is not None, "start() first"
        return self.broker.bootstrap

    @property
    def embedded(self) -> bool:
        """True when the demo runs its own broker rather than using an existing cluster."""
        return self.settings.bootstrap is None

    def start(self) -> Demo:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.embedded:
            config = BrokerConfig(
                port=self.settings.broker_port,
                data_dir=self.data_dir / "broker",
                group_initial_rebalance_delay_ms=0,
            )
            self.broker = BrokerThread(config)
            self.broker.start()
        self._create_topics()
        if self.settings.registry:
            self.registry = RegistryServer(self.bootstrap, port=self.settings.registry_port)
            self.registry.start()
            self.schema_ids = register_schemas(self.registry.url)
        self.generator = gen.EventGenerator(
            self.bootstrap,
            rate=self.settings.rate,
            seed=self.settings.seed,
            anomaly_rate=self.settings.anomaly_rate,
            malformed_rate=self.settings.malformed_rate,
        )
        self.generator.seed_customers()
        self.app = build_pipeline(self.bootstrap, self.data_dir / "state", self.settings.guarantee)
        self._spawn("demo-pipeline", self._run_app)
        self.runners, self.live = build_sinks(self.bootstrap, self.data_dir)
        for runner in self.runners:
            runner.start()
        self.generator.start()
        self._spawn("demo-sampler", self._sample_loop)
        groups = [APP_ID] + [runner.settings.group_id for runner in self.runners]
        self.lag = LagMonitor(self.bootstrap, groups, interval_s=2.0).start()
        if self.settings.dashboard:
            self._start_console()
        return self

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _run_app(self) -> None:
        assert self.app is not None
        try:
            self.app.run()
        except BaseException as exc:
            log.exception("the demo pipeline stopped")
            self._app_errors.append(exc)

    def _create_topics(self) -> None:
        create_demo_topics(self.bootstrap)

    def _start_console(self) -> None:
        self.console = ConsoleServer(self, port=self.settings.dashboard_port).start()

    @property
    def registry_url(self) -> str | None:
        return None if self.registry is None else self.registry.url

    @property
    def dashboard_url(self) -> str | None:
        return None if self.console is None else str(self.console.url)

    # Sampling ----------------------------------------------------------------------------------

    def _sample_loop(self) -> None:
        while not self._stop_sampling.wait(SAMPLE_S):
            now = time.time()
            generated = 0 if self.generator is None else self.generator.stats.total
            produced = 0
            if self.app is not None and self.app.stats is not None:
                produced = self.app.stats.produced
            self._samples.append((now, generated, produced))
            generating = self.generator is not None and self.generator.running
            freshness = self.freshness_ms() if generating else None
            if freshness is not None:
                self._freshness.append((now, freshness))

    def freshness_ms(self) -> float | None:
        """Event-to-query freshness now: how old the newest order visible in DuckDB is."""
        if self.live is None:
            return None
        try:
            rows = self.live.query("SELECT max(ts) FROM orders")
        except Exception:
            return None
        newest = rows[0][0] if rows else None
        return None if newest is None else max(0.0, time.time() * 1000 - float(newest))

    # Snapshot ----------------------------------------------------------------------------------

    def _rates(self) -> tuple[list[list[float]], list[list[float]]]:
        samples = list(self._samples)
        rate_in: list[list[float]] = []
        rate_out: list[list[float]] = []
        for (t0, g0, p0), (t1, g1, p1) in itertools.pairwise(samples):
            dt = max(t1 - t0, 1e-6)
            rate_in.append([t1 * 1000, (g1 - g0) / dt])
            rate_out.append([t1 * 1000, (p1 - p0) / dt])
        return rate_in, rate_out

    def _sql(self, query: str) -> list[tuple[Any, ...]]:
        return self._sql_params(query, ())

    def _sql_params(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        path = self.data_dir / "demo.sqlite"
        if not path.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                return list(db.execute(query, params).fetchall())
        except sqlite3.Error:
            return []  # the table appears with the sink's first batch

    def dead_letters(self) -> int:
        count = 0
        if self.app is not None and self.app.stats is not None:
            count += self.app.stats.dead_lettered
        return count + sum(r.stats.records_dead_lettered for r in self.runners)

    def snapshot(self) -> dict[str, Any]:
        """The dashboard's data (see headwater.console for the format)."""
        stats = self.generator.stats if self.generator is not None else gen.GeneratorStats()
        app_stats = self.app.stats if self.app is not None else None
        rate_in, rate_out = self._rates()
        revenue = self._sql(
            "SELECT window_start, SUM(value) FROM revenue_per_minute "
            "GROUP BY window_start ORDER BY window_start DESC LIMIT 30"
        )
        clicks = self._sql(
            "SELECT window_start, SUM(value) FROM clicks_per_minute "
            "GROUP BY window_start ORDER BY window_start DESC LIMIT 30"
        )
        alerts = self._sql(
            "SELECT key, value, score, timestamp FROM temperature_alerts "
            "ORDER BY timestamp DESC LIMIT 20"
        )
        freshness = [v for _, v in self._freshness]
        recent = freshness[-60:]
        return {
            "time_ms": int(time.time() * 1000),
            "uptime_s": time.time() - self.started_at,
            "rates": {
                "events_in_per_s": rate_in[-1][1] if rate_in else 0.0,
                "events_out_per_s": rate_out[-1][1] if rate_out else 0.0,
            },
            "totals": {
                "events_in": stats.total,
                "events_out": 0 if app_stats is None else app_stats.produced,
                "dead_letters": self.dead_letters(),
                "alerts": len(self._sql("SELECT 1 FROM temperature_alerts")),
                "orders": stats.orders,
                "revenue": round(stats.revenue, 2),
            },
            "series": {
                "events_in_per_s": rate_in,
                "events_out_per_s": rate_out,
                "revenue_per_minute": [[int(s), float(v)] for s, v in reversed(revenue)],
                "clicks_per_minute": [[int(s), int(v)] for s, v in reversed(clicks)],
                "freshness_ms": [[t * 1000, v] for t, v in self._freshness],
            },
            "alerts": [
                {"key": str(k), "value": float(v), "score": float(s), "timestamp": int(t)}
                for k, v, s, t in alerts
            ],
            "lag": {} if self.lag is None else self.lag.snapshot(),
            "freshness_ms": {
                "last": freshness[-1] if freshness else None,
                "p50": _percentile(recent, 0.5),
                "p99": _percentile(recent, 0.99),
            },
        }

    # Stop ----------------------------------------------------------------------------------------

    def _wait_drained(self, stats: Callable[[], list[Any]], deadline: float) -> bool:
        """Wait until every one of ``stats`` (AppStats or SinkStats) reports having read all it
        owns to the end, in a check made after the fetch answers have caught up with writes
        that finished before this call; False if ``deadline`` came first.

        Counting on progress to go quiet instead would stop a stage that is only waiting out a
        broker failover (a new leader, a group coordinator moving), and leave its records
        unprocessed in the log.
        """
        since = time.time() + DRAIN_MARGIN_S
        while time.monotonic() < deadline and not self._app_errors:
            if all(s is not None and (s.caught_up_at or 0) >= since for s in stats()):
                return True
            time.sleep(0.2)
        return False

    def stop(self, drain_timeout_s: float = 60.0) -> None:
        """Stop producing, let everything in flight reach the sinks, then stop in order."""
        if self.generator is not None:
            self.generator.stop()
        deadline = time.monotonic() + drain_timeout_s
        app = self.app
        if app is not None:
            drained = self._wait_drained(lambda: [app.stats], deadline)
            if not drained:
                log.warning("the pipeline did not catch up within %.0f s", drain_timeout_s)
            app.stop()
        for thread in self._threads:
            if thread.name == "demo-pipeline":
                thread.join(60)
        # The pipeline's last commit may still be on its way to the sinks.
        running = [r for r in self.runners if r.error is None]
        if not self._wait_drained(lambda: [r.stats for r in running if r.error is None], deadline):
            log.warning("the sinks did not catch up within %.0f s", drain_timeout_s)
        for runner in self.runners:
            runner.stop()
        for runner in self.runners:
            try:
                runner.join(60)
            except BaseException as exc:
                # Reported in the summary; the rest must still stop.
                self._sink_errors.append(f"{runner.settings.group_id}: {exc!r}")
        self._stop_sampling.set()
        if self.lag is not None:
            self.lag.stop()
        if self.console is not None:
            self.console.stop()
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.close()
        if self.registry is not None:
            self.registry.stop()
        if self.broker is not None:
            self.broker.stop()

    def errors(self) -> list[str]:
        return [repr(e) for e in self._app_errors]

    def summary(self) -> dict[str, Any]:
        """Counts from every stage, read from the stores themselves after stop()."""
        stats = self.generator.stats if self.generator is not None else gen.GeneratorStats()
        prefix = f"o-{self.generator.run_id}-%" if self.generator is not None else "%"
        parquet_rows = _parquet_rows(self.data_dir / "parquet", prefix)
        duck = _duckdb_rows(self.data_dir / "live.duckdb", prefix)
        sql_orders = self._sql_params(
            "SELECT COUNT(*), COUNT(DISTINCT order_id), SUM(amount) FROM orders "
            "WHERE order_id LIKE ?",
            (prefix,),
        )
        return {
            "generated": {
                "run_id": None if self.generator is None else self.generator.run_id,
                "orders": stats.orders,
                "test_orders": stats.test_orders,
                "clicks": stats.clicks,
                "readings": stats.readings,
                "spikes": stats.spikes,
                "malformed": stats.malformed,
                "revenue": round(stats.revenue, 2),
                "delivery_errors": stats.delivery_errors,
            },
            "pipeline": {
                "consumed": 0
                if self.app is None or self.app.stats is None
                else self.app.stats.consumed,
                "produced": 0
                if self.app is None or self.app.stats is None
                else self.app.stats.produced,
                "dead_letters": self.dead_letters(),
                "errors": self.errors(),
            },
            "sql": {
                "orders": sql_orders[0][0] if sql_orders else 0,
                "distinct_orders": sql_orders[0][1] if sql_orders else 0,
                "revenue": round(float(sql_orders[0][2] or 0), 2) if sql_orders else 0.0,
                "alerts": len(self._sql("SELECT 1 FROM temperature_alerts")),
                "revenue_windows": len(self._sql("SELECT 1 FROM revenue_per_minute")),
            },
            "sinks": {"errors": list(self._sink_errors)},
            "parquet": {"orders": parquet_rows},
            "registry": {"url": self.registry_url, "schema_ids": self.schema_ids},
            "duckdb": {"orders": duck},
            "freshness_ms": self.snapshot()["freshness_ms"],
        }


def _parquet_rows(root: Path, prefix: str) -> int:
    if not root.exists():
        return 0
    import duckdb

    files = [str(p) for p in root.rglob("*.parquet")]
    if not files:
        return 0
    with contextlib.closing(duckdb.connect()) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM read_parquet(?) WHERE order_id LIKE ?", [files, prefix]
        ).fetchone()
    return 0 if row is None else int(row[0])


def _duckdb_rows(path: Path, prefix: str) -> int:
    if not path.exists():
        return 0
    import duckdb

    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as db:
        try:
            row = db.execute(
                "SELECT COUNT(*) FROM orders WHERE order_id LIKE ?", [prefix]
            ).fetchone()
        except duckdb.Error:
            return 0
    return 0 if row is None else int(row[0])
