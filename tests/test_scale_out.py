"""The scale-out proof: the demo, unchanged but for ``--bootstrap``, on a 3-node Apache Kafka
cluster, while the node that leads the most partitions is killed with SIGKILL and restarted.

Nothing in the application is restarted by the test. Afterwards every order the cluster
acknowledged is in each sink exactly once, the exactly-once outputs hold no duplicates, and
the summary's counts agree as they do on the embedded broker (tests/test_demo.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from headwater.client import ClusterMetadata, ConfigValue, inspect_cluster
from headwater.testing import KafkaCluster

RATE = 300
# The demo must have been flowing this long before the kill.
WARM_S = 5.0
# The node stays down this long after the cluster has fenced it and moved its leaders.
DOWN_S = 5.0
# After the restart, the demo runs until DuckDB holds orders this fresh, then this much longer.
FRESH_MS = 3_000
AFTER_S = 5.0


@pytest.fixture
def healed(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session cluster with every node running and every replica in sync, before the test
    (an earlier test may have left a node down) and after it."""
    _heal(kafka_cluster)
    yield kafka_cluster
    _heal(kafka_cluster)


def _heal(cluster: KafkaCluster) -> None:
    for node_id in cluster.node_ids:
        if not cluster.is_running(node_id):
            cluster.restart(node_id)
    cluster.wait_until(_in_sync, timeout_s=90, what="every replica back in sync")


def _in_sync(metadata: ClusterMetadata) -> bool:
    return len(metadata.brokers) == 3 and all(
        s.leader >= 0 and len(s.isr) == len(s.replicas) for s in metadata.partitions.values()
    )


class _Output:
    """The demo's merged stdout and stderr, read by a thread so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self._proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the demo never printed {pattern!r}:\n{self.text()}")

    def join(self) -> None:
        self._thread.join(10)
        assert self._proc.stdout is not None
        self._proc.stdout.close()


def _read_committed(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every committed record of ``topic`` (aborted transactions are skipped)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "scale-out-check",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        pending = set(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(5000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err.str()
                    pending.discard(msg.partition())
                    continue
                records.append((msg.key(), msg.value()))
        assert not pending, f"{topic}: partitions {sorted(pending)} not read to their end"
        return records
    finally:
        consumer.close()


def _wait_fresh(url: str, timeout_s: float) -> float:
    """Wait until the newest order in the live DuckDB table is under FRESH_MS old, which
    takes the generator, the pipeline and the DuckDB sink all working; returns the wait."""
    started = time.monotonic()
    snapshot: dict[str, Any] = {}
    while time.monotonic() < started + timeout_s:
        snapshot = httpx.get(f"{url}/api/metrics", timeout=10).json()
        last = snapshot["freshness_ms"]["last"]
        if snapshot["totals"]["events_out"] > 0 and last is not None and last < FRESH_MS:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"no fresh orders in DuckDB within {timeout_s} s: {snapshot}")


@pytest.mark.slow
def test_demo_rides_out_a_leader_kill_on_three_kafka_nodes(
    healed: KafkaCluster, tmp_path: Path
) -> None:
    cluster = healed
    data = tmp_path / "demo"
    summary_path = tmp_path / "summary.json"
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headwater",
            "demo",
            "--bootstrap",
            cluster.bootstrap,
            "--rate",
            str(RATE),
            "--data-dir",
            str(data),
            "--dashboard-port",
            "0",
            "--registry-port",
            "0",
            "--seed",
            "11",
            "--summary-json",
            str(summary_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    output = _Output(proc)
    try:
        output.wait_for(r"no embedded broker; cluster at", timeout_s=120)
        url = output.wait_for(r"dashboard: (http://127\.0\.0\.1:\d+)", timeout_s=30).group(1)
        output.wait_for(r"press Ctrl-C to stop", timeout_s=30)
        _wait_fresh(url, timeout_s=90)
        time.sleep(WARM_S)

        counts = cluster.leader_counts()
        victim = max(counts, key=lambda node: counts[node])
        killed_at = time.monotonic()
        cluster.kill(victim)
        cluster.wait_until(
            lambda m: (
                victim not in m.brokers
                and all(s.leader not in (-1, victim) for s in m.partitions.values())
            ),
            what=f"node {victim}'s partitions led by the others",
        )
        failover_s = time.monotonic() - killed_at
        time.sleep(DOWN_S)
        cluster.restart(victim)
        down_s = time.monotonic() - killed_at
        # Recovered by themselves: nothing in the demo is restarted, yet fresh orders arrive.
        recovered_s = _wait_fresh(url, timeout_s=90)
        time.sleep(AFTER_S)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.join()
        # pytest shows these when the test fails
        print(output.text())
        print(f"demo exit status {proc.returncode}")
    text = output.text()
    print(
        f"killed node {victim} (led {counts[victim]} of {sum(counts.values())} partitions); "
        f"leaders moved in {failover_s:.1f} s; node back after {down_s:.1f} s; fresh orders "
        f"{recovered_s:.1f} s later; whole run {time.monotonic() - started:.0f} s"
    )
    assert proc.returncode == 0, text
    assert "Fatal Python error" not in text, text
    summary = json.loads(summary_path.read_text())
    _check_summary(summary, text)
    _check_stores(cluster.bootstrap, data, summary)
    _check_replication(cluster.bootstrap)


def _check_replication(bootstrap: str) -> None:
    """Every topic the demo created, the registry's, the pipeline's internal ones and the sinks'
    dead-letter topics included, has three replicas and min.insync.replicas=2 of its own."""
    topics = inspect_cluster(bootstrap).topics
    created = {
        "_schemas",
        "customers",
        "orders",
        "clicks",
        "temperatures",
        "orders.enriched",
        "revenue.per_minute",
        "clicks.per_minute",
        "alerts.temperature",
        "orders.late",
        "demo-pipeline-dead-letters",
        "demo-pipeline-revenue-per-minute-changelog",
        "demo-pipeline-by-country-repartition",
        "demo-sink-orders-sql.dlq",
        "demo-sink-orders-parquet.dlq",
        "demo-sink-orders-duckdb.dlq",
    } | {name for name in topics if name.startswith("demo-")}
    assert created <= set(topics), sorted(created - set(topics))
    for name in sorted(created):
        topic = topics[name]
        assert topic.replication_factor == 3, name
        assert topic.configs["min.insync.replicas"] == ConfigValue("2", "topic"), name


def _check_summary(summary: dict[str, Any], text: str) -> None:
    """The same agreement tests/test_demo.py asks of the embedded broker."""
    generated = summary["generated"]
    orders = generated["orders"]
    assert orders > 1000, summary
    assert generated["delivery_errors"] == 0, summary
    # The streams app and every sink recovered by themselves: none of them stopped.
    assert summary["pipeline"]["errors"] == [], text
    assert summary["sinks"]["errors"] == [], text
    assert summary["sql"]["orders"] == summary["sql"]["distinct_orders"] == orders
    assert summary["parquet"]["orders"] == orders
    assert summary["duckdb"]["orders"] == orders
    assert summary["sql"]["revenue"] == pytest.approx(generated["revenue"], abs=0.05)
    assert len(set(summary["registry"]["schema_ids"].values())) == 3


def _orders(bootstrap: str, topic: str, run: str) -> list[dict[str, Any]]:
    """This run's orders in ``topic`` as committed, malformed records left out."""
    found = []
    for _key, value in _read_committed(bootstrap, topic):
        try:
            order = json.loads(value or b"")
        except ValueError:
            continue  # the generator's deliberately malformed records
        if str(order["order_id"]).startswith(run):
            found.append(order)
    return found


