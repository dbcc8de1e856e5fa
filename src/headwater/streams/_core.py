"""The contracts every operator is written against: records, processors, tasks and stores.

A pipeline is compiled into one *task* per input partition number, as in Kafka Streams: each
task owns fresh processor instances and the state stores for its partition, so processors may
keep plain Python structures in memory and use their store only for durability. Records move
through a task in batches (lists), never one call per record, which is what keeps the per-record
interpreter cost low.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Record:
    """One event flowing through a pipeline, already deserialized.

    ``timestamp`` is event time in epoch milliseconds; operators that change it (windows emit
    results stamped with the window end) build a new record with :meth:`replace`.
    """

    key: Any
    value: Any
    timestamp: int
    headers: list[tuple[str, bytes]] | None = None
    topic: str = ""
    partition: int = -1
    offset: int = -1

    def replace(self, **changes: Any) -> Record:
        return Record(
            changes.get("key", self.key),
            changes.get("value", self.value),
            changes.get("timestamp", self.timestamp),
            changes.get("headers", self.headers),
            changes.get("topic", self.topic),
            changes.get("partition", self.partition),
            changes.get("offset", self.offset),
        )


class StateStore(Protocol):
    """A key-value store for one task, made durable by the runtime (changelog + local disk).

    Keys are hashable values built from str, int, float, bool, None, bytes and tuples of those.
    Values are JSON-like (str, int, float, bool, None, list, dict with str keys, bytes, tuples):
    they travel through the changelog topic. ``None`` is not a value (the changelog uses it
    for deletion). Mutating a value in place is not seen; ``put`` it again.
    """

    def get(self, key: Hashable, default: Any = None) -> Any: ...

    def put(self, key: Hashable, value: Any) -> None: ...

    def delete(self, key: Hashable) -> None: ...

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        """Every live entry, in no particular order (used to rebuild in-memory indexes)."""
        ...

    def __len__(self) -> int: ...


class TaskContext(Protocol):
    """What a processor may ask of the task that runs it."""

    @property
    def partition(self) -> int:
        """The input partition number this task owns."""
        ...

    @property
    def stream_time(self) -> int:
        """Largest event timestamp seen by this task so far (epoch ms), or -1 before any."""
        ...

    def store(self, name: str) -> StateStore:
        """The task's store called ``name`` (declared in :attr:`Processor.stores`)."""
        ...

    def side_output(self, name: str, records: list[Record]) -> None:
        """Hand records to a named side output, e.g. late records (``"late"``)."""
        ...


class Processor:
    """One operator instance inside one task.

    ``process`` receives a batch and returns the batch it passes downstream (may be empty,
    may be longer). ``port`` tells which upstream sent the batch for operators with several
    inputs (joins): 0 for the left/first, 1 for the right/second.
    """

    #: Names of the state stores this processor needs; the runtime creates and restores them.
    stores: tuple[str, ...] = ()

    def open(self, ctx: TaskContext) -> None:
        """Called once the task's stores are restored, before the first batch."""

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        raise NotImplementedError

    def flush(self) -> list[Record]:
        """Records to emit when the task is closed cleanly or the driver ends input."""
        return []

    def close(self) -> None:
        """The task is being closed (partition revoked or app stopped)."""


#: Builds a fresh processor instance for a task; called once per task.
ProcessorFactory = Callable[[], Processor]


@dataclass(slots=True)
class MemoryStore:
    """A dict-backed :class:`StateStore` that records which keys changed since the last flush."""

    data: dict[Hashable, Any] = field(default_factory=dict)
    dirty: set[Hashable] = field(default_factory=set)

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: Hashable, value: Any) -> None:
        self.data[key] = value
        self.dirty.add(key)

    def delete(self, key: Hashable) -> None:
        if self.data.pop(key, None) is not None or key in self.dirty:
            self.dirty.add(key)

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)

    def take_changes(self) -> list[tuple[Hashable, Any]]:
        """Changed keys since the last call with their value, ``None`` meaning deleted."""
        changes = [(key, self.data.get(key)) for key in self.dirty]
        self.dirty.clear()
        return changes
