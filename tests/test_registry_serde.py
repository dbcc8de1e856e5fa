"""Registry-aware serdes against the real registry and broker, wire format included."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from headwater.client import DeadLetterQueue
from headwater.client._schema_serde import AvroSerde, JsonSchemaSerde, ProtobufSerde
from headwater.client._serde import SerdeError
from headwater.registry import RegistryServer

USER = {"type": "record", "name": "User", "namespace": "acme",
        "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}  # fmt: skip
USER_JSON = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "required": ["id"],
}


@pytest.fixture
def registry(bootstrap: str) -> Iterator[RegistryServer]:
    with RegistryServer(bootstrap, port=0) as server:
        yield server


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[SchemaRegistryClient]:
    c = SchemaRegistryClient({"url": registry.url})
    yield c
    c.close()


def test_avro_round_trip_and_wire_format(client: SchemaRegistryClient) -> None:
    serde = AvroSerde(client, USER)
    data = serde.serialize({"id": 7, "name": "ada"}, "users")
    assert data is not None
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == client.get_latest_version("users-value").schema_id
    assert serde.deserialize(data, "users") == {"id": 7, "name": "ada"}
    for _ in range(100):
        serde.serialize({"id": 1, "name": "x"}, "users")
    assert serde.lookups == 1  # the registry was asked once


def test_avro_interoperates_with_confluent_serializers(client: SchemaRegistryClient) -> None:
    theirs = AvroSerializer(client, json.dumps(USER))
    ctx = SerializationContext("users", MessageField.VALUE)
    data = theirs({"id": 1, "name": "x"}, ctx)
    assert AvroSerde(client, use_latest=True).deserialize(data, "users") == {"id": 1, "name": "x"}
    ours = AvroSerde(client, USER).serialize({"id": 2, "name": "y"}, "users")
    assert AvroDeserializer(client)(ours, ctx) == {"id": 2, "name": "y"}


def test_avro_rejects_bad_values_and_bad_bytes(client: SchemaRegistryClient) -> None:
    serde = AvroSerde(client, USER)
    with pytest.raises(SerdeError, match="does not match its Avro schema"):
        serde.serialize({"id": "not a number", "name": "x"}, "users")
    with pytest.raises(SerdeError, match="wire format"):
        serde.deserialize(b'{"id": 1}', "users")


def test_pinned_and_latest_and_lookup_only(client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema(
        "pinned-value",
        Schema(json.dumps(USER), "AVRO"),
    )
    pinned = AvroSerde(client, schema_id=schema_id)
    assert pinned.schema_id("anything") == schema_id
    latest = AvroSerde(client, use_latest=True)
    assert latest.schema_id("pinned") == schema_id
    lookup_only = AvroSerde(client, USER, auto_register=False)
    assert lookup_only.schema_id("pinned") == schema_id
    with pytest.raises(SerdeError, match="no usable schema"):
        AvroSerde(client, USER, auto_register=False).serialize({"id": 1, "name": "x"}, "unknown")


def test_json_schema_validates(client: SchemaRegistryClient) -> None:
    serde = JsonSchemaSerde(client, USER_JSON)
    data = serde.serialize({"id": 1, "name": "a"}, "people")
    assert data is not None and data[0] == 0
    assert serde.deserialize(data, "people") == {"id": 1, "name": "a"}
    with pytest.raises(SerdeError, match="'id' is a required property"):
        serde.serialize({"name": "a"}, "people")
    assert client.get_latest_version("people-value").schema.schema_type == "JSON"


def _message_class() -> type:
    proto = descriptor_pb2.FileDescriptorProto(name="ping.proto", package="acme", syntax="proto3")
    msg = proto.message_type.add(name="Ping")
    msg.field.add(name="at", number=1, type=3, label=1)  # int64
    msg.field.add(name="who", number=2, type=9, label=1)  # string
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.Ping"))


def test_protobuf_round_trip(client: SchemaRegistryClient) -> None:
    ping = _message_class()
    serde = ProtobufSerde(client, ping)
    data = serde.serialize(ping(at=5, who="me"), "pings")
    assert data is not None and data[5] == 0  # message index [0] in one byte
    back = serde.deserialize(data, "pings")
    assert (back.at, back.who) == (5, "me")
    registered = client.get_latest_version("pings-value")
    assert registered.schema.schema_type == "PROTOBUF"
    with pytest.raises(SerdeError):
        serde.serialize({"at": 1}, "pings")


def test_invalid_records_go_to_the_dead_letter_topic(
    client: SchemaRegistryClient, bootstrap: str
) -> None:
    serde = AvroSerde(client, USER)
    producer = Producer({"bootstrap.servers": bootstrap})
    dlq = DeadLetterQueue(producer, "users.dlq", stage="serialize")
    values = [{"id": 1, "name": "ok"}, {"id": "bad", "name": "x"}, {"id": 3, "name": "ok"}]
    for value in values:
        try:
            producer.produce("users", value=serde.serialize(value, "users"))
        except SerdeError as exc:
            dlq.send(None, exc, value=json.dumps(value).encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "t", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe(["users.dlq"])
    msg = None
    for _ in range(100):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            break
    consumer.close()
    assert msg is not None and msg.error() is None
    headers = dict(msg.headers() or [])
    assert b"does not match its Avro schema" in headers["hw.dlq.error"]
    assert json.loads(msg.value() or b"") == {"id": "bad", "name": "x"}
