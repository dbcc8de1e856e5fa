"""Event-time windows and the processor that aggregates records per key and window.

Semantics, shared by every window type:

* Windows are half-open ``[start, end)`` in event-time milliseconds. Results are emitted as
  ``Record(key, {"start": start, "end": end, "value": result}, timestamp=end - 1)``: the
  timestamp is the last instant the window covers, so a result never predates its records.
* *Stream time* is the largest record timestamp this processor has seen, advanced record by
  record and kept in the store. Tracking it here rather than per batch makes the output
  independent of how the input was cut into batches, and lets a restored instance continue
  with the same clock.
* A window is *closed* once ``end + grace_ms <= stream time`` (sessions add their gap, see
  :class:`SessionWindows`). A record whose windows are all closed is *late*: it goes to the
  ``"late"`` side output, never dropped silently. A hopping record that still fits in some
  open window updates those and is not reported late.
* ``emit="final"``: each window is emitted once, at the end of the batch in which it closed,
  and its state is deleted. Windows still open at the end of input are not emitted by
  ``flush()`` (as in Kafka Streams: they are not final yet); :meth:`WindowedAggregate.close_all`
  emits them on request (the test driver calls it).
* ``emit="update"``: every window a batch touched is emitted once at the end of that batch
  with its current result; state is deleted silently when the window closes.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from typing import Any, Literal

from headwater.streams._aggregations import Aggregation
from headwater.streams._core import Processor, Record, StateStore, TaskContext

EmitMode = Literal["final", "update"]


def _check(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class TumblingWindows:
    """Back-to-back windows ``[n*size, (n+1)*size)``; each record is in exactly one."""

    size_ms: int
    grace_ms: int = 0

    def __post_init__(self) -> None:
        _check("size_ms", self.size_ms, 1)
        _check("grace_ms", self.grace_ms, 0)


@dataclass(frozen=True, slots=True)
class HoppingWindows:
    """Windows ``[n*step, n*step + size)``; a record is in ``size / step`` of them."""

    size_ms: int
    step_ms: int
    grace_ms: int = 0

    def __post_init__(self) -> None:
        _check("size_ms", self.size_ms, 1)
        _check("step_ms", self.step_ms, 1)
        _check("grace_ms", self.grace_ms, 0)
        if self.step_ms > self.size_ms:
            raise ValueError("step_ms must not exceed size_ms (records would fall between)")


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """Windows defined by the records themselves: every distinct group of records of a key
    whose timestamps are at most ``size_ms`` apart.

    As in Kafka Streams, each record at ``t`` defines the window covering ``[t - size, t]``
    (both ends inclusive), and, when later records lie within ``size`` of it, the window
    ``[t + 1, t + 1 + size]`` holding what remains once ``t`` slides out. A window covering
    ``[s, s + size]`` is reported as ``start = s``, ``end = s + size + 1``.
    """

    size_ms: int
    grace_ms: int = 0

    def __post_init__(self) -> None:
        _check("size_ms", self.size_ms, 0)
        _check("grace_ms", self.grace_ms, 0)


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Per-key activity sessions: records at most ``gap_ms`` apart share a session.

    A session over records ``first..last`` is reported as ``[first, last + 1)``. It closes once
    ``end + gap + grace <= stream time``, when no record that is not late could extend it. A
    record that extends an open session is accepted however old it is; one that would start a
    new session is late when it is more than ``grace_ms`` behind stream time. A record within
    ``gap`` of two sessions merges them (the aggregation must support ``merge``).
    """

    gap_ms: int
    grace_ms: int = 0

    def __post_init__(self) -> None:
        _check("gap_ms", self.gap_ms, 0)
        _check("grace_ms", self.grace_ms, 0)


WindowSpec = TumblingWindows | HoppingWindows | SlidingWindows | SessionWindows


def tumbling(size_ms: int, grace_ms: int = 0) -> TumblingWindows:
    return TumblingWindows(size_ms, grace_ms)


def hopping(size_ms: int, step_ms: int, grace_ms: int = 0) -> HoppingWindows:
    return HoppingWindows(size_ms, step_ms, grace_ms)


def sliding(size_ms: int, grace_ms: int = 0) -> SlidingWindows:
    return SlidingWindows(size_ms, grace_ms)


def session(gap_ms: int, grace_ms: int = 0) -> SessionWindows:
    return SessionWindows(gap_ms, grace_ms)


# -- engines -----------------------------------------------------------------------------------
# Each engine owns the in-memory state of one window type. Stores hold one entry per window
# (or buffered record, for sliding windows) plus ``_META`` = [stream time, sequence], a 1-tuple
# key that cannot collide with the 2-tuple entry keys.

