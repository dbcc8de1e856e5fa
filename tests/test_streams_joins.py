"""Stream-stream windowed join driven directly: inner/left/outer, window bounds, expiry, late
records and restore onto a fresh instance."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.streams._core import MemoryStore, Record
from headwater.streams._joins import JoinHow, WindowJoin
from streams_context import Ctx


def pair(left: Any, right: Any) -> tuple[Any, Any]:
    return (left, right)


def make(
    how: JoinHow = "inner", within: int = 10, grace: int = 0, ctx: Ctx | None = None
) -> tuple[WindowJoin, Ctx]:
    proc = WindowJoin(within, grace, pair, how, "L", "R")
    ctx = ctx or Ctx()
    proc.open(ctx)
    return proc, ctx


def rec(key: Any, t: int, value: Any) -> Record:
    return Record(key, value, t)


def seen(out: list[Record]) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in out]


def test_inner_join_emits_on_match_in_both_directions() -> None:
    proc, _ = make()
    assert proc.process([rec("a", 100, "l1")], 0) == []
    out = proc.process([rec("a", 105, "r1"), rec("b", 105, "rb")], 1)
    assert seen(out) == [("a", ("l1", "r1"), 105)]
    out = proc.process([rec("a", 98, "l2")], 0)
    assert seen(out) == [("a", ("l2", "r1"), 105)]


def test_within_bound_is_inclusive() -> None:
    proc, _ = make(within=10, grace=100)
    proc.process([rec("a", 100, "l")], 0)
    out = proc.process([rec("a", 110, "in"), rec("a", 111, "out"), rec("a", 90, "in2")], 1)
    assert [r.value for r in out] == [("l", "in"), ("l", "in2")]
    assert proc.process([rec("a", 89, "out2")], 1) == []


def test_inner_join_never_emits_unmatched() -> None:
    proc, _ = make()
    proc.process([rec("a", 0, "l")], 0)
    assert proc.process([rec("a", 1000, "r")], 1) == []
    assert proc.close_all() == []


def test_left_join_emits_unmatched_only_on_expiry() -> None:
    proc, _ = make("left", within=10, grace=5)
    assert proc.process([rec("a", 100, "l1"), rec("b", 100, "lb")], 0) == []
    out = proc.process([rec("a", 104, "r1")], 1)
    assert seen(out) == [("a", ("l1", "r1"), 104)]
    # 100 + 10 + 5 = 115: still joinable at stream time 115, expired after it.
    assert proc.process([rec("c", 115, "lc")], 0) == []
    out = proc.process([rec("c", 116, "rc")], 1)
    assert seen(out) == [("c", ("lc", "rc"), 116), ("b", ("lb", None), 100)]
    assert proc.close_all() == []  # the right record and lc are matched; nothing left over


def test_outer_join_emits_both_unmatched_sides() -> None:
    proc, _ = make("outer", within=10)
    proc.process([rec("a", 0, "l")], 0)
    proc.process([rec("b", 5, "r")], 1)
    out = proc.process([rec("z", 100, "far")], 1)
    assert sorted(seen(out), key=repr) == [("a", ("l", None), 0), ("b", (None, "r"), 5)]
    assert seen(proc.close_all()) == [("z", (None, "far"), 100)]


def test_left_join_right_unmatched_is_not_emitted() -> None:
    proc, _ = make("left")
    proc.process([rec("b", 5, "r")], 1)
    assert proc.close_all() == []


def test_late_records_go_to_side_output() -> None:
    proc, ctx = make("left", within=10, grace=0)
    proc.process([rec("a", 100, "l")], 0)
    out = proc.process([rec("a", 89, "old"), rec("a", 90, "ok")], 1)
    assert [r.value for r in ctx.side["late"]] == ["old"]
    assert [r.value for r in out] == [("l", "ok")]


def test_expiry_deletes_store_entries() -> None:
    proc, ctx = make("inner", within=10)
    proc.process([rec("a", 0, "l"), rec("b", 1, "l")], 0)
    assert len(ctx.stores["L"]) == 3  # two entries and the stream-time entry
    proc.process([rec("c", 100, "r")], 1)
    assert len(ctx.stores["L"]) == 1
    assert len(ctx.stores["R"]) == 1


def test_matched_flag_written_once() -> None:
    proc, ctx = make("left", within=10, grace=50)
    proc.process([rec("a", 0, "l")], 0)
    ctx.stores["L"].take_changes()
    proc.process([rec("a", 0, "r1"), rec("a", 0, "r2")], 1)
    assert ctx.stores["L"].take_changes() == [(("a", 0), [0, "l", True])]
    proc.process([rec("a", 0, "r3")], 1)
    assert ctx.stores["L"].take_changes() == []


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        WindowJoin(-1, 0, pair)
    with pytest.raises(ValueError):
        WindowJoin(1, 0, pair, "cross")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WindowJoin(1, 0, pair, "inner", "s", "s")


# -- properties --------------------------------------------------------------------------------

Event = tuple[int, str, int, int]  # port, key, timestamp, value

event_lists = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from("ab"), st.integers(0, 300), st.integers(0, 9)),
    max_size=40,
)


def naive(events: list[Event], how: JoinHow, within: int, grace: int) -> Counter[Any]:
    """Quadratic reference: pairs whose earlier member had not expired when the later came."""
    stream_time, accepted, expected = -1, [], Counter[Any]()
    for port, key, t, value in events:
        stream_time = max(stream_time, t)
        horizon = stream_time - within - grace
        if t < horizon:
            continue
        for other_port, other_key, other_t, other_value, _ in accepted:
            if (
                other_port != port
                and other_key == key
                and other_t >= horizon
                and abs(other_t - t) <= within
            ):
                lv, rv = (value, other_value) if port == 0 else (other_value, value)
                expected[(key, (lv, rv), max(t, other_t))] += 1
        accepted.append((port, key, t, value, len(accepted)))
    matched = {
        (a[4]) for a in accepted for b in accepted if a[4] != b[4] and joined(a, b, expected)
    }
    for port, key, t, value, n in accepted:
        if n in matched:
            continue
        if port == 0 and how != "inner":
            expected[(key, (value, None), t)] += 1
        if port == 1 and how == "outer":
            expected[(key, (None, value), t)] += 1
    return expected


def joined(a: Any, b: Any, expected: Counter[Any]) -> bool:
    if a[0] == b[0] or a[1] != b[1]:
        return False
    lv, rv = (a[3], b[3]) if a[0] == 0 else (b[3], a[3])
    return expected[(a[1], (lv, rv), max(a[2], b[2]))] > 0


def run(
    events: list[Event], how: JoinHow, within: int, grace: int, cuts: list[int]
) -> Counter[Any]:
    stores: dict[str, MemoryStore] = {}
    out: list[Record] = []
    proc = None
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    for lo, hi in pairwise(bounds):
        proc, _ = make(how, within, grace, Ctx(stores))
        for port, key, t, value in events[lo:hi]:
            out += proc.process([rec(key, t, value)], port)
    assert proc is not None
    out += proc.close_all()
    return Counter(seen(out))


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@given(events=event_lists, within=st.integers(0, 50), grace=st.integers(0, 50))
def test_join_matches_a_naive_reference(
    how: JoinHow, events: list[Event], within: int, grace: int
) -> None:
    # Distinct values keep the reference's "was it matched" bookkeeping unambiguous.
    events = [(p, k, t, i) for i, (p, k, t, _) in enumerate(events)]
    assert run(events, how, within, grace, []) == naive(events, how, within, grace)


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
@given(events=event_lists, cuts=st.lists(st.integers(0, 40), max_size=3))
def test_restore_at_any_split_matches_an_uninterrupted_run(
    how: JoinHow, events: list[Event], cuts: list[int]
) -> None:
    assert run(events, how, 20, 10, cuts) == run(events, how, 20, 10, [])
