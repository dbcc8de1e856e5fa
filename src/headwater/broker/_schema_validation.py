"""Broker-side schema validation: record values must carry an id registered for their topic.

Opt-in per topic (``headwater.schema.validation=true``). The broker never calls the registry:
it reads the registry's ``_schemas`` partition straight from its own storage and keeps, per
subject, the ids of live (not deleted) versions. The index catches up lazily, only when a
validated topic is produced to, so topics without validation pay nothing.
"""

from __future__ import annotations

import json
import logging
import weakref
from typing import Any

from headwater.protocol import BatchHeader, CorruptBatchError, decode_batch
from headwater.storage import OffsetOutOfRangeError, PartitionLog

log = logging.getLogger(__name__)

CONFIG = "headwater.schema.validation"
SCHEMAS_TOPIC = "_schemas"
_READ_BYTES = 1024 * 1024
_MAGIC = 0


class SchemaIndex:
    """Subject → registered schema ids, followed from the ``_schemas`` log."""

    def __init__(self) -> None:
        self._log: PartitionLog | None = None
        self._reset()

    def _reset(self) -> None:
        self._next_offset = 0
        self._versions: dict[tuple[str, int], int] = {}
        self._ids: dict[str, frozenset[int]] = {}

    def catch_up(self, schemas_log: PartitionLog | None) -> None:
        """Apply every ``_schemas`` record appended since the last call."""
        if schemas_log is not self._log:  # topic created, deleted or recreated
            self._reset()
            self._log = schemas_log
        if schemas_log is None:
            return
        while self._next_offset < schemas_log.log_end_offset:
            try:
                data = schemas_log.read(self._next_offset, _READ_BYTES)
            except OffsetOutOfRangeError:
                self._next_offset = schemas_log.log_start_offset
                continue
            if not data:
                break
            self._apply_batches(data)

    def _apply_batches(self, data: bytes) -> None:
        pos, start = 0, self._next_offset
        changed: set[str] = set()
        while pos < len(data):
            header, records = decode_batch(data, pos)
            pos += header.size
            self._next_offset = max(self._next_offset, header.last_offset + 1)
            if header.is_control:
                continue
            for record in records:
                if record.offset >= start:  # a read starts at the batch holding ``start``
                    subject = self._apply(record.key, record.value)
                    if subject is not None:
                        changed.add(subject)
        for subject in changed:
            self._ids[subject] = frozenset(
                i for (s, _v), i in self._versions.items() if s == subject
            )

    def _apply(self, key: bytes | None, value: bytes | None) -> str | None:
        try:
            k: Any = json.loads(key or b"")
            if k.get("keytype") != "SCHEMA":
                return None
            subject, version = str(k["subject"]), int(k["version"])
            v: Any = json.loads(value) if value is not None else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if v is None or v.get("deleted"):
            self._versions.pop((subject, version), None)
        else:
            self._versions[(subject, version)] = int(v["id"])
        return subject

    def ids(self, subject: str) -> frozenset[int]:
        return self._ids.get(subject, frozenset())


_INDEXES: weakref.WeakKeyDictionary[Any, SchemaIndex] = weakref.WeakKeyDictionary()


def refusal(
    topics: Any, topic: str, payload: bytearray, headers: list[BatchHeader]
) -> tuple[str, list[dict[str, Any]]] | None:
    """Why this produce to a validated ``topic`` is refused, with per-record errors; or None."""
    index = _INDEXES.get(topics)
    if index is None:
        index = _INDEXES[topics] = SchemaIndex()
    schemas = topics.partition(SCHEMAS_TOPIC, 0)
    index.catch_up(None if schemas is None else schemas.log)
    subject = f"{topic}-value"
    allowed = index.ids(subject)
    errors: list[dict[str, Any]] = []
    pos = 0
    for header in headers:
        try:
            _h, records = decode_batch(payload, pos)
        except CorruptBatchError as exc:
            return f"batch cannot be decoded for schema validation: {exc}", []
        pos += header.size
        for i, record in enumerate(records):
            reason = _check(record.value, allowed, subject)
            if reason is not None:
                errors.append({"batch_index": i, "batch_index_error_message": reason})
    if not errors:
        return None
    first = errors[0]["batch_index_error_message"]
    message = f"{len(errors)} record(s) refused by schema validation on topic {topic!r}: {first}"
    return message, errors


def _check(value: bytes | None, allowed: frozenset[int], subject: str) -> str | None:
    if value is None:
        return None  # tombstones carry no schema
    if len(value) < 5 or value[0] != _MAGIC:
        return (
            "value is not in schema-registry wire format (magic byte 0 + 4-byte schema id); "
            f"produce with a registry-aware serializer for subject {subject!r}"
        )
    schema_id = int.from_bytes(value[1:5], "big")
    if schema_id not in allowed:
        return (
            f"schema id {schema_id} is not registered under subject {subject!r}; "
            "register the schema for this topic first"
        )
    return None