_META = ("__meta__",)
_MISSING: Any = object()


def window_result(key: Any, start: int, end: int, value: Any) -> Record:
    """The record a window emits: its timestamp is the last instant the window covers."""
    return Record(key, {"start": start, "end": end, "value": value}, end - 1)


class _Engine:
    def __init__(self, grace: int, agg: Aggregation, final: bool) -> None:
        self.grace = grace
        self.agg = agg
        self.final = final
        self.stream_time = -1
        self.seq = 0
        self._saved_meta: tuple[int, int] = (-1, 0)
        self.store: StateStore | None = None

    def _open_meta(self, store: StateStore) -> None:
        self.store = store
        meta = store.get(_META)
        if meta is not None:
            self.stream_time, self.seq = meta[0], meta[1]
        self._saved_meta = (self.stream_time, self.seq)

    def _save_meta(self) -> None:
        assert self.store is not None
        meta = (self.stream_time, self.seq)
        if meta != self._saved_meta:
            self.store.put(_META, list(meta))
            self._saved_meta = meta


class FixedEngine(_Engine):
    """Tumbling and hopping windows: one accumulator per (key, window start).

    The expiry index groups windows by end (all keys of a tumbling window share one end), with
    a heap of distinct ends, so closing windows costs nothing per batch when none closes.
    """

    def __init__(self, size: int, step: int, grace: int, agg: Aggregation, final: bool) -> None:
        super().__init__(grace, agg, final)
        self.size = size
        self.step = step
        self.live: dict[tuple[Any, int], Any] = {}
        self._by_end: dict[int, list[tuple[Any, int]]] = {}
        self._ends: list[int] = []

    def open(self, store: StateStore) -> None:
        self._open_meta(store)
        self.live.clear()
        self._by_end.clear()
        self._ends.clear()
        for skey, value in store.items():
            if skey != _META:
                assert isinstance(skey, tuple)
                self.live[skey] = value[0]
                self._index(skey)

    def _index(self, wkey: tuple[Any, int]) -> None:
        end = wkey[1] + self.size
        bucket = self._by_end.get(end)
        if bucket is None:
            self._by_end[end] = bucket = []
            heapq.heappush(self._ends, end)
        bucket.append(wkey)

    def process(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        touched: dict[tuple[Any, int], None] = {}
        fresh: set[tuple[Any, int]] = set()
        if self.step == self.size:
            late = self._fold_tumbling(records, touched, fresh)
        else:
            late = self._fold_hopping(records, touched, fresh)
        return self._finish(touched, fresh), late

    def _fold_tumbling(
        self, records: list[Record], touched: dict[Any, None], fresh: set[Any]
    ) -> list[Record]:
        # The hot loop: locals only, one dict probe and one aggregation call per record.
        live = self.live
        size = self.size
        horizon = size + self.grace
        add = self.agg.add
        initial = self.agg.initial
        st = self.stream_time
        late: list[Record] = []
        for rec in records:
            t = rec.timestamp
            if t > st:
                st = t
            start = t - t % size
            if start + horizon <= st:
                late.append(rec)
                continue
            wkey = (rec.key, start)
            acc = live.get(wkey, _MISSING)
            if acc is _MISSING:
                acc = initial()
                self._index(wkey)
                fresh.add(wkey)
            live[wkey] = add(acc, rec.value)
            touched[wkey] = None
        self.stream_time = st
        return late

    def _fold_hopping(
        self, records: list[Record], touched: dict[Any, None], fresh: set[Any]
    ) -> list[Record]:
        live = self.live
        size, step, grace = self.size, self.step, self.grace
        add = self.agg.add
        initial = self.agg.initial
        st = self.stream_time
        late: list[Record] = []
        for rec in records:
            t = rec.timestamp
            if t > st:
                st = t
            last = t - t % step
            if last + size + grace <= st:
                late.append(rec)
                continue
            # Oldest window still holding t first, so output order follows window order.
            for start in range((t - size) // step * step + step, last + 1, step):
                if start + size + grace <= st:
                    continue
                wkey = (rec.key, start)
                acc = live.get(wkey, _MISSING)
                if acc is _MISSING:
                    acc = initial()
                    self._index(wkey)
                    fresh.add(wkey)
                live[wkey] = add(acc, rec.value)
                touched[wkey] = None
        self.stream_time = st
        return late

    def _finish(self, touched: dict[Any, None], fresh: set[Any]) -> list[Record]:
        assert self.store is not None
        store, live, result, size = self.store, self.live, self.agg.result, self.size
        out: list[Record] = []
        if not self.final:
            out = [window_result(k[0], k[1], k[1] + size, result(live[k])) for k in touched]
        close_at = self.stream_time - self.grace
        ends = self._ends
        while ends and ends[0] <= close_at:
            end = heapq.heappop(ends)
            for wkey in self._by_end.pop(end):
                acc = live.pop(wkey)
                if self.final:
                    out.append(window_result(wkey[0], wkey[1], end, result(acc)))
                if wkey not in fresh:
                    store.delete(wkey)
        for wkey in touched:
            acc = live.get(wkey, _MISSING)
            if acc is not _MISSING:
                store.put(wkey, [acc])
        self._save_meta()
        return out

    def close_all(self) -> list[Record]:
        assert self.store is not None
        out: list[Record] = []
        while self._ends:
            end = heapq.heappop(self._ends)
            for wkey in self._by_end.pop(end):
                acc = self.live.pop(wkey)
                if self.final:
                    out.append(window_result(wkey[0], wkey[1], end, self.agg.result(acc)))
                self.store.delete(wkey)
        return out


class SlidingEngine(_Engine):
    """Sliding windows over a per-key buffer of the records still inside some open window.

    Sliding windows overlap arbitrarily, so instead of one accumulator per window the engine
    keeps the records (sorted by time) and folds a window when it is emitted. Each buffered
    record remembers the stream time at which it arrived: a window only counts records that
    arrived before it closed, which keeps results independent of batch boundaries.
    """

    def __init__(self, size: int, grace: int, agg: Aggregation, final: bool) -> None:
        super().__init__(grace, agg, final)
        self.size = size
        self.span = size + 1 + grace  # window close = start + span
        self.ts: dict[Any, list[int]] = {}
        self.rows: dict[Any, list[list[Any]]] = {}  # row: [t, value, arrival time, seq]
        self.pending: dict[Any, set[int]] = {}  # final mode: open windows by start
        self._windows: list[tuple[int, int, Any, int]] = []  # (close, n, key, start)
        self._expiry: list[tuple[int, int, Any]] = []  # (when the row leaves, n, key)
        self._n = 0

    def open(self, store: StateStore) -> None:
        self._open_meta(store)
        for part in (self.ts, self.rows, self.pending, self._windows, self._expiry):
            part.clear()
        for skey, value in store.items():
            if skey != _META:
                assert isinstance(skey, tuple)
                self._insert(skey[0], [value[0], value[1], value[2], skey[1]])
        if self.final:
            for key, ts in self.ts.items():
                for t in ts:
                    self._touch(key, ts, t, None)

    def _insert(self, key: Any, row: list[Any]) -> list[int]:
        ts = self.ts.get(key)
        if ts is None:
            self.ts[key] = ts = []
            self.rows[key] = []
        idx = bisect.bisect_right(ts, row[0])
        ts.insert(idx, row[0])
        self.rows[key].insert(idx, row)
        self._n += 1
        heapq.heappush(self._expiry, (row[0] + self.span + 1, self._n, key))
        return ts

    def _touch(self, key: Any, ts: list[int], u: int, touched: dict[Any, None] | None) -> None:
        """Register the windows a record at ``u`` belongs to (final) or updates (update)."""
        size = self.size
        starts = {u - size}
        lo = bisect.bisect_left(ts, u - size - 1)
        at = bisect.bisect_left(ts, u)
        starts.update(t + 1 for t in ts[lo:at])
        if bisect.bisect_right(ts, u + size + 1) > bisect.bisect_right(ts, u):
            starts.add(u + 1)
        if touched is not None:
            starts.update(t - size for t in ts[at : bisect.bisect_right(ts, u + size)])
        closed_before = self.stream_time - self.span
        for start in starts:
            if start <= closed_before:
                continue
            if touched is not None:
                touched[(key, start)] = None
                continue
            pend = self.pending.get(key)
            if pend is None:
                self.pending[key] = pend = set()
            if start not in pend:
                pend.add(start)
                self._n += 1
                heapq.heappush(self._windows, (start + self.span, self._n, key, start))

    def process(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        late: list[Record] = []
        fresh: dict[tuple[Any, int], list[Any]] = {}
        touched: dict[Any, None] | None = None if self.final else {}
        for rec in records:
            u = rec.timestamp
            if u > self.stream_time:
                self.stream_time = u
            if u + self.span <= self.stream_time:
                late.append(rec)
                continue
            row = [u, rec.value, self.stream_time, self.seq]
            fresh[(rec.key, self.seq)] = row
            self.seq += 1
            self._touch(rec.key, self._insert(rec.key, row), u, touched)
        out: list[Record] = []
        if touched is not None:
            out = [self._emit(key, start) for key, start in touched]
        while self._windows and self._windows[0][0] <= self.stream_time:
            _, _, key, start = heapq.heappop(self._windows)
            self.pending[key].discard(start)
            out.append(self._emit(key, start))
        self._prune(fresh)
        assert self.store is not None
        for skey, row in fresh.items():
            self.store.put(skey, [row[0], row[1], row[2]])
        self._save_meta()
        return out, late

    def _emit(self, key: Any, start: int) -> Record:
        ts, rows = self.ts[key], self.rows[key]
        close = start + self.span
        add = self.agg.add
        acc = self.agg.initial()
        for row in rows[bisect.bisect_left(ts, start) : bisect.bisect_right(ts, start + self.size)]:
            if row[2] < close:
                acc = add(acc, row[1])
        return window_result(key, start, start + self.size + 1, self.agg.result(acc))

    def _prune(self, fresh: dict[tuple[Any, int], list[Any]]) -> None:
        assert self.store is not None
        # Rows at or before ``gone`` are in no open window and start none: a row at t is kept
        # while the window starting at t + 1 is open, so a restore can derive that window.
        gone = self.stream_time - self.span - 1
        while self._expiry and self._expiry[0][0] <= self.stream_time:
            key = heapq.heappop(self._expiry)[2]
            ts = self.ts.get(key)
            if ts is None:
                continue
            n = bisect.bisect_right(ts, gone)
            rows = self.rows[key]
            for row in rows[:n]:
                if fresh.pop((key, row[3]), None) is None:
                    self.store.delete((key, row[3]))
            del ts[:n], rows[:n]
            if not ts:
                del self.ts[key], self.rows[key]
                self.pending.pop(key, None)

    def close_all(self) -> list[Record]:
        assert self.store is not None
        out: list[Record] = []
        if self.final:
            while self._windows:
                _, _, key, start = heapq.heappop(self._windows)
                out.append(self._emit(key, start))
        for key, rows in self.rows.items():
            for row in rows:
                self.store.delete((key, row[3]))
        for part in (self.ts, self.rows, self.pending, self._windows, self._expiry):
            part.clear()
        return out


class SessionEngine(_Engine):
    """Session windows: per key a short list of open sessions ``[start, last, acc]``.

    The expiry heap is lazy: extending or merging a session pushes a new entry, and entries
    whose session no longer has that start and end are skipped when popped.
    """

    def __init__(self, gap: int, grace: int, agg: Aggregation, final: bool) -> None:
        super().__init__(grace, agg, final)
        self.gap = gap
        self.sessions: dict[Any, list[list[Any]]] = {}
        self.persisted: set[tuple[Any, int]] = set()
        self._heap: list[tuple[int, int, Any, int, int]] = []
        self._n = 0

    def open(self, store: StateStore) -> None:
        self._open_meta(store)
        self.sessions.clear()
        self.persisted.clear()
        self._heap.clear()
        for skey, value in store.items():
            if skey != _META:
                assert isinstance(skey, tuple)
                key, start = skey
                self.sessions.setdefault(key, []).append([start, value[0], value[1]])
                self.persisted.add((key, start))
                self._schedule(key, start, value[0])

    def _schedule(self, key: Any, start: int, last: int) -> None:
        self._n += 1
        close = last + 1 + self.gap + self.grace
        heapq.heappush(self._heap, (close, self._n, key, start, last))

    def _find(self, key: Any, start: int) -> list[Any] | None:
        for sess in self.sessions.get(key, ()):
            if sess[0] == start:
                return sess
        return None

    def process(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        changed: dict[tuple[Any, int], None] = {}
        out: list[Record] = []
        late: list[Record] = []
        gap, grace, agg = self.gap, self.grace, self.agg
        for rec in records:
            u = rec.timestamp
            if u > self.stream_time:
                self.stream_time = u
            key = rec.key
            open_from = self.stream_time - gap - grace  # a session is open iff last >= this
            ss = self.sessions.get(key)
            hits = []
            if ss:
                hits = [s for s in ss if s[0] - gap <= u <= s[1] + gap and s[1] >= open_from]
            if not hits:
                if u + grace < self.stream_time:
                    late.append(rec)
                    continue
                sess = [u, u, agg.add(agg.initial(), rec.value)]
            else:
                hits.sort(key=lambda s: s[0])
                acc = hits[0][2]
                for other in hits[1:]:
                    acc = agg.merge(acc, other[2])
                start, last = min(u, hits[0][0]), max(u, max(h[1] for h in hits))
                for old in hits:
                    ss.remove(old)  # type: ignore[union-attr]
                    changed[(key, old[0])] = None
                    if not self.final and old[0] != start and (key, old[0]) in self.persisted:
                        out.append(window_result(key, old[0], old[1] + 1, None))
                sess = [start, last, agg.add(acc, rec.value)]
            self.sessions.setdefault(key, []).append(sess)
            changed[(key, sess[0])] = None
            self._schedule(key, sess[0], sess[1])
        return self._finish(changed, out), late

    def _finish(self, changed: dict[tuple[Any, int], None], out: list[Record]) -> list[Record]:
        assert self.store is not None
        result = self.agg.result
        if not self.final:
            for key, start in changed:
                sess = self._find(key, start)
                if sess is not None:
                    out.append(window_result(key, start, sess[1] + 1, result(sess[2])))
        heap = self._heap
        while heap and heap[0][0] <= self.stream_time:
            _, _, key, start, last = heapq.heappop(heap)
            sess = self._find(key, start)
            if sess is None or sess[1] != last:
                continue
            self._drop(key, sess)
            changed[(key, start)] = None
            if self.final:
                out.append(window_result(key, start, last + 1, result(sess[2])))
        for skey in changed:
            sess = self._find(*skey)
            if sess is not None:
                self.store.put(skey, [sess[1], sess[2]])
                self.persisted.add(skey)
            elif skey in self.persisted:
                self.store.delete(skey)
                self.persisted.discard(skey)
        self._save_meta()
        return out

    def _drop(self, key: Any, sess: list[Any]) -> None:
        ss = self.sessions[key]
        ss.remove(sess)
        if not ss:
            del self.sessions[key]

    def close_all(self) -> list[Record]:
        assert self.store is not None
        everything = [(s[1], key, s) for key, ss in self.sessions.items() for s in ss]
        everything.sort(key=lambda item: item[0])
        out = [
            window_result(key, s[0], s[1] + 1, self.agg.result(s[2]))
            for _, key, s in everything
            if self.final
        ]
        for skey in self.persisted:
            self.store.delete(skey)
        self.persisted.clear()
        self.sessions.clear()
        self._heap.clear()
        return out


class WindowedAggregate(Processor):
    """Aggregates each key's records per event-time window into one store.

    The live accumulators are kept in memory and written to the store once per touched window
    per batch; ``open`` rebuilds memory (and the expiry index) from the store, so a new
    instance on restored stores continues exactly where the previous one stopped.
    """

    def __init__(
        self,
        window: WindowSpec,
        aggregation: Aggregation,
        emit: EmitMode = "final",
        store_name: str = "window-aggregate",
    ) -> None:
        if emit not in ("final", "update"):
            raise ValueError(f"emit must be 'final' or 'update', got {emit!r}")
        self.window = window
        self.aggregation = aggregation
        self.emit = emit
        self.store_name = store_name
        self.stores = (store_name,)
        final = emit == "final"
        self._engine: FixedEngine | SlidingEngine | SessionEngine
        if isinstance(window, TumblingWindows):
            self._engine = FixedEngine(
                window.size_ms, window.size_ms, window.grace_ms, aggregation, final
            )
        elif isinstance(window, HoppingWindows):
            self._engine = FixedEngine(
                window.size_ms, window.step_ms, window.grace_ms, aggregation, final
            )
        elif isinstance(window, SlidingWindows):
            self._engine = SlidingEngine(window.size_ms, window.grace_ms, aggregation, final)
        elif isinstance(window, SessionWindows):
            if not aggregation.mergeable:
                raise ValueError(f"session windows need an aggregation with merge: {aggregation}")
            self._engine = SessionEngine(window.gap_ms, window.grace_ms, aggregation, final)
        else:
            raise TypeError(f"not a window spec: {window!r}")
        self._ctx: TaskContext | None = None

    def open(self, ctx: TaskContext) -> None:
        self._ctx = ctx
        store: StateStore = ctx.store(self.store_name)
        self._engine.open(store)

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        out, late = self._engine.process(records)
        if late:
            assert self._ctx is not None, "process() before open()"
            self._ctx.side_output("late", late)
        return out

    def close_all(self) -> list[Record]:
        """Close every open window now: emit them (final mode) and delete their state."""
        return self._engine.close_all()

    @property
    def stream_time(self) -> int:
        return self._engine.stream_time

    def __repr__(self) -> str:
        return f"WindowedAggregate({self.window!r}, {self.aggregation.name}, emit={self.emit!r})"
