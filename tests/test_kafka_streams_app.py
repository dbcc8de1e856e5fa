"""A Kafka Streams application (exactly_once_v2) on Headwater's broker and on Apache Kafka.

``dev.headwater.interop.streams.StreamsApp`` repartitions orders by customer (selectKey, then
groupByKey), counts them per customer in 10 s windows (a changelog-backed window store) and
joins them with a customers table. On each broker the same deterministic input is fed in three
parts, and the application is killed with SIGKILL while it works through the second part and
restarted after the third part has arrived. Exactly-once means the final outputs, read with
read_committed, hold every order once and the right counts, whatever the kill interrupted; the
two brokers must agree with each other and with the counts computed here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.testing import JavaProcess, KafkaCluster, embedded_broker, java_missing

_MISSING = java_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

APP = "dev.headwater.interop.streams.StreamsApp"
PARTITIONS = 3
CUSTOMERS = 6
ORDERS = 600
PARTS = ((0, 200), (200, 400), (400, 600))
WINDOW_MS = 10_000
ORDER_SPACING_MS = 50
# Every order pauses the app this long, so the kill lands while it works through part two.
SLOW_MS = "6"
# Kill once the app has read this many orders in its first run: part two is under way.
KILL_AFTER = 225
TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Outputs:
    """The final, committed outputs: enriched orders, and the last count per window key."""

    enriched: list[str]
    counts: dict[str, int]


def customer_of(order: int) -> str:
    return f"c{(order * 7 + order // 5) % CUSTOMERS}"


def customer_value(customer: int) -> str:
    return f"name{customer},region{customer % 2}"


def order_value(order: int) -> str:
    return f"o{order:04d},{customer_of(order)},{order * 13 % 100}"


def expected(base_ms: int) -> Outputs:
    """What the application must produce, computed from the input alone."""
    enriched = sorted(
        f"{order_value(i)},{customer_value(int(customer_of(i)[1:]))}" for i in range(ORDERS)
    )
    counts: Counter[str] = Counter()
    for i in range(ORDERS):
        start = (base_ms + i * ORDER_SPACING_MS) // WINDOW_MS * WINDOW_MS
        counts[f"{customer_of(i)}@{start}"] += 1
    return Outputs(enriched, dict(counts))


def create_topics(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = ("customers", "orders", "order-counts", "enriched-orders")
    futures = admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    for future in futures.values():
        future.result(30)


def produce(bootstrap: str, records: list[tuple[str, str, str, int]]) -> None:
    # murmur2 is the Java client's partitioner: the customers table must be partitioned as
    # Streams partitions the orders it re-keys, or the join misses (librdkafka uses CRC32).
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    for topic, key, value, timestamp in records:
        producer.produce(topic, key=key, value=value, timestamp=timestamp)
    assert producer.flush(30) == 0


def customers(base_ms: int) -> list[tuple[str, str, str, int]]:
    # Older than every order, so the table is complete before any order is joined.
    return [("customers", f"c{c}", customer_value(c), base_ms - 1_000) for c in range(CUSTOMERS)]


def orders(base_ms: int, first: int, end: int) -> list[tuple[str, str, str, int]]:
    return [
        ("orders", f"o{i:04d}", order_value(i), base_ms + i * ORDER_SPACING_MS)
        for i in range(first, end)
    ]


class CommittedReader:
    """Reads a topic with read_committed from the start and keeps every value it has seen."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"check-{topic}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.records: list[tuple[str, str]] = []

    def poll(self, duration_s: float = 0.5) -> int:
        """Read for ``duration_s``; returns how many records were read so far in all."""
        deadline = time.monotonic() + duration_s
        while (remaining := deadline - time.monotonic()) > 0:
            for message in self.consumer.consume(1000, min(remaining, 0.2)):
                assert message.error() is None, message.error()
                key, value = message.key(), message.value()
                assert key is not None and value is not None
                self.records.append((key.decode(), value.decode()))
        return len(self.records)

    def wait_for(self, count: int, app: JavaProcess, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while self.poll() < count:
            if not app.running() or time.monotonic() > deadline:
                pytest.fail(f"{len(self.records)} of {count} {what}\n" + app.logs_tail())

    def close(self) -> None:
        self.consumer.close()


def processed(lines: list[dict[str, object]]) -> int:
    """How many orders the app has read, by its last progress line (first run only)."""
    counts = [line["processed"] for line in lines if "processed" in line]
    return int(str(counts[-1])) if counts else 0


def start(app: JavaProcess) -> None:
    """Start the app and wait until its state listener reports RUNNING in this run."""
    earlier = len(app.json_lines())
    app.start()

    def running(lines: list[dict[str, object]]) -> bool:
        errors = [line for line in lines[earlier:] if "error" in line]
        assert not errors, errors
        return any(line.get("state") == "RUNNING" for line in lines[earlier:])

    app.wait_for(running, timeout_s=TIMEOUT_S, what="the Streams app to run")


def run_app(bootstrap: str, workdir: Path, base_ms: int) -> Outputs:
    """Feed the input in three parts, kill -9 the app mid-way, restart it, read the outputs."""
    create_topics(bootstrap)
    produce(bootstrap, customers(base_ms) + orders(base_ms, *PARTS[0]))
    app = JavaProcess(APP, bootstrap, str(workdir / "state"), SLOW_MS, workdir=workdir)
    enriched = CommittedReader(bootstrap, "enriched-orders")
    try:
        start(app)
        enriched.wait_for(PARTS[0][1], app, "orders of part one enriched")
        produce(bootstrap, orders(base_ms, *PARTS[1]))
        app.wait_for(lambda lines: processed(lines) >= KILL_AFTER, TIMEOUT_S, "part two")
        app.kill()
        # Proof that the kill interrupted part two, with a transaction most likely open.
        assert processed(app.json_lines()) < PARTS[1][1]
        produce(bootstrap, orders(base_ms, *PARTS[2]))
        start(app)
        enriched.wait_for(ORDERS, app, "orders enriched after the restart")
        app.stop()  # SIGTERM: the shutdown hook closes Streams, committing what it holds
        assert any(line.get("closed") for line in app.json_lines()), app.logs_tail()
        enriched.poll(1.0)  # anything a duplicate would add after the last expected record
    finally:
        app.stop()
        enriched.close()
    counts = CommittedReader(bootstrap, "order-counts")
    try:
        seen = -1
        while counts.poll(0.5) != seen:
            seen = len(counts.records)
    finally:
        counts.close()
    # Every key lives in one partition, so its last record there is its final count.
    final = {key: int(value) for key, value in counts.records}
    return Outputs(sorted(value for _, value in enriched.records), final)


@pytest.fixture(scope="module")
def base_ms() -> int:
    """One recent, window-aligned start time for both brokers' input (recent, so no
    retention check deletes it)."""
    return (int(time.time() * 1000) - 120_000) // 60_000 * 60_000


@pytest.fixture(scope="module")
def headwater_outputs(tmp_path_factory: pytest.TempPathFactory, base_ms: int) -> Outputs:
    workdir = tmp_path_factory.mktemp("streams-headwater")
    with embedded_broker(workdir / "data") as broker:
        return run_app(broker.bootstrap, workdir, base_ms)


@pytest.fixture(scope="module")
def kafka_outputs(tmp_path_factory: pytest.TempPathFactory, base_ms: int) -> Iterator[Outputs]:
    workdir = tmp_path_factory.mktemp("streams-kafka")
    cluster = KafkaCluster(nodes=1, workdir=workdir / "kafka")
    cluster.start()
    try:
        yield run_app(cluster.bootstrap, workdir, base_ms)
    except BaseException:
        print(cluster.logs_tail())
        raise
    finally:
        cluster.stop(graceful=False)


def test_exactly_once_through_a_kill_on_headwater(headwater_outputs: Outputs, base_ms: int) -> None:
    want = expected(base_ms)
    assert len(headwater_outputs.enriched) == ORDERS
    assert headwater_outputs.enriched == want.enriched
    assert headwater_outputs.counts == want.counts


def test_same_outputs_as_on_apache_kafka(
    headwater_outputs: Outputs, kafka_outputs: Outputs, base_ms: int
) -> None:
    assert kafka_outputs == expected(base_ms)
    assert headwater_outputs == kafka_outputs
