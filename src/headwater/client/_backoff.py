"""Exponential backoff with full jitter, for retrying transient failures."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``attempt`` (1-based): random in [0, min(cap, base * 2**(attempt-1))].

    Jitter spreads retries of many clients so they do not hammer a recovering server at once.
    """

    base_s: float = 0.1
    cap_s: float = 10.0
    max_attempts: int = 6

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap_s, self.base_s * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
