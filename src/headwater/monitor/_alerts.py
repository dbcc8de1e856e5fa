"""Lag alerts: a group whose lag stays above a threshold for longer than a grace period.

A momentary spike is normal (a batch lands, a consumer rebalances), so an alert needs the lag
to stay high for ``duration_ms``. This core takes readings and the time as arguments and never
reads the clock itself, so its rules are tested with a hand-moved clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LagAlert:
    """One episode of a group's lag staying above the threshold."""

    group: str
    lag: int
    threshold: int
    since_ms: int
    time_ms: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "lag": self.lag,
            "threshold": self.threshold,
            "since_ms": self.since_ms,
            "time_ms": self.time_ms,
            "message": self.message,
        }


class LagThreshold:
    """Owns, per group, when its lag went above the threshold and whether it has alerted."""

    def __init__(self, threshold: int, duration_ms: int, history_max: int = 100) -> None:
        if threshold < 0 or duration_ms < 0:
            raise ValueError("lag threshold and duration must not be negative")
        if history_max < 1:
            raise ValueError("lag alert history must keep at least one alert")
        self.threshold = threshold
        self.duration_ms = duration_ms
        self._above_since_ms: dict[str, int] = {}
        self._alerted: set[str] = set()
        # Bounded so a long run with a flapping group cannot grow memory without end.
        self._history: deque[LagAlert] = deque(maxlen=history_max)

    def observe(self, totals: dict[str, int], now_ms: int) -> list[LagAlert]:
        """Feed one reading of total lag per group; returns the alerts it raised."""
        raised: list[LagAlert] = []
        for group in list(self._above_since_ms):
            if totals.get(group, 0) <= self.threshold:
                # Back under the threshold (or gone): the episode ends, a new one may alert.
                del self._above_since_ms[group]
                self._alerted.discard(group)
        for group, lag in sorted(totals.items()):
            if lag <= self.threshold:
                continue
            since_ms = self._above_since_ms.setdefault(group, now_ms)
            if group in self._alerted or now_ms - since_ms < self.duration_ms:
                continue
            self._alerted.add(group)
            alert = LagAlert(
                group=group,
                lag=lag,
                threshold=self.threshold,
                since_ms=since_ms,
                time_ms=now_ms,
                message=(
                    f"consumer group {group!r} lag {lag} has been above {self.threshold} "
                    f"for {(now_ms - since_ms) / 1000:.1f} s"
                ),
            )
            self._history.appendleft(alert)
            raised.append(alert)
        return raised

    @property
    def active(self) -> list[str]:
        """Groups currently in an alerted episode."""
        return sorted(self._alerted)

    @property
    def history(self) -> list[LagAlert]:
        """Alerts raised so far, latest first, up to ``history_max``."""
        return list(self._history)
