"""``App``: where a pipeline is declared and run.

An app is a consumer group (its ``app_id``); running more instances with the same id spreads
the partitions, and their state, across them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from headwater.client import Admin, AdminError, Serde, serde
from headwater.streams._dsl import Stream, Topology
from headwater.streams._runtime import AppStats, Runner, RuntimeSettings, StreamsError
from headwater.streams._tables import GlobalTable

Guarantee = Literal["at-least-once", "exactly-once"]


class App:
    """A stream-processing application.

    ``guarantee="exactly-once"`` runs every commit interval as one Kafka transaction (outputs,
    state changelog writes and input offsets together); ``"at-least-once"`` commits offsets
    after outputs are acknowledged. ``commit_interval_ms`` defaults to 100 ms for exactly-once
    (outputs become visible to read_committed consumers at each commit) and 1,000 ms otherwise.
    """

    def __init__(
        self,
        app_id: str,
        bootstrap: str = "127.0.0.1:9092",
        *,
        guarantee: Guarantee = "at-least-once",
        state_dir: str | Path = "headwater-state",
        commit_interval_ms: int | None = None,
        batch_size: int = 2000,
        dead_letter_topic: str | None = None,
        key_serde: Serde | str = "string",
        value_serde: Serde | str = "json",
        lineage: bool = True,
        consumer_overrides: dict[str, Any] | None = None,
        producer_overrides: dict[str, Any] | None = None,
    ) -> None:
        if guarantee not in ("at-least-once", "exactly-once"):
            raise ValueError(
                f"guarantee must be 'at-least-once' or 'exactly-once', not {guarantee!r}"
            )
        self.app_id = app_id
        self.bootstrap = bootstrap
        self.guarantee = guarantee
        self.state_dir = Path(state_dir) / app_id
        exactly_once = guarantee == "exactly-once"
        interval = (
            commit_interval_ms
            if commit_interval_ms is not None
            else (100 if exactly_once else 1000)
        )
        self.commit_interval_s = interval / 1000
        self.batch_size = batch_size
        self.dead_letter_topic = dead_letter_topic or f"{app_id}-dead-letters"
        self.lineage = lineage
        self.consumer_overrides = dict(consumer_overrides or {})
        self.producer_overrides = dict(producer_overrides or {})
        self.topology = Topology(app_id, serde(key_serde), serde(value_serde))
        self._stop = threading.Event()
        self._runner: Runner | None = None

    # Declaring -------------------------------------------------------------------------------

    def stream(
        self,
        topic: str,
        *,
        key_serde: Serde | str | None = None,
        value_serde: Serde | str | None = None,
        timestamp_fn: Callable[[Any], int] | None = None,
    ) -> Stream:
        """A stream of ``topic``'s records. Event time is the record timestamp, or
        ``timestamp_fn(value)`` (epoch ms) when the time is inside the payload."""
        return self.topology.source(topic, key_serde, value_serde, timestamp_fn)

    def table(
        self,
        topic: str,
        *,
        key_serde: Serde | str | None = None,
        value_serde: Serde | str | None = None,
    ) -> GlobalTable:
        """A global table of a (compacted) topic, for :meth:`Stream.join_table`."""
        table = GlobalTable(
            topic,
            serde(key_serde) if key_serde is not None else self.topology.default_key_serde,
            serde(value_serde) if value_serde is not None else self.topology.default_value_serde,
        )
        self.topology.tables.append(table)
        return table

    # Running ---------------------------------------------------------------------------------

    @property
    def stats(self) -> AppStats | None:
        """Counters of the current (or last) run."""
        return None if self._runner is None else self._runner.stats

    def stop(self) -> None:
        """Ask a running app to commit and stop; safe from any thread or a signal handler."""
        self._stop.set()

    def run(self, *, until: Callable[[], bool] | None = None) -> AppStats:
        """Run until :meth:`stop`, Ctrl-C/SIGTERM, or ``until()`` returns true."""
        self._stop.clear()
        changelogs = self._prepare_topics()
        settings = RuntimeSettings(
            app_id=self.app_id,
            bootstrap=self.bootstrap,
            exactly_once=self.guarantee == "exactly-once",
            state_dir=self.state_dir,
            commit_interval_s=self.commit_interval_s,
            batch_size=self.batch_size,
            dead_letter_topic=self.dead_letter_topic,
            lineage=self.lineage,
            transactional_id=f"{self.app_id}-{self._instance_id()}",
            consumer_overrides=self.consumer_overrides,
            producer_overrides=self.producer_overrides,
            changelogs=changelogs,
        )
        for table in self.topology.tables:
            table.start(self.bootstrap)
        try:
            with self._signals():
                self._runner = Runner(self.topology.graph, settings, self._stop)
                return self._runner.run(until)
        finally:
            for table in self.topology.tables:
                table.close()

    def _instance_id(self) -> str:
        """A stable id per state directory: a restarted instance fences its own zombie and
        aborts the transaction it left open at once, instead of waiting for its timeout."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "instance-id"
        if not path.exists():
            path.write_text(uuid.uuid4().hex[:12])
        return path.read_text().strip()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, lambda *_: self.stop())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _prepare_topics(self) -> dict[str, str]:
        """Check sources exist and agree on partitions; create internal topics. Returns the
        changelog topic of each store."""
        admin = Admin(self.bootstrap)
        existing = admin.list_topics()
        graph = self.topology.graph
        counts: dict[str, int] = {}
        for node in graph.sources():
            assert node.source is not None
            if node.source.internal:
                continue
            topic = node.source.topic
            if topic not in existing:
                raise StreamsError(
                    f"source topic {topic!r} does not exist; create it first "
                    f"(headwater topics create {topic} --partitions N)"
                )
            counts[topic] = existing[topic]
        for table in self.topology.tables:
            if table.topic not in existing:
                raise StreamsError(
                    f"table topic {table.topic!r} does not exist; create it first "
                    f"(headwater topics create {table.topic} --config cleanup.policy=compact)"
                )
        partitions = max(counts.values(), default=1)
        self._check_copartitioning(counts)
        wanted: dict[str, dict[str, str]] = {self.dead_letter_topic: {}}
        for node in graph.sources():
            if node.source is not None and node.source.internal:
                wanted[node.source.topic] = {}
        changelogs = {
            store: self.topology.internal_topic(store, "changelog") for store in graph.store_names()
        }
        for topic in changelogs.values():
            wanted[topic] = {"cleanup.policy": "compact"}
        for topic, configs in wanted.items():
            if topic in existing:
                if topic != self.dead_letter_topic and existing[topic] != partitions:
                    raise StreamsError(
                        f"internal topic {topic!r} has {existing[topic]} partitions but the "
                        f"sources have {partitions}; delete it (or reset the app) and restart"
                    )
                continue
            count = 1 if topic == self.dead_letter_topic else partitions
            with contextlib.suppress(AdminError):  # another instance created it first
                admin.create_topic(topic, count, configs)
        for node in graph.sinks():
            # Output topics that do not exist yet get the sources' partition count, so the app
            # runs the same on a cluster whose brokers do not auto-create topics.
            if node.sink is not None and node.sink.topic not in existing:
                existing[node.sink.topic] = partitions
                with contextlib.suppress(AdminError):
                    admin.create_topic(node.sink.topic, partitions, {})
        return changelogs

    def _check_copartitioning(self, counts: dict[str, int]) -> None:
        for node in self.topology.graph.nodes:
            parents = [
                p for p in self.topology.graph.nodes for child, _ in p.children if child is node
            ]
            if len(parents) > 1 and node.stores:
                topics = {t for t in _source_topics(self.topology, node) if t in counts}
                sizes = {counts[t] for t in topics}
                if len(sizes) > 1:
                    detail = ", ".join(f"{t}={counts[t]}" for t in sorted(topics))
                    raise StreamsError(
                        f"operator {node.name!r} joins topics that are not co-partitioned "
                        f"({detail}); give them the same number of partitions"
                    )


def _source_topics(topology: Topology, node: Any) -> set[str]:
    """Source topics upstream of ``node``."""
    found: set[str] = set()
    stack = [node]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if current.source is not None:
            found.add(current.source.topic)
        stack.extend(p for p in topology.graph.nodes for child, _ in p.children if child is current)
    return found