def _check_stores(bootstrap: str, data: Path, summary: dict[str, Any]) -> None:
    """What the cluster acknowledged, against what each sink and output topic holds."""
    run = f"o-{summary['generated']['run_id']}-"
    acknowledged = {o["order_id"] for o in _orders(bootstrap, "orders", run) if not o["test"]}
    assert len(acknowledged) == summary["generated"]["orders"]

    enriched = _orders(bootstrap, "orders.enriched", run)
    counts = Counter(o["order_id"] for o in enriched)
    assert set(counts) == acknowledged
    doubled = [order for order, n in counts.items() if n > 1]
    assert doubled == [], f"{len(doubled)} orders written twice to orders.enriched"

    with closing(sqlite3.connect(data / "demo.sqlite")) as db:
        rows = db.execute("SELECT order_id FROM orders WHERE order_id LIKE ?", (run + "%",))
        assert sorted(r[0] for r in rows) == sorted(acknowledged)
        windows = {
            (country, start): value
            for country, start, value in db.execute(
                "SELECT country, window_start, value FROM revenue_per_minute"
            )
        }
    _check_windows(windows, enriched, _orders(bootstrap, "orders.late", run))
    parquet = duckdb.sql(
        f"SELECT order_id FROM read_parquet('{data}/parquet/**/*.parquet') "
        f"WHERE order_id LIKE '{run}%'"
    ).fetchall()
    assert sorted(r[0] for r in parquet) == sorted(acknowledged)
    with closing(duckdb.connect(str(data / "live.duckdb"), read_only=True)) as live:
        found = live.execute(
            "SELECT order_id FROM orders WHERE order_id LIKE ?", [run + "%"]
        ).fetchall()
    assert sorted(r[0] for r in found) == sorted(acknowledged)

    dead = _read_committed(bootstrap, "demo-pipeline-dead-letters")
    assert len(dead) == summary["generated"]["malformed"]


def _check_windows(
    windows: dict[tuple[str, int], float],
    enriched: list[dict[str, Any]],
    late: list[dict[str, Any]],
) -> None:
    """Each window's revenue in SQL is exactly its orders' amounts, less the orders that came
    after the window closed (kept in orders.late): the windowed state, restored from its
    changelog across the failover, counted every order once."""
    expected: dict[tuple[str, int], float] = {}
    for order, sign in [(o, 1) for o in enriched] + [(o, -1) for o in late]:
        key = (order["country"], order["ts"] // 60_000 * 60_000)
        expected[key] = expected.get(key, 0.0) + sign * order["amount"]
    assert len({o["order_id"] for o in late}) == len(late), "an order was late twice"
    print(f"{len(late)} orders came after their window closed")
    wrong = {
        key: (windows.get(key), round(value, 2))
        for key, value in expected.items()
        if windows.get(key, 0.0) != pytest.approx(value, abs=0.05)
    }
    assert wrong == {}, f"windows (found, expected): {wrong}"
