"""Log lines about bad input, at most a few per interval, so a flood cannot fill the disk."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    """Passes ``burst`` messages per ``interval_s`` to ``logger``, then counts the rest and
    reports how many were suppressed when the next interval lets a message through."""

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 20,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._interval_s = interval_s
        self._clock = clock
        self._window_start = float("-inf")
        self._sent = 0
        self.suppressed = 0

    def warning(self, msg: str, *args: Any, exc_info: bool = False) -> None:
        now = self._clock()
        if now - self._window_start >= self._interval_s:
            if self.suppressed:
                self._logger.warning(
                    "%d similar messages suppressed in the last %.0f s",
                    self.suppressed,
                    now - self._window_start,
                )
            self._window_start = now
            self._sent = 0
            self.suppressed = 0
        if self._sent >= self._burst:
            self.suppressed += 1
            return
        self._sent += 1
        self._logger.warning(msg, *args, exc_info=exc_info)
