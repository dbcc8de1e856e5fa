"""Anomaly detector driven directly: spikes found, normal data quiet, statistics exact, state
restored onto a fresh instance."""

from __future__ import annotations

import math
import random
import statistics
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from headwater.streams._anomaly import AnomalyDetector, AnomalyMethod
from headwater.streams._core import MemoryStore, Record
from streams_context import Ctx


def make(ctx: Ctx | None = None, **options: Any) -> tuple[AnomalyDetector, Ctx]:
    options.setdefault("value_fn", lambda v: v["x"])
    options.setdefault("store_name", "stats")
    proc = AnomalyDetector(**options)
    ctx = ctx or Ctx()
    proc.open(ctx)
    return proc, ctx


def readings(seed: int, n: int, spikes: dict[int, float], keys: str = "ab") -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = 100.0 + rng.gauss(0, 1) + spikes.get(i, 0.0)
        out.append(Record(keys[i % len(keys)], {"x": x}, 1000 * i))
    return out


@pytest.mark.parametrize(
    "options",
    [
        {"method": "zscore", "window": 50, "threshold": 5.0, "min_observations": 20},
        {"method": "ewma", "alpha": 0.05, "threshold": 5.0, "min_observations": 20},
    ],
    ids=["zscore", "ewma"],
)
def test_injected_spikes_are_detected_and_normal_data_is_not(options: dict[str, Any]) -> None:
    seed = 7
    spikes = {200: 25.0, 431: -30.0, 700: 40.0}
    proc, _ = make(**options)
    records = readings(seed, 1000, spikes)
    out: list[Record] = []
    for i in range(0, len(records), 64):
        out += proc.process(records[i : i + 64])
    assert sorted(r.timestamp // 1000 for r in out) == sorted(spikes), f"seed={seed}"
    alert = out[0].value
    assert alert["method"] == options["method"]
    assert alert["key"] == out[0].key == "a"
    assert alert["timestamp"] == out[0].timestamp
    assert alert["score"] >= 5.0 and alert["value"] > alert["mean"] + 5 * alert["std"]


def test_quiet_until_min_observations() -> None:
    proc, _ = make(method="zscore", window=10, threshold=2.0, min_observations=5)
    values = [1.0, 1.1, 0.9, 50.0, 1.0, 1.05, 0.95, 60.0]
    out = proc.process([Record("k", {"x": v}, i) for i, v in enumerate(values)])
    assert [r.value["value"] for r in out] == [60.0]


def test_flat_history_then_change_scores_infinite() -> None:
    proc, _ = make(method="zscore", window=5, threshold=3.0, min_observations=3)
    out = proc.process([Record("k", {"x": v}, i) for i, v in enumerate([2, 2, 2, 2, 3])])
    assert len(out) == 1 and out[0].value["score"] == math.inf and out[0].value["std"] == 0.0


def test_keys_have_independent_statistics() -> None:
    proc, _ = make(method="zscore", window=20, threshold=4.0, min_observations=5)
    rng = random.Random(3)
    batch = [Record("small", {"x": rng.gauss(0, 1)}, i) for i in range(30)]
    batch += [Record("large", {"x": 1000 + rng.gauss(0, 1)}, i) for i in range(30)]
    assert proc.process(batch) == []


def test_none_and_nan_values_are_skipped() -> None:
    proc, ctx = make(value_fn=None, method="ewma", min_observations=1)
    assert proc.process([Record("k", None, 0), Record("k", math.nan, 1)]) == []
    assert len(ctx.stores["stats"]) == 0


def test_one_put_per_touched_key_per_batch() -> None:
    proc, ctx = make(method="zscore", window=10, min_observations=2)
    proc.process(readings(1, 500, {}, keys="abc"))
    assert len(ctx.stores["stats"].take_changes()) == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"method": "median"},
        {"method": "zscore", "window": 1},
        {"method": "ewma", "alpha": 0.0},
        {"threshold": 0},
        {"window": 5, "min_observations": 6},
    ],
)
def test_bad_configuration_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AnomalyDetector(**bad)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=120), st.integers(2, 15))
@example([370728.0, 0.00390625, 0.0, 0.0], 2)  # a huge value leaving the window
def test_zscore_statistics_match_the_window(values: list[float], window: int) -> None:
    proc, _ = make(value_fn=None, window=window, threshold=1e-12, min_observations=1)
    out = proc.process([Record("k", v, i) for i, v in enumerate(values)])
    by_time = {r.timestamp: r.value for r in out}
    for i in range(1, len(values)):
        history = values[max(0, i - window) : i]
        mean, std = statistics.fmean(history), statistics.pstdev(history)
        scale = max(1.0, *map(abs, history))
        if i in by_time:
            assert by_time[i]["mean"] == pytest.approx(mean, abs=1e-9 * scale)
            assert by_time[i]["std"] == pytest.approx(std, abs=1e-6 * scale)
        else:  # not alerted: the value equals the mean exactly, within rounding
            assert abs(values[i] - mean) <= 1e-6 * scale


def run(method: AnomalyMethod, records: list[Record], cuts: list[int]) -> list[Any]:
    stores: dict[str, MemoryStore] = {}
    out: list[Record] = []
    bounds = [0, *sorted(min(c, len(records)) for c in cuts), len(records)]
    for lo, hi in pairwise(bounds):
        proc, _ = make(Ctx(stores), method=method, window=8, threshold=1.5, min_observations=3)
        out += proc.process(records[lo:hi])
    return [(r.key, r.timestamp, r.value) for r in out]


@pytest.mark.parametrize("method", ["zscore", "ewma"])
@given(
    values=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 100)), max_size=80),
    cuts=st.lists(st.integers(0, 80), max_size=4),
)
def test_restore_at_any_split_matches_an_uninterrupted_run(
    method: AnomalyMethod, values: list[tuple[str, int]], cuts: list[int]
) -> None:
    records = [Record(k, {"x": v}, i) for i, (k, v) in enumerate(values)]
    assert run(method, records, cuts) == run(method, records, [])
