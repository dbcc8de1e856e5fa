"""Lineage headers: where a record came from and what touched it, carried with the record.

Every stage adds its own headers, so a record in a sink can be traced back to its source
topic, partition and offset, its event time, and the transformations it went through.
"""

from __future__ import annotations

import time

SOURCE = "hw.source"
EVENT_TIME = "hw.event_time"
PROCESSED_AT = "hw.processed_at"
TRANSFORM = "hw.transform"

Headers = list[tuple[str, bytes]]


def lineage_headers(
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    event_time_ms: int,
    transform_id: str,
    processed_at_ms: int | None = None,
) -> Headers:
    """The lineage headers for one record leaving a stage."""
    now = processed_at_ms if processed_at_ms is not None else int(time.time() * 1000)
    return [
        (SOURCE, f"{source_topic}/{source_partition}/{source_offset}".encode()),
        (EVENT_TIME, str(event_time_ms).encode()),
        (PROCESSED_AT, str(now).encode()),
        (TRANSFORM, transform_id.encode()),
    ]


def add_lineage(headers: Headers | None, extra: Headers) -> Headers:
    """Replace earlier lineage headers with this stage's; keep everything else."""
    if not headers:
        return list(extra)
    names = {name for name, _ in extra}
    return [pair for pair in headers if pair[0] not in names] + extra


def read_lineage(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Lineage headers as text, for display and tests."""
    wanted = {SOURCE, EVENT_TIME, PROCESSED_AT, TRANSFORM}
    return {
        name: value.decode()
        for name, value in headers or []
        if name in wanted and value is not None
    }
