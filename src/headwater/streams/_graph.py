"""The pipeline graph the DSL builds: nodes with processor factories, edges with ports.

The graph is plain data. A task instantiates every node's processor once, so the same graph
runs in the Kafka runtime and in the in-process test driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headwater.client import Serde
from headwater.streams._core import Processor

TimestampFn = Callable[[Any], int]


@dataclass(slots=True)
class SourceSpec:
    topic: str
    key_serde: Serde
    value_serde: Serde
    timestamp_fn: TimestampFn | None
    #: Internal topics (repartition) are created by the app with the source's partition count.
    internal: bool = False


@dataclass(slots=True)
class SinkSpec:
    topic: str
    key_serde: Serde
    value_serde: Serde
    internal: bool = False


@dataclass(eq=False, slots=True)
class Node:
    """One operator in the graph."""

    name: str
    factory: Callable[[], Processor] | None = None
    source: SourceSpec | None = None
    sink: SinkSpec | None = None
    children: list[tuple[Node, int]] = field(default_factory=list)
    side_children: dict[str, list[Node]] = field(default_factory=dict)
    #: Store names used by this node's processor (filled when the node is created).
    stores: tuple[str, ...] = ()


@dataclass(slots=True)
class Graph:
    nodes: list[Node] = field(default_factory=list)
    _counter: int = 0

    def add(self, kind: str, name: str | None = None, **kwargs: Any) -> Node:
        self._counter += 1
        node = Node(name=name or f"{kind}-{self._counter}", **kwargs)
        if any(existing.name == node.name for existing in self.nodes):
            raise ValueError(f"two operators are named {node.name!r}; names must be unique")
        self.nodes.append(node)
        return node

    def sources(self) -> list[Node]:
        return [n for n in self.nodes if n.source is not None]

    def sinks(self) -> list[Node]:
        return [n for n in self.nodes if n.sink is not None]

    def store_names(self) -> list[str]:
        return [store for n in self.nodes for store in n.stores]
