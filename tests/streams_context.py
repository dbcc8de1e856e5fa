"""The smallest TaskContext, for driving stateful processors directly in unit tests."""

from __future__ import annotations

from collections import defaultdict

from headwater.streams._core import MemoryStore, Record


class Ctx:
    """Named memory stores and collected side outputs."""

    def __init__(self, stores: dict[str, MemoryStore] | None = None) -> None:
        self.stores = {} if stores is None else stores
        self.side: dict[str, list[Record]] = defaultdict(list)
        self.partition = 0
        self.stream_time = -1

    def store(self, name: str) -> MemoryStore:
        return self.stores.setdefault(name, MemoryStore())

    def side_output(self, name: str, records: list[Record]) -> None:
        self.side[name].extend(records)
