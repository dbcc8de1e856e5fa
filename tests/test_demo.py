"""`headwater demo` end to end: every store agrees with what was generated, and the dashboard
shows live charts in headless Chromium."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.dataset as ds
import pytest

from headwater.testing import render


def _wait_for_dashboard(proc: subprocess.Popen[str], lines: list[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise AssertionError("the demo never printed its dashboard address:\n" + "".join(lines))


def _metrics(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/metrics", timeout=10)
    response.raise_for_status()
    return dict(response.json())


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    summary_path = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headwater",
            "demo",
            "--duration",
            "14",
            "--rate",
            "800",
            "--data-dir",
            str(data),
            "--dashboard-port",
            "0",
            "--registry-port",
            "0",
            "--seed",
            "5",
            "--anomaly-rate",
            "0.01",
            "--summary-json",
            str(summary_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        url = _wait_for_dashboard(proc, lines)
        deadline = time.monotonic() + 60
        snapshot = _metrics(url)
        while time.monotonic() < deadline and not (
            snapshot["series"]["revenue_per_minute"]
            and snapshot["series"]["events_in_per_s"]
            and snapshot["freshness_ms"]["p50"] is not None
        ):
            time.sleep(0.5)
            snapshot = _metrics(url)
        assert snapshot["totals"]["events_in"] > 0
        assert snapshot["totals"]["orders"] > 0
        assert snapshot["rates"]["events_in_per_s"] > 0
        assert snapshot["freshness_ms"]["p50"] < 5_000
        assert "demo-pipeline" in snapshot["lag"]
        registry = re.search(r"schema registry: (http://127\.0\.0\.1:\d+)", "".join(lines))
        assert registry is not None
        subjects = httpx.get(f"{registry.group(1)}/subjects", timeout=10).json()
        assert sorted(subjects) == ["clicks-value", "orders-value", "temperatures-value"]
        screenshot = tmp_path / "dashboard.png"
        dom = render(url, screenshot=screenshot, wait_ms=3000)
        updates = re.search(r'data-updates="(\d+)"', dom)
        assert updates is not None and int(updates.group(1)) >= 1
        points = [int(n) for n in re.findall(r'data-points="(\d+)"', dom)]
        assert len(points) >= 3 and all(n > 0 for n in points), points
        assert screenshot.stat().st_size > 20_000
    finally:
        assert proc.stdout is not None
        rest, _ = proc.communicate(timeout=180)
        lines.append(rest)
    output = "".join(lines)
    assert proc.returncode == 0, output
    assert "what each stage holds" in output

    summary = json.loads(summary_path.read_text())
    generated = summary["generated"]
    orders = generated["orders"]
    assert orders > 100
    # Every non-test order is in each store exactly once.
    assert summary["sql"]["orders"] == summary["sql"]["distinct_orders"] == orders
    assert summary["parquet"]["orders"] == orders
    assert summary["duckdb"]["orders"] == orders
    assert summary["sql"]["revenue"] == pytest.approx(generated["revenue"], abs=0.05)
    # Every malformed record is a dead letter; spikes are flagged without false alarms.
    assert summary["pipeline"]["dead_letters"] == generated["malformed"]
    assert 0 < summary["sql"]["alerts"] <= generated["spikes"]
    assert summary["pipeline"]["errors"] == []
    assert len(set(summary["registry"]["schema_ids"].values())) == 3

    # The stores themselves, read directly.
    with closing(sqlite3.connect(data / "demo.sqlite")) as db:
        assert db.execute("SELECT COUNT(*) FROM orders WHERE test").fetchone()[0] == 0
        revenue_rows = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT country || window_start) FROM revenue_per_minute"
        ).fetchone()
        assert revenue_rows[0] == revenue_rows[1] > 0  # upserts: one row per key and window
        windows = db.execute("SELECT SUM(value) FROM revenue_per_minute").fetchone()[0]
        assert windows == pytest.approx(generated["revenue"], abs=0.05)
    table = ds.dataset(data / "parquet", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == orders
    assert set(table.column_names) >= {"order_id", "amount", "country", "dt", "hour"}
    with closing(duckdb.connect(str(data / "live.duckdb"), read_only=True)) as live:
        assert live.execute("SELECT COUNT(DISTINCT order_id) FROM orders").fetchone()[0] == orders
