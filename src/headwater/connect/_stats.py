"""Progress of a running sink: counts, commits and lag per partition, for people and probes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class PartitionProgress:
    """Where one partition stands: next offset written and committed, and the log end."""

    topic: str
    partition: int
    written: int | None = None
    committed: int | None = None
    high_watermark: int | None = None

    @property
    def lag(self) -> int | None:
        """Records in the log not yet committed by this sink (None until both ends are known)."""
        if self.high_watermark is None:
            return None
        done = self.committed if self.committed is not None else self.written
        if done is None:
            return None
        return max(0, self.high_watermark - done)


@dataclass(slots=True)
class SinkStats:
    """Counters since the sink started. Read from any thread; written only by the runner."""

    records_consumed: int = 0
    records_written: int = 0
    records_dead_lettered: int = 0
    batches: int = 0
    commits: int = 0
    retries: int = 0
    started_at: float = field(default_factory=time.time)
    last_commit_at: float | None = None
    last_error: str | None = None
    caught_up_at: float | None = None
    """Wall time of the last report that found every owned partition read to its end (what
    was read is in the sink; stopping commits it); None while the sink is behind."""
    partitions: dict[tuple[str, int], PartitionProgress] = field(default_factory=dict)

    @property
    def lag(self) -> int:
        """Total known lag over the owned partitions."""
        return sum(p.lag or 0 for p in list(self.partitions.values()))

    def rate(self) -> float:
        """Records written per second since start."""
        elapsed = max(time.time() - self.started_at, 1e-9)
        return self.records_written / elapsed

    def summary(self) -> str:
        """One line, key=value, for logs and non-interactive progress output."""
        committed = "never" if self.last_commit_at is None else f"{self.last_commit_at:.3f}"
        return (
            f"consumed={self.records_consumed} written={self.records_written} "
            f"dead_lettered={self.records_dead_lettered} batches={self.batches} "
            f"commits={self.commits} retries={self.retries} lag={self.lag} "
            f"rate={self.rate():.0f}/s last_commit={committed}"
        )
