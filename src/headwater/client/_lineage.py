"""Lineage headers: where a record came from and what touched it, carried with the record.

Two headers, kept small because they ride on every record:

* ``hw.source``: ``topic/partition/offset`` of the record this one was made from;
* ``hw.transform``: ``transformation-id@processing-time-ms`` of the stage that made it.

The event time is the record's own Kafka timestamp: every headwater stage produces with the
event time as the record timestamp (CreateTime), so it travels without a header.
"""

from __future__ import annotations

import time

SOURCE = "hw.source"
TRANSFORM = "hw.transform"

Headers = list[tuple[str, bytes]]


def lineage_headers(
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    transform_id: str,
    processed_at_ms: int | None = None,
) -> Headers:
    """The lineage headers for one record leaving a stage."""
    now = processed_at_ms if processed_at_ms is not None else int(time.time() * 1000)
    return [
        (SOURCE, f"{source_topic}/{source_partition}/{source_offset}".encode()),
        (TRANSFORM, f"{transform_id}@{now}".encode()),
    ]


def add_lineage(headers: Headers | None, extra: Headers) -> Headers:
    """Replace earlier lineage headers with this stage's; keep everything else."""
    if not headers:
        return list(extra)
    names = {name for name, _ in extra}
    return [pair for pair in headers if pair[0] not in names] + extra


def read_lineage(headers: list[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Lineage as text fields: source, source_topic/partition/offset, transform, processed_at."""
    found = {name: value.decode() for name, value in headers or [] if value is not None}
    out: dict[str, str] = {}
    if SOURCE in found:
        out["source"] = found[SOURCE]
        parts = found[SOURCE].rsplit("/", 2)
        if len(parts) == 3:
            out["source_topic"], out["source_partition"], out["source_offset"] = parts
    if TRANSFORM in found:
        transform, _, processed = found[TRANSFORM].rpartition("@")
        out["transform"] = transform
        out["processed_at"] = processed
    return out
