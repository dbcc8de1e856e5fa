"""Windowed aggregations driven directly: window types, grace and late output, emit modes,
aggregations, and restore onto a fresh instance from the same stores."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.streams._aggregations import Aggregation, Count, Max, Mean, Min, Reduce, Sum
from headwater.streams._core import MemoryStore, Record
from headwater.streams._windows import (
    EmitMode,
    WindowedAggregate,
    WindowSpec,
    hopping,
    session,
    sliding,
    tumbling,
)
from streams_context import Ctx


def make(
    window: WindowSpec,
    agg: Aggregation | None = None,
    emit: EmitMode = "final",
    ctx: Ctx | None = None,
) -> tuple[WindowedAggregate, Ctx]:
    proc = WindowedAggregate(window, agg or Count(), emit, "w")
    ctx = ctx or Ctx()
    proc.open(ctx)
    return proc, ctx


def recs(*items: tuple[Any, int] | tuple[Any, int, Any]) -> list[Record]:
    return [Record(i[0], i[2] if len(i) > 2 else 1, i[1]) for i in items]


def results(out: list[Record]) -> list[tuple[Any, int, int, Any]]:
    return [(r.key, r.value["start"], r.value["end"], r.value["value"]) for r in out]


# -- window types ------------------------------------------------------------------------------


def test_tumbling_final_emits_each_window_once_when_closed() -> None:
    proc, _ = make(tumbling(1000))
    out = proc.process(recs(("a", 0), ("a", 500), ("b", 100), ("a", 999), ("a", 1000)))
    assert sorted(results(out)) == [("a", 0, 1000, 3), ("b", 0, 1000, 1)]
    assert all(r.timestamp == 999 for r in out)
    out = proc.process(recs(("a", 2500)))
    assert results(out) == [("a", 1000, 2000, 1)]
    assert results(proc.close_all()) == [("a", 2000, 3000, 1)]
    assert proc.flush() == []


def test_tumbling_update_emits_each_touched_window_once_per_batch() -> None:
    proc, _ = make(tumbling(1000), emit="update")
    out = proc.process(recs(("a", 0), ("a", 10), ("b", 20)))
    assert results(out) == [("a", 0, 1000, 2), ("b", 0, 1000, 1)]
    out = proc.process(recs(("a", 30), ("a", 1500)))
    assert results(out) == [("a", 0, 1000, 3), ("a", 1000, 2000, 1)]
    assert proc.close_all() == []


def test_hopping_windows_each_record_in_size_over_step_windows() -> None:
    proc, _ = make(hopping(1000, 500))
    out = proc.process(recs(("a", 700), ("a", 1200)))
    assert results(out) == [("a", 0, 1000, 1)]
    got = sorted(results(out + proc.close_all()))
    assert got == [("a", 0, 1000, 1), ("a", 500, 1500, 2), ("a", 1000, 2000, 1)]


def test_hopping_record_in_some_open_window_is_not_late() -> None:
    proc, ctx = make(hopping(1000, 500))
    out = proc.process(recs(("a", 1000), ("a", 900)))
    # [0, 1000) closed at stream time 1000; 900 still fits [500, 1500).
    assert results(out) == []
    assert ctx.side["late"] == []
    assert sorted(results(proc.close_all())) == [("a", 500, 1500, 2), ("a", 1000, 2000, 1)]


def test_sliding_windows_follow_records() -> None:
    proc, _ = make(sliding(10, grace_ms=50), Sum())
    out = proc.process(recs(("a", 0, 1), ("a", 8, 2)))
    assert out == []
    got = sorted(results(proc.close_all()))
    # [t-10, t] for each record, and [1, 11] once record 0 slides out (reported half-open).
    assert got == [("a", -10, 1, 1), ("a", -2, 9, 3), ("a", 1, 12, 2)]


def test_sliding_final_emits_as_stream_time_passes() -> None:
    proc, _ = make(sliding(10), Sum())
    out = proc.process(recs(("a", 0, 1), ("a", 8, 2), ("a", 30, 4)))
    assert sorted(results(out)) == [("a", -10, 1, 1), ("a", -2, 9, 3), ("a", 1, 12, 2)]
    assert [r.timestamp for r in out] == [0, 8, 11]
    assert results(proc.close_all()) == [("a", 20, 31, 4)]


def test_sliding_update_updates_every_window_holding_the_record() -> None:
    proc, _ = make(sliding(10, grace_ms=100), Sum(), emit="update")
    proc.process(recs(("a", 0, 1), ("a", 8, 2)))
    out = proc.process(recs(("a", 5, 10)))
    # Every window holding 5: its own, 8's, the one after 0, and the new one after 5.
    # The window ending at 0 does not reach 5 and is not touched.
    assert sorted(results(out)) == [
        ("a", -5, 6, 11),
        ("a", -2, 9, 13),
        ("a", 1, 12, 12),
        ("a", 6, 17, 2),
    ]


def test_session_windows_and_merge_on_bridging_record() -> None:
    proc, _ = make(session(10, grace_ms=20))
    proc.process(recs(("a", 0), ("a", 20), ("b", 5)))
    out = proc.process(recs(("a", 10)))
    assert out == []
    got = sorted(results(proc.close_all()))
    assert got == [("a", 0, 21, 3), ("b", 5, 6, 1)]


def test_session_closes_after_gap_and_grace() -> None:
    proc, ctx = make(session(10))
    out = proc.process(recs(("a", 0), ("a", 10), ("b", 20)))
    assert results(out) == []
    out = proc.process(recs(("b", 21)))
    assert results(out) == [("a", 0, 11, 2)]
    assert out[0].timestamp == 10
    proc.process(recs(("a", 5)))
    assert [r.timestamp for r in ctx.side["late"]] == [5]


def test_session_update_mode_retracts_absorbed_session() -> None:
    proc, _ = make(session(10, grace_ms=20), emit="update")
    assert results(proc.process(recs(("a", 0)))) == [("a", 0, 1, 1)]
    assert results(proc.process(recs(("a", 20)))) == [("a", 20, 21, 1)]
    out = proc.process(recs(("a", 10)))
    assert results(out) == [("a", 20, 21, None), ("a", 0, 21, 3)]


def test_session_needs_mergeable_aggregation() -> None:
    with pytest.raises(ValueError, match="merge"):
        WindowedAggregate(session(10), Reduce(list, lambda a, v: [*a, v]), "final", "w")
    WindowedAggregate(session(10), Reduce(list, lambda a, v: [*a, v], merger=lambda a, b: a + b))


@pytest.mark.parametrize(
    "bad",
    [
        lambda: tumbling(0),
        lambda: tumbling(10, grace_ms=-1),
        lambda: hopping(10, 20),
        lambda: session(-1),
        lambda: WindowedAggregate(tumbling(10), Count(), "sometimes", "w"),  # type: ignore[arg-type]
    ],
)
def test_bad_configuration_is_rejected(bad: Any) -> None:
    with pytest.raises(ValueError):
        bad()


# -- grace and late records --------------------------------------------------------------------


def test_grace_accepts_out_of_order_then_late_goes_to_side_output() -> None:
    proc, ctx = make(tumbling(1000, grace_ms=500))
    out = proc.process(recs(("a", 100), ("a", 1400), ("a", 900)))
    assert out == []
    out = proc.process(recs(("a", 1500), ("a", 200)))
    assert results(out) == [("a", 0, 1000, 2)]
    assert [(r.key, r.timestamp) for r in ctx.side["late"]] == [("a", 200)]


def test_late_check_uses_stream_time_record_by_record() -> None:
    # Within one batch, a record after the one that closed its window is late.
    proc, ctx = make(tumbling(1000))
    out = proc.process(recs(("a", 10), ("a", 1000), ("a", 20)))
    assert results(out) == [("a", 0, 1000, 1)]
    assert [r.timestamp for r in ctx.side["late"]] == [20]


# -- aggregations ------------------------------------------------------------------------------

VALUES = [("k", 0, {"x": 4}), ("k", 1, {"x": -2}), ("k", 2, {"x": 7}), ("k", 3, {"x": 1})]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        (Count(), 4),
        (Sum(lambda v: v["x"]), 10),
        (Min(lambda v: v["x"]), -2),
        (Max(lambda v: v["x"]), 7),
        (Mean(lambda v: v["x"]), 2.5),
        (Reduce(lambda: "", lambda acc, v: acc + str(v["x"]), result_fn=len), 5),
        (Reduce(lambda: [], lambda acc, v: [*acc, v["x"]], result_fn=sorted), [-2, 1, 4, 7]),
    ],
)
def test_aggregations(agg: Aggregation, expected: Any) -> None:
    for emit in ("final", "update"):
        proc, _ = make(tumbling(10), agg, emit)  # type: ignore[arg-type]
        out = proc.process(recs(*VALUES))
        out += proc.close_all()
        assert results(out)[-1] == ("k", 0, 10, expected)


def test_default_value_fn_is_the_value_itself() -> None:
    for agg, expected in [(Sum(), 6), (Min(), 1), (Max(), 3), (Mean(), 2.0)]:
        proc, _ = make(tumbling(10), agg)
        proc.process(recs(("k", 0, 1), ("k", 1, 2), ("k", 2, 3)))
        assert results(proc.close_all()) == [("k", 0, 10, expected)]


def test_merges() -> None:
    assert Count().merge(2, 3) == 5
    assert Min().merge(None, 3) == 3 and Min().merge(2, 3) == 2
    assert Max().merge(4, None) == 4 and Max().merge(2, 3) == 3
    assert Mean().merge([1, 1], [5, 2]) == [6, 3]
    assert Mean().result(Mean().initial()) is None


# -- store writes ------------------------------------------------------------------------------


def test_one_put_per_touched_window_per_batch() -> None:
    proc, ctx = make(tumbling(1000))
    ctx.stores["w"].take_changes()
    proc.process([Record(f"k{i % 10}", 1, i % 1000) for i in range(1000)])
    changes = ctx.stores["w"].take_changes()
    assert len(changes) == 10 + 1  # ten windows and the stream-time entry
    proc.process(recs(("k0", 1500)))
    changes = dict(ctx.stores["w"].take_changes())
    assert sum(1 for v in changes.values() if v is None) == 10  # closed windows deleted


def test_window_closed_in_the_batch_that_opened_it_never_touches_the_store() -> None:
    proc, ctx = make(tumbling(1000))
    ctx.stores["w"].take_changes()
    proc.process(recs(("a", 0), ("a", 5000)))
    keys = {k for k, _ in ctx.stores["w"].take_changes()}
    assert ("a", 0) not in keys


# -- properties: naive recount, restore at any point -------------------------------------------

events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 5000)), min_size=0, max_size=60
)


@given(events, st.integers(1, 1500), st.integers(0, 1000))
def test_tumbling_counts_equal_a_naive_recount(
    items: list[tuple[str, int]], size: int, grace: int
) -> None:
    proc, ctx = make(tumbling(size, grace_ms=grace))
    out = proc.process(recs(*items)) + proc.close_all()
    stream_time, expected, late = -1, Counter[tuple[str, int]](), []
    for key, t in items:
        stream_time = max(stream_time, t)
        start = t - t % size
        if start + size + grace <= stream_time:
            late.append((key, t))
        else:
            expected[(key, start)] += 1
    assert Counter({(k, s): v for k, s, _, v in results(out)}) == expected
    assert len(out) == len(expected)
    assert [(r.key, r.timestamp) for r in ctx.side["late"]] == late


SPECS: list[tuple[str, WindowSpec, Aggregation]] = [
    ("tumbling", tumbling(1000, grace_ms=300), Count()),
    ("hopping", hopping(1000, 250, grace_ms=200), Sum(lambda v: v)),
    ("sliding", sliding(400, grace_ms=300), Sum(lambda v: v)),
    ("session", session(200, grace_ms=300), Mean(lambda v: v)),
    ("session-max", session(150), Max(lambda v: v)),
]


def run_in_pieces(
    window: WindowSpec, agg: Aggregation, emit: EmitMode, items: list[Record], cuts: list[int]
) -> tuple[list[Record], list[Record]]:
    """Feed ``items`` cut at ``cuts``, moving to a new instance on the same stores each time."""
    stores: dict[str, MemoryStore] = {}
    out: list[Record] = []
    late: list[Record] = []
    bounds = [0, *sorted(cuts), len(items)]
    proc = None
    for lo, hi in pairwise(bounds):
        proc, ctx = make(window, agg, emit, Ctx(stores))
        out += proc.process(items[lo:hi])
        late += ctx.side["late"]
    assert proc is not None
    return out + proc.close_all(), late


def canonical(out: list[Record], emit: EmitMode) -> Any:
    if emit == "final":
        return Counter((r.key, r.timestamp, repr(r.value)) for r in out)
    last: dict[tuple[Any, int], Any] = {}
    for r in out:
        last[(r.key, r.value["start"])] = r.value["value"]
    return {k: v for k, v in last.items() if v is not None}


@pytest.mark.parametrize(("name", "window", "agg"), SPECS, ids=[s[0] for s in SPECS])
@pytest.mark.parametrize("emit", ["final", "update"])
@given(
    items=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3000), st.integers(-5, 5)),
        max_size=50,
    ),
    cuts=st.lists(st.integers(0, 50), max_size=3),
)
def test_restore_at_any_split_matches_an_uninterrupted_run(
    name: str,
    window: WindowSpec,
    agg: Aggregation,
    emit: EmitMode,
    items: list[tuple[str, int, int]],
    cuts: list[int],
) -> None:
    records = recs(*items)
    cuts = [min(c, len(records)) for c in cuts]
    whole, whole_late = run_in_pieces(window, agg, emit, records, [])
    split, split_late = run_in_pieces(window, agg, emit, records, cuts)
    assert canonical(split, emit) == canonical(whole, emit)
    assert split_late == whole_late


@given(st.lists(st.tuples(st.sampled_from("xy"), st.integers(0, 2000)), max_size=40))
def test_no_record_is_dropped_silently(items: list[tuple[str, int]]) -> None:
    proc, ctx = make(tumbling(300, grace_ms=100))
    out = proc.process(recs(*items)) + proc.close_all()
    assert sum(r.value["value"] for r in out) + len(ctx.side["late"]) == len(items)


def test_stream_time_survives_restore() -> None:
    stores: dict[str, MemoryStore] = {}
    first, _ = make(tumbling(1000), ctx=Ctx(stores))
    first.process(recs(("a", 5000)))
    second, ctx = make(tumbling(1000), ctx=Ctx(stores))
    assert second.stream_time == 5000
    second.process(recs(("a", 100)))
    assert [r.timestamp for r in ctx.side["late"]] == [100]


def test_a_sliding_window_started_by_a_pruned_record_survives_a_restore() -> None:
    # The window after the record at 39 opens at 40 and is still open at stream time 740;
    # the record at 39 is in no open window, but a restore needs it to know the window exists.
    records = recs(("a", 39, 0), ("a", 40, 0), ("a", 740, 0))
    window, agg = sliding(400, grace_ms=300), Sum(lambda v: v)
    whole, _ = run_in_pieces(window, agg, "final", records, [])
    split, _ = run_in_pieces(window, agg, "final", records, [3])
    assert canonical(split, "final") == canonical(whole, "final")
    assert ("a", 440) in {(r.key, r.timestamp) for r in split}
