"""Record timestamps outside a topic's message.timestamp.before/after.max.ms, as Kafka checks.

Kafka 4 refuses a batch of a CreateTime topic when any record's timestamp is more than
``message.timestamp.after.max.ms`` (1 hour by default) ahead of the broker's clock, or more than
``message.timestamp.before.max.ms`` (unbounded by default) behind it, and lists every offending
record. The batch header's max timestamp rules out the future bound without decoding; records
are decoded only when it may be broken or when a past bound is set (the header holds no
minimum).
"""

from __future__ import annotations

from typing import Any

from headwater.protocol import BatchHeader, decode_batch

NO_TIMESTAMP = -1
UNBOUNDED_MS = 2**63 - 1


def timestamp_errors(
    payload: bytes | bytearray,
    headers: list[BatchHeader],
    *,
    before_max_ms: int,
    after_max_ms: int,
    now_ms: int,
) -> list[dict[str, Any]]:
    """Kafka's record errors (index within its batch, message) for out-of-range timestamps."""
    errors: list[dict[str, Any]] = []
    position = 0
    low = now_ms - before_max_ms if before_max_ms < UNBOUNDED_MS else None
    high = now_ms + after_max_ms
    for header in headers:
        if low is not None or header.max_timestamp > high:
            _, records = decode_batch(payload, position)
            for index, record in enumerate(records):
                stamp = record.timestamp_ms
                if stamp == NO_TIMESTAMP:
                    continue
                if stamp > high or (low is not None and stamp < low):
                    errors.append(
                        {
                            "batch_index": index,
                            "batch_index_error_message": (
                                f"Timestamp {stamp} of message with offset {index} is out of "
                                f"range. The timestamp should be within [{low}, {high}]"
                            ),
                        }
                    )
        position += header.size
    return errors
