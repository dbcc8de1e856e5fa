"""Broker-side schema validation: opt-in per topic, enforced on produce."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from headwater.client._schema_serde import AvroSerde
from headwater.protocol import NewRecord, build_batch
from headwater.registry import RegistryServer
from rawkafka import call, connect

USER = {"type": "record", "name": "User", "fields": [{"name": "id", "type": "long"}]}


@pytest.fixture
def registry(bootstrap: str) -> Iterator[RegistryServer]:
    with RegistryServer(bootstrap, port=0) as server:
        yield server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[SchemaRegistryClient]:
    c = SchemaRegistryClient({"url": registry.url})
    yield c
    c.close()


def create(bootstrap: str, name: str, validated: bool) -> None:
    config = {"headwater.schema.validation": "true"} if validated else {}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(30)


def produce(bootstrap: str, topic: str, value: bytes) -> KafkaError | None:
    """Produce one record and return the delivery error, if any."""
    outcome: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0, "linger.ms": 0})
    producer.produce(topic, value=value, on_delivery=lambda err, _m: outcome.append(err))
    assert producer.flush(30) == 0
    return outcome[0]


def test_validated_topic_accepts_registered_ids_and_refuses_the_rest(
    bootstrap: str, client: SchemaRegistryClient
) -> None:
    create(bootstrap, "orders", validated=True)
    good = AvroSerde(client, USER).serialize({"id": 1}, "orders")
    assert good is not None
    assert produce(bootstrap, "orders", good) is None

    plain = produce(bootstrap, "orders", json.dumps({"id": 1}).encode())
    assert plain is not None and plain.code() == KafkaError.INVALID_RECORD

    other_id = AvroSerde(client, {"type": "string"}).serialize("x", "elsewhere")
    assert other_id is not None
    unregistered = produce(bootstrap, "orders", other_id)
    assert unregistered is not None and unregistered.code() == KafkaError.INVALID_RECORD


def test_unvalidated_topic_takes_anything(bootstrap: str) -> None:
    create(bootstrap, "free", validated=False)
    assert produce(bootstrap, "free", b"anything at all") is None


def test_index_follows_new_and_deleted_versions(
    bootstrap: str, client: SchemaRegistryClient
) -> None:
    create(bootstrap, "events", validated=True)
    serde = AvroSerde(client, USER)
    first = serde.serialize({"id": 1}, "events")
    assert first is not None and produce(bootstrap, "events", first) is None
    evolved = {**USER, "fields": [*USER["fields"], {"name": "n", "type": "int", "default": 0}]}
    second = AvroSerde(client, evolved).serialize({"id": 1, "n": 2}, "events")
    assert second is not None and produce(bootstrap, "events", second) is None
    client.delete_version("events-value", 1)
    refused = produce(bootstrap, "events", first)
    assert refused is not None and refused.code() == KafkaError.INVALID_RECORD
    assert produce(bootstrap, "events", second) is None


def test_refusal_message_is_clear(bootstrap: str, registry: RegistryServer) -> None:
    """The produce response carries record errors and a message naming the subject."""
    create(bootstrap, "raw", validated=True)
    batch = build_batch([NewRecord(key=None, value=b"{}", timestamp_ms=0)])
    with connect(bootstrap) as sock:
        response = call(
            sock,
            0,
            9,
            {
                "acks": -1,
                "timeout": 5000,
                "topic_data": [
                    {"name": "raw", "partition_data": [{"index": 0, "records": bytes(batch)}]}
                ],
            },
        )
    part = response.responses[0].partition_responses[0]
    assert part.error_code == 87
    assert "raw-value" in part.error_message
    assert part.record_errors[0].batch_index == 0
