"""Per-key anomaly detection on a numeric field: rolling z-score or EWMA, emitting alerts only.

For each record the value ``v = value_fn(record.value)`` is scored against the key's
statistics *before* ``v`` is added, so a spike cannot dilute its own score:

* ``method="zscore"``: mean and population standard deviation of the key's last ``window``
  values (a sliding Welford update, recomputed exactly from the window every ``window``
  replacements, and whenever a large value leaving the window would cancel the digits of the
  variance, so rounding cannot drift);
* ``method="ewma"``: exponentially weighted mean and variance with weight ``alpha`` for the
  newest value.

``score = (v - mean) / std``. When ``std`` is 0 the score is 0 for ``v == mean`` and infinite
otherwise (a change after a perfectly flat history is an anomaly). If the key has at least
``min_observations`` earlier values and ``|score| >= threshold`` the processor emits the record
with its value replaced by an alert::

    {"key": k, "value": v, "mean": m, "std": s, "score": z, "method": "zscore", "timestamp": t}

Nothing else is emitted. Records whose ``value_fn`` gives ``None`` or NaN are skipped without
touching the statistics. Statistics live in the store, one entry per key written once per batch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from headwater.streams._core import Processor, Record, StateStore, TaskContext

AnomalyMethod = Literal["zscore", "ewma"]

#: m2 below this fraction of its largest recent update has lost most of its digits.
_CANCELLATION = 1e-6


class AnomalyDetector(Processor):
    """Scores each record against its key's recent values and emits only the outliers."""

    def __init__(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        method: AnomalyMethod = "zscore",
        window: int = 100,
        alpha: float = 0.1,
        threshold: float = 3.0,
        min_observations: int = 10,
        store_name: str = "anomaly",
    ) -> None:
        if method not in ("zscore", "ewma"):
            raise ValueError(f"method must be 'zscore' or 'ewma', got {method!r}")
        if method == "zscore" and window < 2:
            raise ValueError("window must hold at least 2 observations")
        if method == "ewma" and not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if threshold <= 0 or min_observations < 1:
            raise ValueError("threshold must be > 0 and min_observations >= 1")
        if method == "zscore" and min_observations > window:
            raise ValueError("min_observations cannot exceed the window")
        self.value_fn = value_fn
        self.method = method
        self.window = window
        self.alpha = alpha
        self.threshold = threshold
        self.min_observations = min_observations
        self.stores = (store_name,)
        self._store: StateStore | None = None
        # zscore: key -> [deque of values, mean, m2, replacements since exact recompute,
        #                 largest m2 update since then]
        # ewma: key -> [mean, variance, count]
        self._stats: dict[Any, list[Any]] = {}

    def open(self, ctx: TaskContext) -> None:
        self._store = ctx.store(self.stores[0])
        self._stats = {}
        for skey, value in self._store.items():
            assert isinstance(skey, tuple)
            if self.method == "zscore":
                values, *rest = value
                self._stats[skey[0]] = [deque(values, maxlen=self.window), *rest]
            else:
                self._stats[skey[0]] = list(value)

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        assert self._store is not None, "process() before open()"
        observe = self._observe_zscore if self.method == "zscore" else self._observe_ewma
        value_fn = self.value_fn
        touched: dict[Any, list[Any]] = {}
        out: list[Record] = []
        for rec in records:
            v = rec.value if value_fn is None else value_fn(rec.value)
            if v is None or v != v:  # None or NaN
                continue
            key = rec.key
            stats = self._stats.get(key)
            if stats is None:
                stats = self._stats[key] = self._empty()
            n, mean, std = observe(stats, v)
            touched[key] = stats
            if n < self.min_observations:
                continue
            if std > 0:
                score = (v - mean) / std
            else:
                score = 0.0 if v == mean else math.copysign(math.inf, v - mean)
            if abs(score) >= self.threshold:
                alert = {
                    "key": key,
                    "value": v,
                    "mean": mean,
                    "std": std,
                    "score": score,
                    "method": self.method,
                    "timestamp": rec.timestamp,
                }
                out.append(rec.replace(value=alert))
        for key, stats in touched.items():
            self._store.put((key,), self._persistable(stats))
        return out

    def _empty(self) -> list[Any]:
        if self.method == "zscore":
            return [deque(maxlen=self.window), 0.0, 0.0, 0, 0.0]
        return [0.0, 0.0, 0]

    def _persistable(self, stats: list[Any]) -> list[Any]:
        if self.method == "zscore":
            return [list(stats[0]), *stats[1:]]
        return list(stats)

    def _observe_zscore(self, stats: list[Any], v: float) -> tuple[int, float, float]:
        """Return (count, mean, std) before ``v``, then slide ``v`` into the window."""
        values, mean, m2, since, peak = stats
        n = len(values)
        std = math.sqrt(m2 / n) if n else 0.0
        if n < self.window:
            delta = v - mean
            new_mean = mean + delta / (n + 1)
            term = delta * (v - new_mean)
        else:
            oldest = values[0]
            new_mean = mean + (v - oldest) / n
            term = (v - oldest) * (v - new_mean + oldest - mean)
            since += 1
        m2 += term
        peak = max(peak, abs(term))
        values.append(v)
        # Removing a value much larger than the spread cancels catastrophically: recompute
        # exactly when m2 became tiny next to the terms that built it, and periodically.
        if since >= self.window or m2 < _CANCELLATION * peak:
            new_mean = sum(values) / len(values)
            m2 = sum((x - new_mean) ** 2 for x in values)
            since, peak = 0, m2
        stats[1], stats[2], stats[3], stats[4] = new_mean, max(m2, 0.0), since, peak
        return n, mean, std

    def _observe_ewma(self, stats: list[Any], v: float) -> tuple[int, float, float]:
        """Return (count, mean, std) before ``v``, then fold ``v`` into the averages."""
        mean, var, n = stats
        std = math.sqrt(var)
        if n == 0:
            stats[0], stats[1], stats[2] = float(v), 0.0, 1
            return 0, 0.0, 0.0
        delta = v - mean
        step = self.alpha * delta
        stats[0], stats[1], stats[2] = mean + step, (1 - self.alpha) * (var + delta * step), n + 1
        return n, mean, std

    def __repr__(self) -> str:
        return f"AnomalyDetector(method={self.method!r}, threshold={self.threshold})"
