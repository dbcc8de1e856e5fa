"""Client quotas: the core with a manual clock, the admin APIs, and throttling of real clients.

The pure tests pin Kafka's rules: the precedence of entities, the sampled rate (11 samples of
1 s, at least 10 full windows counted) and the throttle formula X = (O - T) / T * W. The
broker tests drive DescribeClientQuotas and AlterClientQuotas through ``QuotaAdmin`` (the
client layer; confluent-kafka has no client-quota calls) and raw requests, and hold real
confluent-kafka producers and consumers to byte-rate quotas. Rate assertions are upper bounds
with slack, never tight wall-clock checks.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import rawkafka
from headwater.broker import BrokerThread
from headwater.broker import _quotas as q
from headwater.client import QuotaAdmin, QuotaAdminError
from headwater.protocol._codec import millis
from headwater.protocol._records import NewRecord, build_batch
from headwater.testing import embedded_broker

INVALID_REQUEST = 42

# -- the core -----------------------------------------------------------------------------


def test_precedence_follows_kafka_order() -> None:
    settings = q.QuotaSettings()
    order = q.candidates("alice", "app")
    assert [q.describe_entity(e) for e in order] == [
        "/users/alice/clients/app",
        "/users/alice/clients/<default>",
        "/users/alice",
        "/users/<default>/clients/app",
        "/users/<default>/clients/<default>",
        "/users/<default>",
        "/clients/app",
        "/clients/<default>",
    ]
    # Set them from the least specific up: each new one wins over all set before.
    for rank, ent in enumerate(reversed(order)):
        settings.alter(ent, [(q.PRODUCER_BYTE_RATE, 1000.0 + rank, False)])
        limit = settings.limit(q.PRODUCER_BYTE_RATE, "alice", "app")
        assert limit is not None and limit.quota == 1000.0 + rank
    # Another user and client only meet the defaults.
    other = settings.limit(q.PRODUCER_BYTE_RATE, "bob", "tool")
    assert other is not None and other.quota == 1003.0  # /users/<default>/clients/<default>
    assert (other.user, other.client_id) == ("bob", "tool")


def test_precedence_is_per_quota_type_and_rates_are_shared_as_kafka_tags_them() -> None:
    settings = q.QuotaSettings()
    settings.alter(q.entity("alice"), [(q.CONSUMER_BYTE_RATE, 500.0, False)])
    settings.alter(q.entity("alice", "app"), [(q.PRODUCER_BYTE_RATE, 100.0, False)])
    settings.alter(q.entity(client_id=None), [(q.REQUEST_PERCENTAGE, 50.0, False)])
    consumer = settings.limit(q.CONSUMER_BYTE_RATE, "alice", "app")
    assert consumer == q.Limit(500.0, "alice", "")  # all of alice's clients share one rate
    assert settings.limit(q.PRODUCER_BYTE_RATE, "alice", "app") == q.Limit(100.0, "alice", "app")
    assert settings.limit(q.PRODUCER_BYTE_RATE, "alice", "other") is None
    assert settings.limit(q.REQUEST_PERCENTAGE, "x", "c") == q.Limit(50.0, "", "c")
    settings.alter(q.entity("alice"), [(q.CONSUMER_BYTE_RATE, 0.0, True)])
    assert settings.limit(q.CONSUMER_BYTE_RATE, "alice", "app") is None
    assert q.entity("alice") not in settings.entries  # an emptied entity goes


def test_validation_refuses_what_kafka_refuses() -> None:
    for bad in ([("ip", "1.2.3.4")], [("user", "a"), ("user", "b")], [], [("user", "")]):
        with pytest.raises(q.QuotaError):
            q.make_entity(bad)
    with pytest.raises(q.QuotaError, match="Invalid configuration key"):
        q.validate_value("producer_bytes_rate", 10)
    with pytest.raises(q.QuotaError, match="Long"):
        q.validate_value(q.PRODUCER_BYTE_RATE, 10.5)
    with pytest.raises(q.QuotaError):
        q.validate_value(q.REQUEST_PERCENTAGE, 0)
    q.validate_value(q.REQUEST_PERCENTAGE, 12.5)
    q.validate_value(q.CONTROLLER_MUTATION_RATE, 3.5)


def test_rate_counts_at_least_ten_full_windows_then_the_real_span() -> None:
    rate = q.Rate()
    rate.record(1000, 0)
    # At the start the window is 10 full samples plus the part of the current one.
    assert rate.window_ms(0) == 10_000
    assert rate.measure(0) == pytest.approx(100.0)
    assert rate.window_ms(500) == 10_500
    for second in range(1, 20):
        rate.record(1000, second * 1000)
    # 11 samples kept: the window is the span back to the oldest retained sample.
    assert rate.window_ms(19_000) == 10_000
    assert rate.measure(19_000) == pytest.approx(11 * 1000 / 10.0)
    # Long silence expires every sample.
    assert rate.measure(60_000) == 0.0


def test_throttle_formula_and_its_caps() -> None:
    rate = q.Rate()
    rate.record(3000, 0)  # 300 B/s over the 10 s minimum window
    assert q.throttle_time_ms(rate, 100.0, 0, cap_ms=1_000_000) == round((300 - 100) / 100 * 10_000)
    assert q.throttle_time_ms(rate, 300.0, 0, cap_ms=1_000_000) == 0  # at the quota: allowed
    assert q.throttle_time_ms(rate, 100.0, 0, cap_ms=11_000) == 11_000
    tracker = q.QuotaTracker()
    limit = q.Limit(100.0, "", "c")
    assert tracker.record(q.PRODUCER_BYTE_RATE, limit, 900, 0) == 0
    assert tracker.record(q.PRODUCER_BYTE_RATE, limit, 200, 0) == 1000  # 110 B/s: +10% of 10 s
    assert tracker.record(q.PRODUCER_BYTE_RATE, limit, 1e6, 0) == 11_000  # capped: the window
    assert tracker.record(q.REQUEST_PERCENTAGE, q.Limit(1.0, "", "c"), 1e3, 0) == 1000
    assert tracker.max_value_in_window(limit) == 1000.0


def test_settings_survive_a_json_round_trip() -> None:
    settings = q.QuotaSettings()
    settings.alter(q.entity("alice", None), [(q.PRODUCER_BYTE_RATE, 1024.0, False)])
    settings.alter(q.entity(client_id="app"), [(q.CONTROLLER_MUTATION_RATE, 2.5, False)])
    again = q.QuotaSettings.from_json(settings.to_json())
    assert again.entries == settings.entries


# -- the admin APIs ----------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def broker(data_dir: Path) -> Iterator[BrokerThread]:
    with embedded_broker(data_dir) as running:
        yield running


def test_alter_and_describe_through_the_client_layer_and_across_a_restart(
    data_dir: Path,
) -> None:
    with embedded_broker(data_dir) as running, QuotaAdmin(running.bootstrap) as admin:
        assert admin.describe() == []
        admin.alter({"user": "alice", "client-id": None}, {"producer_byte_rate": 2048})
        admin.alter({"client-id": "app"}, {"consumer_byte_rate": 4096, "request_percentage": 25})
        admin.alter({"user": None}, {"controller_mutation_rate": 1.5})
        admin.alter({"user": None}, {"producer_byte_rate": 1}, validate_only=True)
        listed = {e.entity: e.values for e in admin.describe()}
        assert listed == {
            (("client-id", None), ("user", "alice")): {"producer_byte_rate": 2048.0},
            (("client-id", "app"),): {"consumer_byte_rate": 4096.0, "request_percentage": 25.0},
            (("user", None),): {"controller_mutation_rate": 1.5},
        }
        only_app = admin.describe({"client-id": "app"}, strict=True)
        assert [e.entity for e in only_app] == [(("client-id", "app"),)]
        defaults = admin.describe({"client-id": None})
        assert [e.entity for e in defaults] == [(("client-id", None), ("user", "alice"))]
        assert admin.describe({"client-id": None}, strict=True) == []
        admin.alter({"client-id": "app"}, remove=("request_percentage",))
    with embedded_broker(data_dir) as running, QuotaAdmin(running.bootstrap) as admin:
        listed = {e.entity: e.values for e in admin.describe()}
        assert listed[(("client-id", "app"),)] == {"consumer_byte_rate": 4096.0}
        assert len(listed) == 3
    assert (data_dir / "__meta" / "client-quotas.json").exists()


def _alter(sock: socket.socket, entity: list[dict[str, Any]], ops: list[dict[str, Any]]) -> Any:
    body = {"entries": [{"entity": entity, "ops": ops}], "validate_only": False}
    return rawkafka.call(sock, 49, 1, body).entries[0]


def test_invalid_requests_are_refused_with_kafka_codes(broker: BrokerThread) -> None:
    user = [{"entity_type": "user", "entity_name": "alice"}]
    ok = [{"key": "producer_byte_rate", "value": 100.0, "remove": False}]
    with rawkafka.connect(broker.bootstrap) as sock:
        for entity, ops in (
            ([{"entity_type": "group", "entity_name": "g"}], ok),
            (user, [{"key": "bogus", "value": 1.0, "remove": False}]),
            (user, [{"key": "producer_byte_rate", "value": 1.5, "remove": False}]),
            (user, [{"key": "consumer_byte_rate", "value": -1.0, "remove": False}]),
            (user + user, ok),
            ([], ok),
        ):
            entry = _alter(sock, entity, ops)
            assert int(entry.error_code) == INVALID_REQUEST, (entity, ops)
            assert entry.error_message
        bad_filter = {
            "components": [{"entity_type": "user", "match_type": 0, "match": None}],
            "strict": False,
        }
        answer = rawkafka.call(sock, 48, 1, bad_filter)
        assert int(answer.error_code) == INVALID_REQUEST and answer.entries is None
        assert rawkafka.call(sock, 48, 0, {"components": [], "strict": False}).entries == ()
    with QuotaAdmin(broker.bootstrap) as admin, pytest.raises(QuotaAdminError, match="INVALID"):
        admin.alter({"user": "alice"}, {"request_percentage": 0})
    assert not broker.broker.quotas.active


# -- enforcement -------------------------------------------------------------------------


def _raw_produce(sock: socket.socket, topic: str, size: int) -> int:
    """One raw Produce v9 (client id ``raw-test``); returns its throttle_time in ms."""
    batch = bytes(build_batch([NewRecord(None, b"x" * size, int(time.time() * 1000))]))
    body = {
        "transactional_id": None,
        "acks": 1,
        "timeout": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
    }
    response = rawkafka.call(sock, 0, 9, body)
    assert int(response.responses[0].partition_responses[0].error_code) == 0
    return millis(response.throttle_time)


def _create(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=15)


def test_no_quota_no_throttle(broker: BrokerThread) -> None:
    topic = f"free-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    with rawkafka.connect(broker.bootstrap) as sock:
        assert all(_raw_produce(sock, topic, 100_000) == 0 for _ in range(20))
    assert not broker.broker.quotas.active


def test_a_client_id_default_and_a_specific_quota(broker: BrokerThread) -> None:
    topic = f"cid-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    with QuotaAdmin(broker.bootstrap) as admin:
        admin.alter({"client-id": None}, {"producer_byte_rate": 1000})
    with rawkafka.connect(broker.bootstrap) as sock:
        # 20 kB over the 10 s minimum window is 2 kB/s, twice the quota: throttled 10 s.
        assert _raw_produce(sock, topic, 20_000) == pytest.approx(10_000, abs=600)
    with QuotaAdmin(broker.bootstrap) as admin:
        admin.alter({"client-id": "raw-test"}, {"producer_byte_rate": 10_000_000})
    with rawkafka.connect(broker.bootstrap) as sock:  # a new connection: the old one is muted
        assert all(_raw_produce(sock, topic, 20_000) == 0 for _ in range(5))


def test_request_percentage_throttles_other_apis(broker: BrokerThread) -> None:
    with QuotaAdmin(broker.bootstrap) as admin:
        admin.alter({"client-id": "raw-test"}, {"request_percentage": 0.0001})
    with rawkafka.connect(broker.bootstrap) as sock:
        throttles = [
            millis(rawkafka.call(sock, 3, 9, {"topics": None}).throttle_time) for _ in range(1)
        ]
    # Capped at one quota window, as Kafka caps request-time throttles.
    assert 0 < throttles[0] <= 1000


def test_a_producer_is_held_near_its_byte_rate(broker: BrokerThread) -> None:
    quota = 50_000
    topic = f"slow-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    with QuotaAdmin(broker.bootstrap) as admin:
        admin.alter({"client-id": "slow-producer"}, {"producer_byte_rate": quota})
    throttled: list[int] = []
    delivered = [0]

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            delivered[0] += len(msg.value())

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "client.id": "slow-producer",
            "linger.ms": 5,
            "batch.size": 16_384,
            "throttle_cb": lambda event: throttled.append(int(event.throttle_time * 1000)),
        }
    )
    value = b"v" * 1000
    started = time.monotonic()
    while time.monotonic() - started < 6.0:
        try:
            producer.produce(topic, value, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
    elapsed = time.monotonic() - started
    producer.flush(0)  # count only what was acknowledged within the run
    assert throttled and max(throttled) > 0
    assert delivered[0] > 0
    assert delivered[0] / elapsed < 3 * quota, (delivered[0], elapsed)


def test_a_consumer_is_held_near_its_byte_rate(broker: BrokerThread) -> None:
    quota = 50_000
    topic = f"read-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    # Small batches: a fetch returns at least one whole batch, and a batch bigger than the
    # quota allows in its window would be throttled (and answered empty) on every try.
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "batch.size": 16_384}
    )
    for _ in range(3000):
        producer.produce(topic, b"r" * 1000)
        producer.poll(0)
    assert producer.flush(30) == 0
    with QuotaAdmin(broker.bootstrap) as admin:
        admin.alter({"client-id": "slow-consumer"}, {"consumer_byte_rate": quota})
    throttled: list[int] = []
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "client.id": "slow-consumer",
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "throttle_cb": lambda event: throttled.append(int(event.throttle_time * 1000)),
        }
    )
    consumer.subscribe([topic])
    received = 0
    started = time.monotonic()
    first: float | None = None
    try:
        while time.monotonic() - started < 15.0:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if first is None:
                first = time.monotonic()
            received += len(msg.value() or b"")
            if time.monotonic() - first > 6.0:
                break
    finally:
        consumer.close()
    assert first is not None
    elapsed = time.monotonic() - first
    assert throttled and max(throttled) > 0
    assert received < 3000 * 1000  # held back: not everything within the run
    assert received / max(elapsed, 1.0) < 3 * quota, (received, elapsed)


# -- the CLI -----------------------------------------------------------------------------


def test_cli_sets_lists_and_removes_quotas(broker: BrokerThread) -> None:
    from typer.testing import CliRunner

    from headwater.cli._app import app

    runner = CliRunner()
    boot = ["--bootstrap", broker.bootstrap]

    def hw(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["quotas", *args, *boot])
        assert result.exit_code == code, result.output
        return result.output

    hw("set", "--user", "alice", "--default-client-id", "--producer-byte-rate", "1048576")
    hw("set", "--client-id", "etl", "--consumer-byte-rate", "2048", "--request-percentage", "50")
    listed = hw("list")
    assert "client-id=<default> user=alice\tproducer_byte_rate=1048576" in listed
    assert "client-id=etl\tconsumer_byte_rate=2048 request_percentage=50" in listed
    assert "client-id=etl" in hw("list", "--client-id", "etl")
    hw("remove", "--client-id", "etl", "--request-percentage")
    assert "client-id=etl\tconsumer_byte_rate=2048\n" in hw("list")
    hw("remove", "--client-id", "etl")
    assert "etl" not in hw("list")
    hw("set", "--user", "a", "--default-user", "--producer-byte-rate", "1", code=1)
    hw("set", "--user", "a", code=1)
    for command in ("set", "list", "remove"):
        assert "--default-client-id" in runner.invoke(app, ["quotas", command, "--help"]).output
