"""Stream-stream windowed join: records of two streams with equal keys and close timestamps.

Semantics:

* Port 0 is the left stream, port 1 the right. A left record at ``tl`` and a right record at
  ``tr`` with equal keys join when ``|tl - tr| <= within_ms``; the output is
  ``joiner(left_value, right_value)`` with timestamp ``max(tl, tr)``, emitted as soon as the
  second of the pair arrives (either direction).
* Stream time is the largest timestamp seen on either port, advanced record by record and kept
  in the left store. A buffered record *expires* once ``t + within_ms + grace_ms < stream
  time``: no record that is not late could still join it. A record that arrives already
  expired is late and goes to the ``"late"`` side output.
* ``how="left"`` also emits ``joiner(left_value, None)`` for each left record that expired
  without a match, and ``how="outer"`` additionally ``joiner(None, right_value)`` for unmatched
  right records, stamped with the record's own time. They are emitted only on expiry, never
  early and then corrected (the Kafka Streams 3.1+ behaviour), so every output is final.
* :meth:`WindowJoin.close_all` expires everything at once (the test driver's end of input).

Each buffered record is one store entry ``(key, seq) -> [t, value, matched]``; an entry is
written when it arrives and again only when it becomes matched for the first time; the
stream time is one more entry, written when it advances.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, Literal

from headwater.streams._core import Processor, Record, StateStore, TaskContext

JoinHow = Literal["inner", "left", "outer"]
_META = ("__meta__",)


class WindowJoin(Processor):
    """Joins two co-partitioned streams within a time distance, buffering both sides."""

    def __init__(
        self,
        within_ms: int,
        grace_ms: int,
        joiner: Callable[[Any, Any], Any],
        how: JoinHow = "inner",
        left_store: str = "join-left",
        right_store: str = "join-right",
    ) -> None:
        if within_ms < 0 or grace_ms < 0:
            raise ValueError("within_ms and grace_ms must be >= 0")
        if how not in ("inner", "left", "outer"):
            raise ValueError(f"how must be 'inner', 'left' or 'outer', got {how!r}")
        if left_store == right_store:
            raise ValueError("the two sides need distinct stores")
        self.within_ms = within_ms
        self.grace_ms = grace_ms
        self.joiner = joiner
        self.how = how
        self.stores = (left_store, right_store)
        # Which sides emit their unmatched records (and so must remember being matched).
        self._outer = (how != "inner", how == "outer")
        self._ctx: TaskContext | None = None
        self._sides: tuple[StateStore, ...] = ()
        self._buffers: tuple[dict[Any, list[list[Any]]], ...] = ({}, {})
        self._expiry: list[tuple[int, int, int, Any]] = []  # (expires at, seq, side, key)
        self.stream_time = -1
        self._seq = 0
        self._saved_stream_time = -1

    def open(self, ctx: TaskContext) -> None:
        self._ctx = ctx
        self._sides = (ctx.store(self.stores[0]), ctx.store(self.stores[1]))
        self._buffers = ({}, {})
        self._expiry = []
        meta = self._sides[0].get(_META)
        self.stream_time = -1 if meta is None else meta[0]
        self._saved_stream_time = self.stream_time
        self._seq = 0
        for side, store in enumerate(self._sides):
            for skey, value in store.items():
                if skey != _META:
                    assert isinstance(skey, tuple)
                    key, seq = skey
                    self._buffer(side, key, [value[0], seq, value[1], value[2]])
                    # Sequence numbers only need to be unique among live entries.
                    self._seq = max(self._seq, seq + 1)
        for entries in self._buffers[0].values():
            entries.sort(key=lambda e: e[1])
        for entries in self._buffers[1].values():
            entries.sort(key=lambda e: e[1])

    def _buffer(self, side: int, key: Any, entry: list[Any]) -> None:
        self._buffers[side].setdefault(key, []).append(entry)
        expires_at = entry[0] + self.within_ms + self.grace_ms + 1
        heapq.heappush(self._expiry, (expires_at, entry[1], side, key))

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        assert port in (0, 1), f"a join has ports 0 and 1, not {port}"
        theirs = self._buffers[1 - port]
        track = self._outer[1 - port]
        within, slack = self.within_ms, self.within_ms + self.grace_ms
        joiner = self.joiner
        changed: tuple[dict[tuple[Any, int], list[Any]], ...] = ({}, {})
        out: list[Record] = []
        late: list[Record] = []
        first_seq = self._seq
        for rec in records:
            t = rec.timestamp
            if t > self.stream_time:
                self.stream_time = t
            horizon = self.stream_time - slack  # entries older than this have expired
            if t < horizon:
                late.append(rec)
                continue
            key = rec.key
            entry = [t, self._seq, rec.value, False]
            self._seq += 1
            for other in theirs.get(key, ()):
                if other[0] >= horizon and -within <= other[0] - t <= within:
                    value = (
                        joiner(rec.value, other[2]) if port == 0 else joiner(other[2], rec.value)
                    )
                    out.append(rec.replace(value=value, timestamp=max(t, other[0])))
                    entry[3] = True
                    if track and not other[3]:
                        other[3] = True
                        changed[1 - port][(key, other[1])] = other
            self._buffer(port, key, entry)
            changed[port][(key, entry[1])] = entry
        if late:
            assert self._ctx is not None, "process() before open()"
            self._ctx.side_output("late", late)
        out += self._expire(self.stream_time, first_seq, changed)
        self._write(changed)
        return out

    def _expire(
        self, now: int | None, first_seq: int, changed: tuple[dict[tuple[Any, int], list[Any]], ...]
    ) -> list[Record]:
        """Drop entries expiring by ``now`` (all when None), emitting unmatched outer rows."""
        out: list[Record] = []
        expiry = self._expiry
        while expiry and (now is None or expiry[0][0] <= now):
            _, seq, side, key = heapq.heappop(expiry)
            entries = self._buffers[side][key]
            for i, entry in enumerate(entries):
                if entry[1] == seq:
                    del entries[i]
                    break
            else:
                raise AssertionError(f"expiry index out of step: side={side} seq={seq}")
            if not entries:
                del self._buffers[side][key]
            if self._outer[side] and not entry[3]:
                value = self.joiner(entry[2], None) if side == 0 else self.joiner(None, entry[2])
                out.append(Record(key, value, entry[0]))
            changed[side].pop((key, seq), None)
            # Sequence numbers grow, so an entry from this batch (never written) is >= first_seq.
            if seq < first_seq:
                self._sides[side].delete((key, seq))
        return out

    def _write(self, changed: tuple[dict[tuple[Any, int], list[Any]], ...]) -> None:
        for side, entries in enumerate(changed):
            store = self._sides[side]
            for skey, entry in entries.items():
                store.put(skey, [entry[0], entry[2], entry[3]])
        if self.stream_time != self._saved_stream_time:
            self._sides[0].put(_META, [self.stream_time])
            self._saved_stream_time = self.stream_time

    def close_all(self) -> list[Record]:
        """Expire every buffered record now, emitting unmatched ones for left/outer joins."""
        out = self._expire(None, self._seq, ({}, {}))
        self._write(({}, {}))
        return out

    def __repr__(self) -> str:
        return f"WindowJoin(within_ms={self.within_ms}, grace_ms={self.grace_ms}, how={self.how!r})"
