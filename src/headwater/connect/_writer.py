"""Writing one batch through a sink: bounded retries for transient failures, and isolation of
the records at fault when the store refuses a batch.

Isolation halves a refused batch until the refusing records stand alone, so a single bad
record costs about 2·log2(batch) extra writes and the good records around it still land.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from headwater.client import Backoff
from headwater.connect._records import Rejected, SinkRecord
from headwater.connect._sink import BatchRejected, Sink, TransientError
from headwater.connect._stats import SinkStats

log = logging.getLogger(__name__)

T = TypeVar("T")


class SinkFailed(RuntimeError):
    """The sink could not write after every retry; the runner stops without committing."""


class Stopped(Exception):
    """A stop was requested while waiting to retry."""


class BatchWriter:
    """Owns the retry policy and the split-and-retry isolation for one sink."""

    def __init__(
        self, sink: Sink, backoff: Backoff, stop: threading.Event, stats: SinkStats
    ) -> None:
        self.sink = sink
        self.backoff = backoff
        self.stop = stop
        self.stats = stats

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        """Write ``batch``; return every record that must go to the dead-letter topic."""
        rejected: list[Rejected] = []
        self._write_part(batch, rejected)
        return rejected

    def retrying(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying ``TransientError`` with exponential backoff, bounded."""
        attempt = 0
        while True:
            try:
                return action()
            except TransientError as exc:
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                if self.backoff.exhausted(attempt):
                    raise SinkFailed(
                        f"sink {self.sink.name!r} could not {what} after {attempt} attempts: "
                        f"{exc}; check that the target is reachable, then restart the sink "
                        "(it resumes from the last committed offsets)"
                    ) from exc
                delay = self.backoff.delay(attempt)
                log.warning(
                    "transient sink error sink=%s action=%s attempt=%d retry_in_s=%.2f error=%s",
                    self.sink.name,
                    what,
                    attempt,
                    delay,
                    exc,
                )
                if self.stop.wait(delay):
                    raise Stopped from exc

    def _write_part(self, batch: Sequence[SinkRecord], rejected: list[Rejected]) -> None:
        try:
            refused = self.retrying("write a batch", lambda: self.sink.write(batch))
        except BatchRejected as exc:
            if len(batch) == 1:
                cause = exc.__cause__ if isinstance(exc.__cause__, BaseException) else exc
                rejected.append(Rejected(batch[0], cause))
                return
            mid = len(batch) // 2
            self._write_part(batch[:mid], rejected)
            self._write_part(batch[mid:], rejected)
            return
        rejected.extend(refused)
