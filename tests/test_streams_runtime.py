"""The streams runtime against the real embedded broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from headwater.client import read_lineage
from headwater.streams import App, Processor, Record, StreamsError, TaskContext
from streams_support import create_topics, produce_json, read_all, running


def test_filter_map_to_topic_with_lineage(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"orders": 3, "big-orders": 3})
    produce_json(
        bootstrap, "orders", [(f"c{i % 7}", {"id": i, "amount": i % 100}) for i in range(600)]
    )
    app = App("orders-app", bootstrap, state_dir=tmp_path)
    (
        app.stream("orders")
        .filter(lambda v: v["amount"] >= 50)
        .map(lambda v: {**v, "vip": True})
        .to_topic("big-orders")
    )
    with running(app):
        messages = read_all(bootstrap, "big-orders", 300)
    values = [json.loads(m.value()) for m in messages]
    assert sorted(v["id"] for v in values) == [i for i in range(600) if i % 100 >= 50]
    assert all(v["vip"] for v in values)
    lineage = read_lineage(messages[0].headers())
    assert lineage["source_topic"] == "orders"
    assert lineage["transform"].startswith("orders-app/")
    assert int(lineage["processed_at"]) > 0
    # Keys keep their partitions' order: per key, ids ascend.
    by_key: dict[bytes, list[int]] = {}
    for m in messages:
        by_key.setdefault(m.key(), []).append(json.loads(m.value())["id"])
    assert all(ids == sorted(ids) for ids in by_key.values())


def test_bad_records_go_to_dead_letters_and_app_keeps_running(
    bootstrap: str, tmp_path: Path
) -> None:
    create_topics(bootstrap, {"in": 1, "out": 1})
    produce_json(
        bootstrap,
        "in",
        [("a", {"n": 1}), ("b", b"{not json"), ("c", {"n": 0}), ("d", {"n": 4})],
    )
    app = App("dlq-app", bootstrap, state_dir=tmp_path)
    app.stream("in").map(lambda v: {"inverse": 1 / v["n"]}).to_topic("out")
    with running(app):
        out = read_all(bootstrap, "out", 2)
        dead = read_all(bootstrap, "dlq-app-dead-letters", 2)
    assert sorted(json.loads(m.value())["inverse"] for m in out) == [0.25, 1.0]
    reasons = {m.key(): dict(m.headers()) for m in dead}
    assert set(reasons) == {b"b", b"c"}
    assert (
        b"JSON" in reasons[b"b"][b"hw.dlq.error".decode()]
        or b"json" in reasons[b"b"]["hw.dlq.error"]
    )
    assert b"ZeroDivisionError" in reasons[b"c"]["hw.dlq.error"]
    assert reasons[b"c"]["hw.dlq.topic"] == b"in"
    assert reasons[b"c"]["hw.dlq.offset"] == b"2"


def test_missing_source_topic_is_a_clear_error(bootstrap: str, tmp_path: Path) -> None:
    app = App("lost-app", bootstrap, state_dir=tmp_path)
    app.stream("nowhere").to_topic("out")
    with pytest.raises(StreamsError, match="source topic 'nowhere' does not exist"):
        app.run()


def test_table_join_enriches(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"customers": 1}, {"cleanup.policy": "compact"})
    create_topics(bootstrap, {"purchases": 2, "enriched": 2})
    produce_json(bootstrap, "customers", [("c1", {"tier": "gold"}), ("c2", {"tier": "basic"})])
    produce_json(
        bootstrap,
        "purchases",
        [("p1", {"customer": "c1", "total": 10}), ("p2", {"customer": "c9", "total": 3})],
    )
    app = App("enrich-app", bootstrap, state_dir=tmp_path)
    customers = app.table("customers")
    (
        app.stream("purchases")
        .join_table(
            customers,
            lambda v, row: {**v, "tier": None if row is None else row["tier"]},
            key_fn=lambda v: v["customer"],
        )
        .to_topic("enriched")
    )
    with running(app):
        out = read_all(bootstrap, "enriched", 2)
    tiers = {json.loads(m.value())["customer"]: json.loads(m.value())["tier"] for m in out}
    assert tiers == {"c1": "gold", "c9": None}


class KeyCounter(Processor):
    """Counts records per key in a durable store and emits the running count."""

    stores = ("counts",)

    def open(self, ctx: TaskContext) -> None:
        self.store = ctx.store("counts")

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        out = []
        for r in records:
            count = self.store.get(r.key, 0) + 1
            self.store.put(r.key, count)
            out.append(r.replace(value={"key": r.key, "count": count}))
        return out


@pytest.mark.parametrize("guarantee", ["at-least-once", "exactly-once"])
def test_state_restores_from_changelog_on_a_new_machine(
    bootstrap: str, tmp_path: Path, guarantee: Any
) -> None:
    create_topics(bootstrap, {"clicks": 2, "counts": 2})
    produce_json(bootstrap, "clicks", [(f"k{i % 5}", {"i": i}) for i in range(100)])

    def build(state_dir: Path) -> App:
        app = App("count-app", bootstrap, state_dir=state_dir, guarantee=guarantee)
        app.stream("clicks").process(KeyCounter, stores=("counts",)).to_topic("counts")
        return app

    with running(build(tmp_path / "first")):
        read_all(bootstrap, "counts", 100)
    produce_json(bootstrap, "clicks", [(f"k{i % 5}", {"i": i}) for i in range(100, 150)])
    # A second instance with an empty state directory: state comes from the changelog only.
    with running(build(tmp_path / "second")):
        out = read_all(bootstrap, "counts", 150)
    finals: dict[str, int] = {}
    for m in out:
        value = json.loads(m.value())
        finals[value["key"]] = max(finals.get(value["key"], 0), value["count"])
    assert finals == {f"k{i}": 30 for i in range(5)}
    assert len(out) == 150


def test_join_of_topics_not_copartitioned_is_a_clear_error(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"left-4": 4, "right-2": 2})
    app = App("copart-app", bootstrap, state_dir=tmp_path)
    app.stream("left-4").join(app.stream("right-2"), lambda a, b: a, within_ms=1000).to_topic(
        "joined"
    )
    with pytest.raises(StreamsError, match=r"not co-partitioned \(left-4=4, right-2=2\)"):
        app.run()


def test_output_that_cannot_be_serialized_is_parked(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"raw": 1, "cooked": 1})
    produce_json(bootstrap, "raw", [("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])
    app = App("serialize-app", bootstrap, state_dir=tmp_path)
    app.stream("raw").map(lambda v: {"n": v["n"], "bad": {1, 2}} if v["n"] == 2 else v).to_topic(
        "cooked"
    )
    with running(app):
        out = read_all(bootstrap, "cooked", 2)
        dead = read_all(bootstrap, "serialize-app-dead-letters", 1)
    assert sorted(json.loads(m.value())["n"] for m in out) == [1, 3]
    assert [m.key() for m in dead] == [b"b"]
    assert b"not JSON-serializable" in dict(dead[0].headers())["hw.dlq.error"]


def test_missing_output_topic_is_created_with_the_sources_partitions(tmp_path: Path) -> None:
    from headwater.client import Admin
    from headwater.testing import embedded_broker

    with embedded_broker(tmp_path / "data", auto_create_topics=False) as strict:
        bootstrap = strict.bootstrap
        create_topics(bootstrap, {"src-3": 3})
        produce_json(bootstrap, "src-3", [(f"k{i}", {"i": i}) for i in range(30)])
        app = App("create-app", bootstrap, state_dir=tmp_path / "state")
        app.stream("src-3").to_topic("made-by-app")
        with running(app):
            out = read_all(bootstrap, "made-by-app", 30)
        assert len(out) == 30
        assert Admin(bootstrap).list_topics()["made-by-app"] == 3


def test_failing_stateful_operator_stops_the_app_without_committing(
    bootstrap: str, tmp_path: Path
) -> None:
    from headwater.client import Admin
    from headwater.streams import OperatorError

    create_topics(bootstrap, {"amounts": 1})
    produce_json(bootstrap, "amounts", [("k", {"amount": 1}), ("k", {"oops": True})])
    app = App("fail-app", bootstrap, state_dir=tmp_path, guarantee="exactly-once")
    app.stream("amounts").tumbling_window(1000).sum(lambda v: v["amount"]).to_topic("sums")
    with pytest.raises(OperatorError, match="stateful operator 'sum-"):
        app.run()
    # Nothing of the failed batch was committed: a fixed app starts from the beginning.
    assert Admin(bootstrap).committed("fail-app").get(("amounts", 0), -1) <= 0


def test_exactly_once_survives_a_fenced_producer(bootstrap: str, tmp_path: Path) -> None:
    """Another producer taking the app's transactional id makes the app's producer fail
    fatally (PRODUCER_FENCED); the app replaces it, reprocesses from its last commit and goes
    on, with every record in the output exactly once."""
    from confluent_kafka import Producer

    from streams_support import wait_until

    create_topics(bootstrap, {"in": 1, "out": 1})
    produce_json(bootstrap, "in", [(None, {"id": i}) for i in range(200)])
    app = App("fenced-app", bootstrap, state_dir=tmp_path, guarantee="exactly-once")
    app.stream("in").map(lambda v: {**v, "seen": True}).to_topic("out")
    with running(app) as stats:
        wait_until(lambda: stats() is not None and stats().commits > 0)
        instance = (tmp_path / "fenced-app" / "instance-id").read_text().strip()
        transactional_id = f"fenced-app-{instance}"
        intruder = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
        intruder.init_transactions(30)  # fences the app's producer
        produce_json(bootstrap, "in", [(None, {"id": i}) for i in range(200, 400)])
        values = read_all(bootstrap, "out", 400)
    ids = sorted(json.loads(m.value())["id"] for m in values)
    assert ids == list(range(400))


@pytest.mark.parametrize(("api_key", "action"), [(25, "close"), (26, "close"), (25, "delay:500")])
def test_exactly_once_survives_a_coordinator_lost_mid_commit(
    broker: Any, tmp_path: Path, api_key: int, action: str
) -> None:
    """The connection to the transaction coordinator drops in the middle of a commit
    (AddOffsetsToTxn or EndTxn): the app replaces what it must and goes on, every record once."""
    from streams_support import wait_until

    bootstrap = broker.bootstrap
    create_topics(bootstrap, {"in": 1, "out": 1})
    produce_json(bootstrap, "in", [(None, {"id": i}) for i in range(200)])
    app = App("lost-coordinator", bootstrap, state_dir=tmp_path, guarantee="exactly-once")
    app.stream("in").map(lambda v: {**v, "seen": True}).to_topic("out")
    with running(app) as stats:
        wait_until(lambda: stats() is not None and stats().commits > 0)
        broker.broker.faults[api_key] = action
        produce_json(bootstrap, "in", [(None, {"id": i}) for i in range(200, 400)])
        values = read_all(bootstrap, "out", 400)
    assert api_key not in broker.broker.faults  # the fault struck
    ids = sorted(json.loads(m.value())["id"] for m in values)
    assert ids == list(range(400))
