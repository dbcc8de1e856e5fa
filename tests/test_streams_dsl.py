"""The streams DSL run through the in-process test driver (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.streams import App, OperatorError, Record, TestDriver


def make_app() -> App:
    return App("dsl-app", "127.0.0.1:1")


def test_filter_map_flat_map_peek() -> None:
    app = make_app()
    seen: list[Any] = []
    (
        app.stream("in")
        .filter(lambda v: v["n"] % 2 == 0)
        .map(lambda v: v["n"] * 10)
        .flat_map(lambda n: [n, n + 1])
        .peek(lambda r: seen.append(r.value))
        .to_topic("out")
    )
    driver = TestDriver(app)
    driver.send_many("in", [(f"k{i}", {"n": i}, i) for i in range(5)])
    assert driver.values("out") == [0, 1, 20, 21, 40, 41]
    assert seen == driver.values("out")
    assert [r.key for r in driver.output("out")] == ["k0", "k0", "k2", "k2", "k4", "k4"]


def test_batch_operators_see_whole_batches() -> None:
    app = make_app()
    sizes: list[int] = []

    def flags(values: list[Any]) -> list[bool]:
        sizes.append(len(values))
        return [v > 2 for v in values]

    app.stream("in").filter_batch(flags).map_batch(lambda vs: [v * v for v in vs]).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [(None, i, 0) for i in range(6)])
    assert driver.values("out") == [9, 16, 25]
    assert sizes == [6]


def test_map_batch_must_keep_length() -> None:
    app = make_app()
    app.stream("in").map_batch(lambda vs: vs[:1]).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [(None, 1, 0), (None, 2, 0)])
    # Stateless failures are isolated per record: a batch of one passes, so nothing is lost.
    assert driver.values("out") == [1, 2]


def test_branch_first_match_and_merge() -> None:
    app = make_app()
    small, large, rest = app.stream("in").branch(
        lambda v: v < 10, lambda v: v < 100, lambda v: True
    )
    small.to_topic("small")
    large.to_topic("large")
    rest.to_topic("rest")
    small.map(lambda v: -v).merge(large).to_topic("merged")
    driver = TestDriver(app)
    driver.send_many("in", [(None, v, 0) for v in (1, 50, 500, 5)])
    assert driver.values("small") == [1, 5]
    assert driver.values("large") == [50]
    assert driver.values("rest") == [500]
    assert sorted(driver.values("merged")) == [-5, -1, 50]


def test_rekey_repartitions_so_equal_keys_meet() -> None:
    app = make_app()
    (
        app.stream("clicks")
        .rekey(lambda v: v["page"])
        .tumbling_window(1000)
        .count(emit="update")
        .to_topic("page-counts")
    )
    driver = TestDriver(app, partitions=4)
    driver.send_many("clicks", [(f"user{i}", {"page": f"p{i % 2}"}, 10 * i) for i in range(20)])
    latest: dict[str, int] = {}
    for r in driver.output("page-counts"):
        latest[r.key] = r.value["value"]
    assert latest == {"p0": 10, "p1": 10}


def test_tumbling_count_final_and_late_side_output() -> None:
    app = make_app()
    counts = app.stream("readings").tumbling_window(1000, grace_ms=100).count()
    counts.to_topic("counts")
    counts.late().to_topic("late")
    driver = TestDriver(app)
    driver.send_many("readings", [("a", 1, 0), ("a", 1, 500), ("b", 1, 900), ("a", 1, 1050)])
    assert driver.values("counts") == []  # window [0, 1000) closes at 1100
    driver.send("readings", 1, "a", timestamp=1200)
    assert sorted((r.key, r.value["value"]) for r in driver.output("counts")) == [
        ("a", 2),
        ("b", 1),
    ]
    driver.send("readings", 1, "b", timestamp=10)  # its window closed: late, not dropped
    assert [(r.key, r.timestamp) for r in driver.output("late")] == [("b", 10)]
    driver.close_windows()
    assert ("a", 2) in [(r.key, r.value["value"]) for r in driver.output("counts")[2:]]


@pytest.mark.parametrize(
    ("method", "expected"),
    [("sum", 6), ("min", 1), ("max", 3), ("mean", 2.0)],
)
def test_window_aggregations(method: str, expected: Any) -> None:
    app = make_app()
    windowed = app.stream("in").tumbling_window(1000)
    getattr(windowed, method)(lambda v: v["x"]).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [("k", {"x": x}, x) for x in (1, 2, 3)])
    driver.close_windows()
    assert [r.value["value"] for r in driver.output("out")] == [expected]


def test_custom_aggregate_and_session_window() -> None:
    app = make_app()
    (
        app.stream("in")
        .session_window(100)
        .aggregate(list, lambda acc, v: [*acc, v], merger=lambda a, b: a + b)
        .to_topic("sessions")
    )
    driver = TestDriver(app)
    driver.send_many("in", [("u", "a", 0), ("u", "b", 50), ("u", "c", 400)])
    driver.close_windows()
    sessions = [(r.value["start"], r.value["value"]) for r in driver.output("sessions")]
    assert sessions == [(0, ["a", "b"]), (400, ["c"])]


def test_stream_stream_join() -> None:
    app = make_app()
    orders = app.stream("orders")
    payments = app.stream("payments")
    orders.join(payments, lambda o, p: {"order": o, "paid": p}, within_ms=1000).to_topic(
        "paid-orders"
    )
    driver = TestDriver(app)
    driver.send("orders", "o1", "k1", timestamp=100)
    driver.send("payments", "p1", "k1", timestamp=600)
    driver.send("payments", "p2", "k2", timestamp=600)
    driver.send("payments", "p9", "k1", timestamp=5000)  # too far apart
    assert driver.values("paid-orders") == [{"order": "o1", "paid": "p1"}]


def test_table_join_in_driver() -> None:
    app = make_app()
    customers = app.table("customers")
    app.stream("orders").join_table(
        customers, lambda o, c: {**o, "name": c and c["name"]}, key_fn=lambda o: o["cust"]
    ).to_topic("out")
    driver = TestDriver(app)
    driver.send("customers", {"name": "Ada"}, "c1")
    driver.send("orders", {"cust": "c1"}, "o1")
    driver.send("orders", {"cust": "c2"}, "o2")
    assert driver.values("out") == [{"cust": "c1", "name": "Ada"}, {"cust": "c2", "name": None}]


def test_failing_record_goes_to_dead_letters_and_others_pass() -> None:
    app = make_app()
    app.stream("in").map(lambda v: 10 // v).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [(None, 5, 0), (None, 0, 0), (None, 2, 0)])
    assert driver.values("out") == [2, 5]
    assert len(driver.dead_letters) == 1
    record, reason = driver.dead_letters[0]
    assert record.value == 0 and "ZeroDivisionError" in reason


def test_stateful_failure_stops_with_a_clear_error() -> None:
    app = make_app()
    app.stream("in").tumbling_window(1000).sum(lambda v: v["x"]).to_topic("out")
    driver = TestDriver(app)
    with pytest.raises(OperatorError, match="stateful operator 'sum-"):
        driver.send("in", {"y": 1}, "k")


def test_unserializable_output_is_caught_in_tests() -> None:
    app = make_app()
    app.stream("in").map(lambda v: object()).to_topic("out")
    driver = TestDriver(app)
    with pytest.raises(ValueError, match="not JSON-serializable"):
        driver.send("in", 1)


def test_unknown_topic_in_driver() -> None:
    app = make_app()
    app.stream("in").to_topic("out")
    with pytest.raises(KeyError, match="not a source"):
        TestDriver(app).send("other", 1)


def test_custom_processor_with_store() -> None:
    from headwater.streams import Processor, TaskContext

    class Dedup(Processor):
        stores = ("seen",)

        def open(self, ctx: TaskContext) -> None:
            self.seen = ctx.store("seen")

        def process(self, records: list[Record], port: int = 0) -> list[Record]:
            fresh = []
            for r in records:
                if self.seen.get(r.value["id"]) is None:
                    self.seen.put(r.value["id"], True)
                    fresh.append(r)
            return fresh

    app = make_app()
    app.stream("in").process(Dedup, stores=("seen",)).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [(None, {"id": i % 3}, 0) for i in range(7)])
    assert [v["id"] for v in driver.values("out")] == [0, 1, 2]
    assert len(driver.store("seen")) == 3


def test_detect_anomalies_emits_only_outliers() -> None:
    app = make_app()
    app.stream("temps").detect_anomalies(lambda v: v["c"], threshold=4.0).to_topic("alerts")
    driver = TestDriver(app)
    normal = [("s1", {"c": 20.0 + (i % 5) * 0.1}, i * 1000) for i in range(50)]
    driver.send_many("temps", normal)
    assert driver.values("alerts") == []
    driver.send("temps", {"c": 95.0}, "s1", timestamp=60_000)
    alerts = driver.values("alerts")
    assert len(alerts) == 1 and alerts[0]["value"] == 95.0 and alerts[0]["score"] > 4


def test_validate_parks_invalid_records_with_reasons() -> None:
    def check(value: Any) -> list[str]:
        reasons = []
        if "id" not in value:
            reasons.append("id is required")
        if not 0 <= value.get("amount", 0) <= 100:
            reasons.append("amount out of range [0, 100]")
        return reasons

    app = make_app()
    app.stream("in").validate(check).to_topic("out")
    driver = TestDriver(app)
    driver.send_many("in", [(None, {"id": 1, "amount": 5}, 0), (None, {"amount": 500}, 0)])
    assert driver.values("out") == [{"id": 1, "amount": 5}]
    ((_, reason),) = driver.dead_letters
    assert "id is required" in reason and "amount out of range" in reason


def test_apply_arrow_runs_vectorized_code_once_per_batch() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    calls: list[int] = []

    def hot(table: pa.Table) -> pa.Table:
        calls.append(table.num_rows)
        table = table.filter(pc.greater(table["celsius"], 30))
        fahrenheit = pc.add(pc.multiply(table["celsius"], 9 / 5), 32)
        return table.append_column("fahrenheit", fahrenheit).drop_columns(["celsius"])

    app = make_app()
    app.stream("temps").apply_arrow(hot).to_topic("hot")
    driver = TestDriver(app)
    driver.send_many(
        "temps",
        [
            (f"s{i}", {"sensor": f"s{i}", "celsius": c}, 1000 + i)
            for i, c in enumerate([20.0, 35.0, 40.0])
        ],
    )
    assert calls == [3]
    out = driver.output("hot")
    assert [(r.key, r.timestamp, r.value) for r in out] == [
        ("s1", 1001, {"sensor": "s1", "fahrenheit": 95.0}),
        ("s2", 1002, {"sensor": "s2", "fahrenheit": 104.0}),
    ]
