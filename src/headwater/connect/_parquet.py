"""The Parquet sink: records buffered per partition, written as files partitioned by event
hour (``dt=YYYY-MM-DD/hour=HH/``) on local disk or any fsspec store such as S3.

A flush writes one file per (partition, hour) named by its offset range and only then lets the
runtime commit. After a crash, files past the committed offset are removed when the partition
is assigned again and the replay writes them anew, so every record lands in exactly one file.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.connect._arrow import to_table
from headwater.connect._event_time import EventTimeError, event_time_ms, hour_partition
from headwater.connect._parquet_files import Store, file_name
from headwater.connect._records import Rejected, SinkRecord
from headwater.connect._schema import Kind, RowShape, SchemaMismatch, infer_kinds
from headwater.connect._sink import PartitionStart, Sink, TopicPartitionKey, TransientError

log = logging.getLogger(__name__)

META_KINDS = {
    "_topic": Kind.TEXT,
    "_partition": Kind.INT,
    "_offset": Kind.INT,
    "_timestamp_ms": Kind.INT,
}


@dataclass(slots=True)
class ParquetSinkConfig:
    """Where files go and when a file is closed (whichever bound is reached first)."""

    base_url: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    rotate_rows: int = 100_000
    rotate_bytes: int = 64 * 1024 * 1024
    rotate_seconds: float = 60.0
    time_field: str | None = None
    compression: str = "zstd"


@dataclass(slots=True)
class _Buffer:
    rows: dict[tuple[TopicPartitionKey, str], list[list[Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    count: int = 0
    size_bytes: int = 0
    since_s: float | None = None


class ParquetSink(Sink):
    """Buffers rows and writes offset-named Parquet files on rotation."""

    name = "parquet"

    def __init__(self, config: ParquetSinkConfig, store: Store | None = None) -> None:
        if config.rotate_rows < 1 or config.rotate_bytes < 1 or config.rotate_seconds <= 0:
            raise ValueError("rotation bounds must be positive")
        self.config = config
        self.store = store or Store.open(config.base_url, config.storage_options)
        self._shape: RowShape | None = None
        self._buffer = _Buffer()
        self.files_written: list[str] = []

    def assigned(self, partitions: Sequence[PartitionStart]) -> Mapping[TopicPartitionKey, int]:
        for start in partitions:
            try:
                self.store.remove_uncommitted(start.topic, start.partition, start.committed)
            except OSError as exc:
                raise TransientError(f"could not list or clean files: {exc}") from exc
        return {}

    def write(self, batch: Sequence[SinkRecord]) -> list[Rejected]:
        if self._shape is None:
            self._shape = RowShape(infer_kinds(r.value for r in batch))
        else:
            fresh = self._shape.new_fields(r.value for r in batch)
            if fresh:
                self._shape = RowShape({**self._shape.kinds, **fresh})
        shape = self._shape
        rejected: list[Rejected] = []
        buffer = self._buffer
        for record in batch:
            try:
                values = shape.values(record.value)
                hour = hour_partition(event_time_ms(record, self.config.time_field))
            except (SchemaMismatch, EventTimeError) as exc:
                rejected.append(Rejected(record, exc))
                continue
            values += (record.topic, record.partition, record.offset, record.timestamp_ms)
            buffer.rows[((record.topic, record.partition), hour)].append(values)
            buffer.count += 1
            buffer.size_bytes += len(record.raw_value or b"")
        if buffer.since_s is None and buffer.count:
            buffer.since_s = time.monotonic()
        return rejected

    def flush_due(self, now_s: float) -> bool:
        buffer = self._buffer
        config = self.config
        if not buffer.count:
            return True
        return (
            buffer.count >= config.rotate_rows
            or buffer.size_bytes >= config.rotate_bytes
            or (buffer.since_s is not None and now_s - buffer.since_s >= config.rotate_seconds)
        )

    def flush(self) -> None:
        if not self._buffer.count:
            return
        assert self._shape is not None
        kinds = {**self._shape.kinds, **META_KINDS}
        offset_at = len(self._shape.kinds) + 2
        groups = sorted(self._buffer.rows.items())
        for ((topic, partition), hour), rows in groups:
            if not rows:
                continue
            # Rows from older shapes are shorter: the fields added later are null for them.
            width = len(kinds)
            padded = [_pad(row, width, len(self._shape.kinds)) for row in rows]
            first, last = padded[0][offset_at], padded[-1][offset_at]
            relative = f"{hour}/{file_name(topic, partition, first, last)}"
            try:
                written = self.store.write(
                    relative, to_table(kinds, padded), self.config.compression
                )
            except OSError as exc:
                raise TransientError(f"could not write {relative}: {exc}") from exc
            self.files_written.append(written)
            log.debug("wrote file path=%s rows=%d", written, len(rows))
            # Each group is written once: a retry after a later failure skips it.
            rows.clear()
        self._buffer = _Buffer()

    def released(self, partitions: Sequence[TopicPartitionKey]) -> None:
        lost = set(partitions)
        for key in [k for k in self._buffer.rows if k[0] in lost]:
            rows = self._buffer.rows.pop(key)
            self._buffer.count -= len(rows)


def _pad(row: list[Any], width: int, fields: int) -> list[Any]:
    if len(row) == width:
        return row
    have = len(row) - len(META_KINDS)
    return row[:have] + [None] * (fields - have) + row[have:]
