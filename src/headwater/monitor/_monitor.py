"""LagMonitor: consumer lag sampled in a background thread, latest reading and alerts kept.

The dashboard asks for lag every second; querying the cluster on each request would tie page
refreshes to broker round trips, so one thread samples at its own pace and readers take the
last result under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from headwater.monitor._alerts import LagAlert, LagThreshold
from headwater.monitor._lag import GroupLag, LagError, LagReader, lag_snapshot

_log = logging.getLogger(__name__)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class LagMonitor:
    """Samples ``consumer_lag`` every ``interval_s`` and raises threshold alerts.

    ``groups`` None follows every non-internal group, including ones created later. An alert
    is raised when a group's total lag stays above ``threshold`` for ``duration_s``; ``clock_ms``
    is injectable so tests move time by hand. ``sample()`` takes one reading now, which the
    thread started by ``start()`` calls on its own.
    """

    def __init__(
        self,
        bootstrap: str,
        groups: list[str] | None = None,
        *,
        interval_s: float = 1.0,
        threshold: int = 1000,
        duration_s: float = 10.0,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("lag sampling interval must be positive")
        self.bootstrap = bootstrap
        self.groups = None if groups is None else list(groups)
        self.interval_s = interval_s
        self._clock_ms = clock_ms
        self._threshold = LagThreshold(threshold, round(duration_s * 1000))
        self._lock = threading.Lock()
        # One sample at a time: the reader's clients are shared between the thread and callers.
        self._sample_lock = threading.Lock()
        self._latest: dict[str, GroupLag] = {}
        self._latest_ms: int | None = None
        self._error: str | None = None
        self._reader: LagReader | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, GroupLag]:
        """Read lag now, update the latest reading and the alerts; returns the reading."""
        with self._sample_lock:
            if self._reader is None:
                self._reader = LagReader(self.bootstrap)
            try:
                lags = self._reader.read(self.groups)
            except LagError as exc:
                with self._lock:
                    self._error = str(exc)
                # After a broker failure librdkafka can keep answering from a stale view of
                # the partition ("Local: Unknown partition"); fresh clients ask the cluster.
                self._reader.close()
                self._reader = None
                raise
        now_ms = self._clock_ms()
        with self._lock:
            self._latest = lags
            self._latest_ms = now_ms
            self._error = None
            self._threshold.observe({g: lag.total for g, lag in lags.items()}, now_ms)
        return lags

    @property
    def latest(self) -> dict[str, GroupLag]:
        """The last successful reading (empty before the first)."""
        with self._lock:
            return dict(self._latest)

    @property
    def latest_ms(self) -> int | None:
        with self._lock:
            return self._latest_ms

    @property
    def error(self) -> str | None:
        """Why the last sample failed, or None when it succeeded."""
        with self._lock:
            return self._error

    @property
    def alerts(self) -> list[LagAlert]:
        """Alerts raised so far, latest first."""
        with self._lock:
            return self._threshold.history

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The latest reading in the console's ``lag`` shape."""
        return lag_snapshot(self.latest)

    def start(self) -> LagMonitor:
        if self._thread is not None:
            raise RuntimeError("lag monitor already started; create a new one to restart")
        self._thread = threading.Thread(target=self._run, name="headwater-lag", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except LagError as exc:
                _log.warning("lag sample failed bootstrap=%s reason=%s", self.bootstrap, exc)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        """Stop sampling and release the clients; waits for a sample in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._sample_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> LagMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
