"""Event time of a record: a field holding epoch seconds, epoch milliseconds or ISO 8601 text,
or the record's Kafka timestamp when no field is named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from headwater.connect._records import SinkRecord

# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 100_000_000_000


class EventTimeError(ValueError):
    """The record's event-time field is missing or not a time."""


def event_time_ms(record: SinkRecord, field: str | None) -> int:
    """Milliseconds since the epoch (UTC) that place ``record`` in time partitions."""
    if field is None:
        return record.timestamp_ms
    value: Any = record.value.get(field)
    if isinstance(value, bool) or value is None:
        raise EventTimeError(f"event-time field {field!r} is missing or not a time: {value!r}")
    if isinstance(value, int | float):
        return int(value if value >= _MS_THRESHOLD else value * 1000)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EventTimeError(
                f"event-time field {field!r} is not ISO 8601 or epoch time: {value!r}"
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise EventTimeError(f"event-time field {field!r} holds {type(value).__name__}, not a time")


def hour_partition(ms: int) -> str:
    """The ``dt=YYYY-MM-DD/hour=HH`` directory for an event time (UTC)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"dt={moment:%Y-%m-%d}/hour={moment:%H}"
