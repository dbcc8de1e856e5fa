"""The fluent API users write pipelines with: ``app.stream("orders").filter(...).to_topic(...)``.

Every method adds a node to the app's graph and returns a new :class:`Stream`; nothing runs
until the app (or the test driver) starts. Functions given to per-record methods receive the
record's value; the ``*_batch`` methods receive the whole batch's values as one list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from headwater.client import Serde, serde
from headwater.streams import _aggregations as aggs
from headwater.streams import _anomaly as anomaly
from headwater.streams import _joins as joins
from headwater.streams import _operators as ops
from headwater.streams import _windows as windows
from headwater.streams._core import Processor, Record
from headwater.streams._graph import Graph, Node, SinkSpec, SourceSpec

if TYPE_CHECKING:
    from headwater.streams._tables import GlobalTable


class Topology:
    """The graph plus what naming internal topics needs."""

    def __init__(self, app_id: str, default_key_serde: Serde, default_value_serde: Serde) -> None:
        self.app_id = app_id
        self.graph = Graph()
        self.default_key_serde = default_key_serde
        self.default_value_serde = default_value_serde
        self.tables: list[GlobalTable] = []

    def source(
        self,
        topic: str,
        key_serde: Serde | str | None,
        value_serde: Serde | str | None,
        timestamp_fn: Callable[[Any], int] | None,
        internal: bool = False,
    ) -> Stream:
        if any(n.source is not None and n.source.topic == topic for n in self.graph.nodes):
            raise ValueError(f"topic {topic!r} is already a source of this app; reuse its stream")
        spec = SourceSpec(
            topic,
            serde(key_serde) if key_serde is not None else self.default_key_serde,
            serde(value_serde) if value_serde is not None else self.default_value_serde,
            timestamp_fn,
            internal,
        )
        return Stream(self, self.graph.add("source", f"source:{topic}", source=spec))

    def internal_topic(self, name: str, suffix: str) -> str:
        return f"{self.app_id}-{name}-{suffix}"


class Stream:
    """A stream of records; each method returns the stream after one more operator."""

    def __init__(self, topology: Topology, node: Node) -> None:
        self._topology = topology
        self._node = node

    @property
    def name(self) -> str:
        return self._node.name

    def _then(
        self,
        kind: str,
        factory: Callable[[], Processor] | None,
        name: str | None = None,
        stores: tuple[str, ...] = (),
        port: int = 0,
    ) -> Stream:
        node = self._topology.graph.add(kind, name, factory=factory, stores=stores)
        self._node.children.append((node, port))
        return Stream(self._topology, node)

    # Per-record operators --------------------------------------------------------------

    def filter(self, predicate: Callable[[Any], bool], *, name: str | None = None) -> Stream:
        """Keep records whose value satisfies ``predicate``."""
        return self._then("filter", lambda: ops.Filter(predicate), name)

    def map(self, fn: Callable[[Any], Any], *, name: str | None = None) -> Stream:
        """Replace each value with ``fn(value)``."""
        return self._then("map", lambda: ops.Map(fn), name)

    def map_record(self, fn: Callable[[Record], Record], *, name: str | None = None) -> Stream:
        """Replace each record with ``fn(record)`` (key, timestamp and headers available)."""
        return self._then("map-record", lambda: ops.MapRecord(fn), name)

    def flat_map(self, fn: Callable[[Any], Iterable[Any]], *, name: str | None = None) -> Stream:
        """Replace each value with zero or more values."""
        return self._then("flat-map", lambda: ops.FlatMap(fn), name)

    def peek(self, fn: Callable[[Record], None], *, name: str | None = None) -> Stream:
        """Call ``fn`` on each record for its side effect; records pass unchanged."""
        return self._then("peek", lambda: ops.Peek(fn), name)

    def validate(self, check: Callable[[Any], list[str]], *, name: str | None = None) -> Stream:
        """Keep records for which ``check(value)`` returns no reasons; send the others to the
        dead-letter topic with the reasons (e.g. ``QualityRules.validate`` of a contract, or a
        schema validator)."""
        return self._then("validate", lambda: ops.Validate(check), name)

    # Batch operators ---------------------------------------------------------------------

    def filter_batch(
        self, fn: Callable[[list[Any]], Iterable[bool]], *, name: str | None = None
    ) -> Stream:
        """Keep records by a vector of flags computed from the batch's values in one call."""
        return self._then("filter-batch", lambda: ops.FilterBatch(fn), name)

    def map_batch(
        self, fn: Callable[[list[Any]], Iterable[Any]], *, name: str | None = None
    ) -> Stream:
        """Replace the batch's values with ``fn(values)`` (same length) in one call."""
        return self._then("map-batch", lambda: ops.MapBatch(fn), name)

    def apply_batch(
        self, fn: Callable[[list[Record]], list[Record]], *, name: str | None = None
    ) -> Stream:
        """Replace the batch of records with ``fn(records)``."""
        return self._then("apply-batch", lambda: ops.ApplyBatch(fn), name)

    def process(
        self,
        factory: Callable[[], Processor],
        *,
        stores: tuple[str, ...] = (),
        name: str | None = None,
    ) -> Stream:
        """A custom operator: ``factory()`` builds one :class:`Processor` per task; ``stores``
        names the durable state stores it uses (each gets a changelog topic)."""
        return self._then("process", factory, name, stores=stores)

    def apply_arrow(self, fn: Callable[[Any], Any], *, name: str | None = None) -> Stream:
        """``fn(pyarrow.Table) -> pyarrow.Table`` once per batch: dict values become columns,
        plus ``_key``, ``_timestamp`` and ``_row``; output rows become records (see
        :class:`headwater.streams._operators.ApplyArrow`). For Polars, convert inside ``fn``
        with ``polars.from_arrow`` and back with ``.to_arrow()``."""
        return self._then("apply-arrow", lambda: ops.ApplyArrow(fn), name)

    # Routing ---------------------------------------------------------------------------------

    def branch(self, *predicates: Callable[[Any], bool]) -> list[Stream]:
        """One stream per predicate; a record goes to the first branch whose predicate holds.

        Add ``lambda v: True`` last for a default branch.
        """
        if not predicates:
            raise ValueError("branch() needs at least one predicate")
        branches = []
        for index, predicate in enumerate(predicates):
            earlier = predicates[:index]

            def first_match(
                value: Any,
                predicate: Callable[[Any], bool] = predicate,
                earlier: tuple[Callable[[Any], bool], ...] = earlier,
            ) -> bool:
                return predicate(value) and not any(p(value) for p in earlier)

            branches.append(self._then("branch", _filter_factory(first_match)))
        return branches

    def merge(self, *others: Stream, name: str | None = None) -> Stream:
        """One stream with the records of this stream and ``others``."""
        merged = self._then("merge", None, name)
        for other in others:
            if other._topology is not self._topology:
                raise ValueError("streams from different apps cannot be merged")
            other._node.children.append((merged._node, 0))
        return merged

    def rekey(
        self,
        key_fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        repartition: bool = True,
    ) -> Stream:
        """New key ``key_fn(value)``; by default the records move through a repartition topic
        so that equal keys meet in one task (what stateful operators after a re-key need)."""
        rekeyed = self._then("rekey", lambda: ops.Rekey(lambda r: key_fn(r.value)), name)
        if not repartition:
            return rekeyed
        return rekeyed.repartition(name=f"{rekeyed.name}")

    def repartition(self, *, name: str | None = None) -> Stream:
        """Write to an internal topic partitioned by key and continue from it."""
        topology = self._topology
        label = name or f"repartition-{len(topology.graph.nodes) + 1}"
        topic = topology.internal_topic(label, "repartition")
        spec = SinkSpec(topic, topology.default_key_serde, topology.default_value_serde, True)
        sink = topology.graph.add("sink", f"sink:{topic}", sink=spec)
        self._node.children.append((sink, 0))
        return topology.source(topic, None, None, None, internal=True)

    def to_topic(
        self,
        topic: str,
        *,
        key_serde: Serde | str | None = None,
        value_serde: Serde | str | None = None,
    ) -> None:
        """Produce every record to ``topic`` (with lineage headers unless the app disables them)."""
        topology = self._topology
        spec = SinkSpec(
            topic,
            serde(key_serde) if key_serde is not None else topology.default_key_serde,
            serde(value_serde) if value_serde is not None else topology.default_value_serde,
        )
        node = topology.graph.add(
            "sink", f"sink:{topic}:{len(topology.graph.nodes) + 1}", sink=spec
        )
        self._node.children.append((node, 0))

    def join(
        self,
        other: Stream,
        joiner: Callable[[Any, Any], Any],
        *,
        within_ms: int,
        grace_ms: int = 0,
        how: Literal["inner", "left", "outer"] = "inner",
        name: str | None = None,
    ) -> Stream:
        """Join records of equal key from two co-partitioned streams whose event times are at
        most ``within_ms`` apart; ``joiner(left_value, right_value)`` builds the result
        (``None`` for the missing side of an unmatched left/outer record)."""
        if other._topology is not self._topology:
            raise ValueError("streams from different apps cannot be joined")
        graph = self._topology.graph
        label = name or f"join-{len(graph.nodes) + 1}"
        left, right = f"{label}-left", f"{label}-right"

        def factory() -> Processor:
            return joins.WindowJoin(within_ms, grace_ms, joiner, how, left, right)

        joined = self._then("join", factory, label, stores=(left, right), port=0)
        other._node.children.append((joined._node, 1))
        return joined

    def detect_anomalies(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        *,
        method: Literal["zscore", "ewma"] = "zscore",
        window: int = 100,
        alpha: float = 0.1,
        threshold: float = 3.0,
        min_observations: int = 10,
        name: str | None = None,
    ) -> Stream:
        """A stream of alerts: records whose ``value_fn(value)`` lies ``threshold`` standard
        deviations or more from its key's recent values (rolling z-score over the last
        ``window`` values, or an EWMA with ``alpha``). Alert values hold key, value, mean,
        std, score, method and timestamp."""
        graph = self._topology.graph
        label = name or f"anomaly-{len(graph.nodes) + 1}"

        def factory() -> Processor:
            return anomaly.AnomalyDetector(
                value_fn, method, window, alpha, threshold, min_observations, store_name=label
            )

        return self._then("anomaly", factory, label, stores=(label,))

    # Windows ---------------------------------------------------------------------------------

    def tumbling_window(self, size_ms: int, *, grace_ms: int = 0) -> WindowedStream:
        """Fixed, non-overlapping event-time windows ``[k*size, (k+1)*size)`` per key."""
        return WindowedStream(self, windows.tumbling(size_ms, grace_ms))

    def hopping_window(self, size_ms: int, step_ms: int, *, grace_ms: int = 0) -> WindowedStream:
        """Fixed windows of ``size_ms`` starting every ``step_ms`` (they overlap)."""
        return WindowedStream(self, windows.hopping(size_ms, step_ms, grace_ms))

    def sliding_window(self, size_ms: int, *, grace_ms: int = 0) -> WindowedStream:
        """Windows of ``size_ms`` defined by the records' own timestamps."""
        return WindowedStream(self, windows.sliding(size_ms, grace_ms))

    def session_window(self, gap_ms: int, *, grace_ms: int = 0) -> WindowedStream:
        """Per-key sessions that close after ``gap_ms`` without records."""
        return WindowedStream(self, windows.session(gap_ms, grace_ms))

    def side_output(self, name: str) -> Stream:
        """The records this operator handed to its side output ``name``."""
        node = self._topology.graph.add(f"side-{name}", None)
        self._node.side_children.setdefault(name, []).append(node)
        return Stream(self._topology, node)

    def late(self) -> Stream:
        """Records a window operator received after their window closed (never dropped)."""
        return self.side_output("late")

    # Enrichment ------------------------------------------------------------------------------

    def join_table(
        self,
        table: GlobalTable,
        joiner: Callable[[Any, Any], Any],
        *,
        how: Literal["inner", "left"] = "left",
        key_fn: Callable[[Any], Any] | None = None,
        name: str | None = None,
    ) -> Stream:
        """Enrich each record with ``table``'s current row for its key (or ``key_fn(value)``).

        ``joiner(value, row)`` builds the new value; with ``how="left"`` a missing row is
        ``None``, with ``"inner"`` such records are dropped.
        """
        return self._then("join-table", lambda: ops.TableJoin(table, joiner, how, key_fn), name)


