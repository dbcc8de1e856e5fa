"""Streams apps under rebalances and kill -9: state moves with partitions, results exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from headwater.broker import BrokerThread
from headwater.streams import App
from streams_support import create_topics, produce_json, read_all, running, wait_until
from test_streams_runtime import KeyCounter

HERE = Path(__file__).resolve().parent


def counting_app(bootstrap: str, state_dir: Path) -> App:
    app = App(
        "scale-app",
        bootstrap,
        state_dir=state_dir,
        commit_interval_ms=100,
        consumer_overrides={"session.timeout.ms": 6000},
    )
    app.stream("scale-in").process(KeyCounter, stores=("counts",)).to_topic("scale-out")
    return app


def final_counts(values: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v["key"]] = max(out.get(v["key"], 0), v["count"])
    return out


def test_rebalance_moves_partitions_with_their_state(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"scale-in": 4, "scale-out": 4})
    keys = [f"k{i}" for i in range(8)]
    produce_json(bootstrap, "scale-in", [(k, {"i": n}) for n in range(10) for k in keys])
    first = counting_app(bootstrap, tmp_path / "a")
    with running(first) as stats_a:
        read_all(bootstrap, "scale-out", 80)
        second = counting_app(bootstrap, tmp_path / "b")
        with running(second) as stats_b:
            # Both members own partitions once the rebalance settles.
            wait_until(lambda: bool(stats_b() and stats_b().assigned))  # type: ignore[union-attr]
            wait_until(lambda: len(stats_a().assigned) < 4)  # type: ignore[union-attr]
            produce_json(
                bootstrap, "scale-in", [(k, {"i": n}) for n in range(10, 15) for k in keys]
            )
            out = read_all(bootstrap, "scale-out", 120)
    values = [json.loads(m.value()) for m in out]
    # State moved with each partition: counts continue from 10 up to 15, none restart at 1.
    assert final_counts(values) == dict.fromkeys(keys, 15)
    assert len(values) == 120


@pytest.mark.slow
def test_exactly_once_under_kill_9(broker: BrokerThread, tmp_path: Path) -> None:
    bootstrap = broker.bootstrap
    create_topics(bootstrap, {"crash-in": 2, "crash-out": 2})
    keys = [f"k{i}" for i in range(10)]
    total = 3000

    def feed() -> None:
        # Input keeps arriving while the app is killed, so crashes land mid-processing.
        for start in range(0, total, 250):
            batch = range(start, start + 250)
            produce_json(bootstrap, "crash-in", [(keys[i % 10], {"id": i}) for i in batch])
            time.sleep(0.5)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    crashes = 0
    for delay in (1.5, 2.0, 2.5):
        proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "streams_crash_app.py"),
                bootstrap,
                str(state),
                "exactly-once",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        crashes += 1
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "streams_crash_app.py"), bootstrap, str(state), "exactly-once"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    feeder.join(60)
    try:
        out = read_all(bootstrap, "crash-out", total, timeout_s=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    values = [json.loads(m.value()) for m in out]
    ids = sorted(v["id"] for v in values)
    print(f"survived {crashes} kill -9 crashes; checked {len(values)} records")
    assert ids == list(range(total)), "each input record appears exactly once in the output"
    per_key: dict[str, list[int]] = {}
    for v in values:
        per_key.setdefault(v["key"], []).append(v["count"])
    # State was restored exactly: every key counts 1..300 once, in order.
    assert all(counts == list(range(1, 301)) for counts in per_key.values())


@pytest.mark.slow
def test_window_state_survives_kill_9_exactly_once(broker: BrokerThread, tmp_path: Path) -> None:
    """A tumbling count restored from its changelog after each crash: final counts are exact."""
    bootstrap = broker.bootstrap
    create_topics(bootstrap, {"crash-in": 2, "crash-out": 2})
    keys = [f"k{i}" for i in range(6)]
    total = 2400

    def feed() -> None:
        for start in range(0, total, 200):
            batch = range(start, start + 200)
            # 10 ms of event time per record: 100 records per one-second window.
            produce_json(
                bootstrap, "crash-in", [(keys[i % 6], {"id": i, "ts": i * 10}) for i in batch]
            )
            time.sleep(0.4)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    command = [
        sys.executable,
        str(HERE / "streams_crash_app.py"),
        bootstrap,
        str(tmp_path / "state"),
        "exactly-once",
        "window",
    ]
    for delay in (1.2, 1.6):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    feeder.join(60)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    expected: dict[tuple[str, int], int] = {}
    for i in range(total):
        window = (keys[i % 6], (i * 10) // 1000 * 1000)
        expected[window] = expected.get(window, 0) + 1
    latest: dict[tuple[str, int], int] = {}
    try:
        deadline = time.monotonic() + 120
        while latest != expected and time.monotonic() < deadline:
            for m in read_all(bootstrap, "crash-out", 1, timeout_s=5):
                value = json.loads(m.value())
                key = (m.key().decode(), value["start"])
                latest[key] = max(latest.get(key, 0), value["value"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    # Exactly-once state: no window counted a record twice (or lost one) across two crashes.
    assert latest == expected
