"""Run an app's pipeline in-process, with no broker, for users' unit tests.

The driver builds the same tasks the Kafka runtime builds, with in-memory stores, and passes
records through the same serializers, so a test catches an output that cannot be serialized
just as the real app would. Repartition topics are routed back into the pipeline directly.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from headwater.streams._core import MemoryStore, Record
from headwater.streams._graph import Node, SinkSpec
from headwater.streams._task import Task

if TYPE_CHECKING:
    from headwater.streams._app import App


class TestDriver:
    """Feed records with :meth:`send`, read results with :meth:`output`."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, app: App, *, partitions: int = 1) -> None:
        self.app = app
        self.graph = app.topology.graph
        self.partitions = partitions
        self.sources = {n.source.topic: n for n in self.graph.sources() if n.source is not None}
        self.tables = {t.topic: t for t in app.topology.tables}
        self.outputs: dict[str, list[Record]] = {}
        self.dead_letters: list[tuple[Record, str]] = []
        self.tasks: dict[int, Task] = {}
        for partition in range(partitions):
            stores = {name: MemoryStore() for name in self.graph.store_names()}
            task = Task(self.graph, partition, stores, self, self._dead_letter)
            task.open()
            self.tasks[partition] = task

    def _partition_for(self, key_bytes: bytes | None) -> int:
        if key_bytes is None or self.partitions == 1:
            return 0
        return zlib.crc32(key_bytes) % self.partitions

    def send(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        *,
        timestamp: int = 0,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Process one record as if it had been produced to ``topic``."""
        self.send_many(topic, [(key, value, timestamp)], headers=headers)

    def send_many(
        self,
        topic: str,
        records: Iterable[tuple[Any, Any, int]],
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Process ``(key, value, timestamp)`` triples as one batch per partition."""
        if topic in self.tables:
            table = self.tables[topic]
            for key, value, _ in records:
                table.apply(key, value)
            return
        node = self.sources.get(topic)
        if node is None or node.source is None:
            known = ", ".join(sorted(set(self.sources) | set(self.tables)))
            raise KeyError(f"{topic!r} is not a source or table of this app (known: {known})")
        spec = node.source
        batches: dict[int, list[Record]] = {}
        offset = 0
        for key, value, timestamp in records:
            key_bytes = spec.key_serde.serialize(key, topic)
            value_bytes = spec.value_serde.serialize(value, topic)
            partition = self._partition_for(key_bytes)
            record = Record(None, None, timestamp, headers, topic, partition, offset)
            offset += 1
            try:
                record.key = spec.key_serde.deserialize(key_bytes, topic)
                record.value = spec.value_serde.deserialize(value_bytes, topic)
                if spec.timestamp_fn is not None:
                    record.timestamp = spec.timestamp_fn(record.value)
            except Exception as exc:
                self._dead_letter(record, exc, "deserialize")
                continue
            batches.setdefault(partition, []).append(record)
        for partition, batch in batches.items():
            self.tasks[partition].process(node, batch)

    def emit(self, sink: SinkSpec, records: list[Record], node: Node) -> None:
        topic = sink.topic
        out: list[Record] = []
        for r in records:
            key_bytes = sink.key_serde.serialize(r.key, topic)
            value_bytes = sink.value_serde.serialize(r.value, topic)
            out.append(
                Record(
                    sink.key_serde.deserialize(key_bytes, topic),
                    sink.value_serde.deserialize(value_bytes, topic),
                    r.timestamp,
                    r.headers,
                    topic,
                    self._partition_for(key_bytes),
                    -1,
                )
            )
        if sink.internal:
            source = self.sources[topic]
            by_partition: dict[int, list[Record]] = {}
            for record in out:
                by_partition.setdefault(record.partition, []).append(record)
            for partition, batch in by_partition.items():
                self.tasks[partition].process(source, batch)
            return
        self.outputs.setdefault(topic, []).extend(out)

    def _dead_letter(self, record: Record, error: BaseException, stage: str) -> None:
        self.dead_letters.append((record, f"{stage}: {error!r}"))

    def output(self, topic: str) -> list[Record]:
        """Records produced to ``topic`` so far."""
        return list(self.outputs.get(topic, []))

    def values(self, topic: str) -> list[Any]:
        return [r.value for r in self.outputs.get(topic, [])]

    def flush(self) -> None:
        """End of input: let operators emit what they hold (e.g. close every window)."""
        for task in self.tasks.values():
            task.flush()

    def close_windows(self) -> None:
        """Advance to the end of time: every open window closes and emits its final result."""
        for task in self.tasks.values():
            task.close_windows()

    def store(self, name: str, partition: int = 0) -> MemoryStore:
        store = self.tasks[partition].stores[name]
        assert isinstance(store, MemoryStore)
        return store
