"""Consumer lag against the real broker: committed offsets against end offsets, per partition,
and lag alerts that wait for the lag to stay high."""

from __future__ import annotations

import time

from headwater.client import (
    Admin,
    Consumer,
    TopicPartition,
    new_consumer,
    new_producer,
    produce_all,
)
from headwater.monitor import LagMonitor, LagThreshold, consumer_lag

TOPIC = "orders"


def _fill(bootstrap: str, counts: dict[int, int]) -> None:
    Admin(bootstrap).create_topic(TOPIC, len(counts), {})
    for partition, count in counts.items():
        records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(count)]
        produce_all(bootstrap, TOPIC, records, partition=partition)


def _read_and_commit(bootstrap: str, group: str, reads: dict[int, int]) -> None:
    """Consume the first ``reads[p]`` records of each partition as ``group`` and commit them."""
    consumer: Consumer = new_consumer(bootstrap, group, {"enable.auto.commit": False})
    try:
        for partition, count in reads.items():
            consumer.assign([TopicPartition(TOPIC, partition, 0)])
            seen = 0
            while seen < count:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    continue
                assert message.partition() == partition
                seen += 1
            consumer.commit(offsets=[TopicPartition(TOPIC, partition, count)], asynchronous=False)
    finally:
        consumer.close()


def test_lag_is_the_unread_count_per_partition(bootstrap: str) -> None:
    _fill(bootstrap, {0: 30, 1: 20, 2: 7})
    _read_and_commit(bootstrap, "billing", {0: 10, 1: 20, 2: 3})

    lags = consumer_lag(bootstrap, ["billing"])
    billing = lags["billing"]
    by_partition = {(p.topic, p.partition): p for p in billing.partitions}
    assert {k: (p.committed, p.end, p.lag) for k, p in by_partition.items()} == {
        (TOPIC, 0): (10, 30, 20),
        (TOPIC, 1): (20, 20, 0),
        (TOPIC, 2): (3, 7, 4),
    }
    assert billing.total == 24
    assert billing.to_json() == {
        "total": 24,
        "partitions": {"orders[0]": 20, "orders[1]": 0, "orders[2]": 4},
    }

    # More records arrive: lag grows by exactly that many, where they landed.
    produce_all(bootstrap, TOPIC, [(b"k", b"v")] * 5, partition=1)
    assert consumer_lag(bootstrap, ["billing"])["billing"].to_json()["partitions"] == {
        "orders[0]": 20,
        "orders[1]": 5,
        "orders[2]": 4,
    }


def test_groups_are_discovered_and_internal_ones_skipped(bootstrap: str) -> None:
    _fill(bootstrap, {0: 12})
    _read_and_commit(bootstrap, "search", {0: 12})
    _read_and_commit(bootstrap, "audit", {0: 2})
    _read_and_commit(bootstrap, "__internal-probe", {0: 1})

    lags = consumer_lag(bootstrap)
    assert {g: lag.total for g, lag in lags.items()} == {"search": 0, "audit": 10}


def test_a_named_group_without_commits_has_zero_lag(bootstrap: str) -> None:
    _fill(bootstrap, {0: 3})
    lag = consumer_lag(bootstrap, ["not-started"])["not-started"]
    assert lag.partitions == () and lag.total == 0


def test_records_of_an_open_transaction_are_not_lag(bootstrap: str) -> None:
    _fill(bootstrap, {0: 4})
    _read_and_commit(bootstrap, "reporting", {0: 4})
    producer = new_producer(bootstrap, overrides={"transactional.id": "monitor-test"})
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(6):
        producer.produce(TOPIC, value=f"pending-{i}".encode(), partition=0)
    producer.flush()
    # A read_committed group cannot read past the open transaction, so it is not behind yet.
    assert consumer_lag(bootstrap, ["reporting"])["reporting"].total == 0
    producer.commit_transaction()
    # Six records plus the commit marker are now readable past the group's position.
    assert consumer_lag(bootstrap, ["reporting"])["reporting"].total == 7


def test_threshold_alerts_only_after_the_lag_stays_high() -> None:
    rule = LagThreshold(threshold=100, duration_ms=5_000)
    assert rule.observe({"etl": 500}, now_ms=0) == []
    assert rule.observe({"etl": 800}, now_ms=4_999) == []
    [alert] = rule.observe({"etl": 900}, now_ms=5_000)
    assert (alert.group, alert.lag, alert.since_ms, alert.time_ms) == ("etl", 900, 0, 5_000)
    assert "etl" in alert.message and "above 100" in alert.message
    # One alert per episode, until the lag comes back down.
    assert rule.observe({"etl": 900}, now_ms=9_000) == []
    assert rule.active == ["etl"]
    assert rule.observe({"etl": 10}, now_ms=10_000) == []
    assert rule.active == []
    # A short spike after recovery does not alert; a sustained one does, timed from its start.
    assert rule.observe({"etl": 300}, now_ms=11_000) == []
    assert rule.observe({"etl": 300}, now_ms=15_999) == []
    [again] = rule.observe({"etl": 300}, now_ms=16_000)
    assert again.since_ms == 11_000
    assert [a.time_ms for a in rule.history] == [16_000, 5_000]


def test_lag_monitor_alerts_when_a_group_stays_behind(bootstrap: str) -> None:
    _fill(bootstrap, {0: 50})
    _read_and_commit(bootstrap, "slow", {0: 5})
    _read_and_commit(bootstrap, "fast", {0: 50})
    now_ms = [1_000]
    monitor = LagMonitor(bootstrap, threshold=20, duration_s=3.0, clock_ms=lambda: now_ms[0])
    try:
        monitor.sample()
        assert monitor.alerts == []
        now_ms[0] += 3_000
        monitor.sample()
        [alert] = monitor.alerts
        assert alert.group == "slow" and alert.lag == 45
        assert monitor.snapshot() == {
            "fast": {"total": 0, "partitions": {"orders[0]": 0}},
            "slow": {"total": 45, "partitions": {"orders[0]": 45}},
        }
    finally:
        monitor.stop()


def test_lag_monitor_samples_in_the_background(bootstrap: str) -> None:
    _fill(bootstrap, {0: 8})
    _read_and_commit(bootstrap, "tail", {0: 6})
    with LagMonitor(bootstrap, ["tail"], interval_s=0.05) as monitor:
        while monitor.latest_ms is None:
            time.sleep(0.05)
        assert monitor.latest["tail"].total == 2
        assert monitor.error is None