def _filter_factory(predicate: Callable[[Any], bool]) -> Callable[[], Processor]:
    return lambda: ops.Filter(predicate)


class WindowedStream:
    """A stream cut into windows, waiting for its aggregation.

    ``emit="final"`` outputs each window once, when stream time passes its end plus grace;
    ``emit="update"`` outputs the new result of every window a batch touched. Results are
    records with the same key and value ``{"start": ms, "end": ms, "value": result}``.
    """

    def __init__(self, stream: Stream, window: windows.WindowSpec) -> None:
        self._stream = stream
        self._window = window

    def _aggregate(
        self, kind: str, aggregation: aggs.Aggregation, emit: windows.EmitMode, name: str | None
    ) -> Stream:
        graph = self._stream._topology.graph
        label = name or f"{kind}-{len(graph.nodes) + 1}"
        window = self._window

        def factory() -> Processor:
            return windows.WindowedAggregate(window, aggregation, emit, store_name=label)

        return self._stream._then(kind, factory, label, stores=(label,))

    def count(self, *, emit: windows.EmitMode = "final", name: str | None = None) -> Stream:
        return self._aggregate("count", aggs.Count(), emit, name)

    def sum(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        *,
        emit: windows.EmitMode = "final",
        name: str | None = None,
    ) -> Stream:
        return self._aggregate("sum", aggs.Sum(value_fn), emit, name)

    def min(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        *,
        emit: windows.EmitMode = "final",
        name: str | None = None,
    ) -> Stream:
        return self._aggregate("min", aggs.Min(value_fn), emit, name)

    def max(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        *,
        emit: windows.EmitMode = "final",
        name: str | None = None,
    ) -> Stream:
        return self._aggregate("max", aggs.Max(value_fn), emit, name)

    def mean(
        self,
        value_fn: Callable[[Any], Any] | None = None,
        *,
        emit: windows.EmitMode = "final",
        name: str | None = None,
    ) -> Stream:
        return self._aggregate("mean", aggs.Mean(value_fn), emit, name)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        reducer: Callable[[Any, Any], Any],
        *,
        result: Callable[[Any], Any] | None = None,
        merger: Callable[[Any, Any], Any] | None = None,
        emit: windows.EmitMode = "final",
        name: str | None = None,
    ) -> Stream:
        """A custom fold: ``reducer(acc, value)`` from ``initializer()``; ``result(acc)`` is
        what is emitted; session windows also need ``merger(acc_a, acc_b)``."""
        return self._aggregate(
            "aggregate", aggs.Reduce(initializer, reducer, result, merger), emit, name
        )
