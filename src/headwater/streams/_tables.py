"""Global tables: a compacted topic read in full by every instance, for enrichment joins.

Every instance holds the whole table, so a stream can be joined with it whatever the
stream's partitioning (no co-partitioning needed), and the table keeps following its topic
while the app runs. Values are decoded once, when they arrive, not once per lookup.
"""

from __future__ import annotations

import threading
from typing import Any

from headwater.client import Serde
from headwater.client._topic_table import TopicTable


class GlobalTable:
    def __init__(self, topic: str, key_serde: Serde, value_serde: Serde) -> None:
        self.topic = topic
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._rows: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._follower: TopicTable | None = None

    def get(self, key: Any, default: Any = None) -> Any:
        return self._rows.get(key, default)

    def __len__(self) -> int:
        return len(self._rows)

    def apply(self, key: Any, value: Any) -> None:
        """Set (or with ``None``, delete) one row; used by the follower and the test driver."""
        with self._lock:
            if value is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = value

    def _on_record(self, key: bytes, value: bytes | None, _offset: int) -> None:
        decoded_key = self.key_serde.deserialize(key, self.topic)
        decoded = None if value is None else self.value_serde.deserialize(value, self.topic)
        self.apply(decoded_key, decoded)

    def start(self, bootstrap: str) -> None:
        """Read the topic to its end (so the first join sees the whole table), then follow it."""
        if self._follower is None:
            self._follower = TopicTable(
                bootstrap, self.topic, on_record=self._on_record, create=False
            ).start()

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
            self._follower = None
