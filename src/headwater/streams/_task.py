"""A task: one input partition's instance of the pipeline graph.

Kafka Streams' unit of parallelism and of state ownership. Records of every source topic's
partition ``p`` go to task ``p``; the task owns fresh processor instances and the state stores
of partition ``p``, so moving a partition to another instance moves exactly this.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Protocol

from headwater.streams._core import Processor, Record, StateStore, TaskContext
from headwater.streams._graph import Graph, Node, SinkSpec

DeadLetter = Callable[[Record, BaseException, str], None]
_timestamp = operator.attrgetter("timestamp")


class OperatorError(RuntimeError):
    """A stateful operator failed; the app stops rather than apply half a batch twice."""


class Emitter(Protocol):
    def emit(self, sink: SinkSpec, records: list[Record], node: Node) -> None: ...


class _NodeContext(TaskContext):
    def __init__(self, task: Task, node: Node) -> None:
        self._task = task
        self._node = node

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def stream_time(self) -> int:
        return self._task.stream_time

    def store(self, name: str) -> StateStore:
        try:
            return self._task.stores[name]
        except KeyError:
            raise KeyError(
                f"operator {self._node.name!r} asked for store {name!r}, which it did not declare"
            ) from None

    def side_output(self, name: str, records: list[Record]) -> None:
        if records:
            for child in self._node.side_children.get(name, ()):
                self._task.push(child, records, 0)


class Task:
    def __init__(
        self,
        graph: Graph,
        partition: int,
        stores: Mapping[str, StateStore],
        emitter: Emitter,
        dead_letter: DeadLetter,
    ) -> None:
        self.graph = graph
        self.partition = partition
        self.stores = dict(stores)
        self.emitter = emitter
        self.dead_letter = dead_letter
        self.stream_time = -1
        self.processors: dict[str, Processor] = {
            node.name: node.factory() for node in graph.nodes if node.factory is not None
        }

    def open(self) -> None:
        for node in self.graph.nodes:
            processor = self.processors.get(node.name)
            if processor is not None:
                processor.open(_NodeContext(self, node))

    def process(self, source: Node, records: list[Record]) -> None:
        """Run a batch from one source topic's partition through the graph."""
        if not records:
            return
        self.push(source, records, 0)
        latest = max(map(_timestamp, records))
        if latest > self.stream_time:
            self.stream_time = latest

    def push(self, node: Node, records: list[Record], port: int) -> None:
        if node.sink is not None:
            self.emitter.emit(node.sink, records, node)
            return
        processor = self.processors.get(node.name)
        out = records if processor is None else self._run(node, processor, records, port)
        if out:
            for child, child_port in node.children:
                self.push(child, out, child_port)

    def _run(
        self, node: Node, processor: Processor, records: list[Record], port: int
    ) -> list[Record]:
        try:
            return processor.process(records, port)
        except Exception as exc:
            if node.stores:
                raise OperatorError(
                    f"stateful operator {node.name!r} failed on partition {self.partition}: "
                    f"{exc!r}; fix the function or guard it (e.g. filter bad records first)"
                ) from exc
            # Stateless: isolate the failing records and send only those to the dead letters.
            out: list[Record] = []
            for record in records:
                try:
                    out.extend(processor.process([record], port))
                except Exception as record_exc:
                    self.dead_letter(record, record_exc, node.name)
            return out

    def flush(self) -> None:
        """Let processors emit what they hold (the test driver's end of input)."""
        for node in self.graph.nodes:
            processor = self.processors.get(node.name)
            if processor is not None:
                out = processor.flush()
                if out:
                    for child, child_port in node.children:
                        self.push(child, out, child_port)

    def close_windows(self) -> None:
        """Close every open window now and emit it (the test driver's end of time)."""
        for node in self.graph.nodes:
            close_all = getattr(self.processors.get(node.name), "close_all", None)
            if close_all is not None:
                out = close_all()
                if out:
                    for child, child_port in node.children:
                        self.push(child, out, child_port)

    def close(self) -> None:
        for processor in self.processors.values():
            processor.close()
