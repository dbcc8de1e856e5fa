"""Per-partition log settings, validated once so the log never has to second-guess them."""

from __future__ import annotations

from dataclasses import dataclass

# Positions in the sparse index are u32, so a segment must stay well below 4 GiB.
SEGMENT_BYTES_MAX = (1 << 31) - 1
# "": neither delete nor compact, so the log is kept whole (Kafka 4 allows an empty policy).
POLICIES = frozenset({"", "delete", "compact", "compact,delete", "delete,compact"})


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Kafka's topic-level log settings (segment.bytes, retention.ms, ...) in one value."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * 24 * 3600 * 1000
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 24 * 3600 * 1000
    min_compaction_lag_ms: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.segment_bytes <= SEGMENT_BYTES_MAX:
            raise ValueError(f"segment_bytes must be in [1, {SEGMENT_BYTES_MAX}]")
        if self.segment_ms < 1:
            raise ValueError("segment_ms must be positive")
        if self.index_interval_bytes < 0:
            raise ValueError("index_interval_bytes must not be negative")
        if self.retention_ms < -1:
            raise ValueError("retention_ms must be -1 (forever) or >= 0")
        if self.retention_bytes < -1:
            raise ValueError("retention_bytes must be -1 (no limit) or >= 0")
        if self.cleanup_policy not in POLICIES:
            raise ValueError(f"cleanup_policy must be one of {sorted(POLICIES)}")
        if self.delete_retention_ms < 0:
            raise ValueError("delete_retention_ms must not be negative")
        if self.min_compaction_lag_ms < 0:
            raise ValueError("min_compaction_lag_ms must not be negative")

    @property
    def deletes(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def compacts(self) -> bool:
        return "compact" in self.cleanup_policy
