"""A streams app reading and writing Avro through the schema registry: records that are not in
the registry's wire format go to the dead-letter topic with the reason."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from headwater.client import AvroSerde
from headwater.registry import RegistryServer
from headwater.streams import App
from streams_support import create_topics, read_all, running

READING = {
    "type": "record",
    "name": "Reading",
    "namespace": "demo",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "celsius", "type": "double"}],
}
ALERT = {
    "type": "record",
    "name": "Alert",
    "namespace": "demo",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "fahrenheit", "type": "double"}],
}


def test_avro_in_avro_out_and_bad_bytes_parked(bootstrap: str, tmp_path: Path) -> None:
    create_topics(bootstrap, {"readings-avro": 1, "alerts-avro": 1})
    with RegistryServer(bootstrap, port=0) as registry:
        client = SchemaRegistryClient({"url": registry.url})  # one client, closed at the end
        try:
            _run(bootstrap, tmp_path, client)
        finally:
            client.close()


def _run(bootstrap: str, tmp_path: Path, client: SchemaRegistryClient) -> None:
    writer = AvroSerde(client, READING)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, celsius in enumerate([21.5, 48.0, 19.0]):
        producer.produce(
            "readings-avro",
            writer.serialize({"sensor": f"s{i}", "celsius": celsius}, "readings-avro"),
            b"s%d" % i,
        )
    producer.produce("readings-avro", b'{"sensor": "plain json"}', b"bad")
    assert producer.flush(30) == 0

    app = App("avro-app", bootstrap, state_dir=tmp_path)
    (
        app.stream("readings-avro", value_serde=AvroSerde(client, use_latest=True))
        .filter(lambda r: r["celsius"] > 40)
        .map(lambda r: {"sensor": r["sensor"], "fahrenheit": r["celsius"] * 9 / 5 + 32})
        .to_topic("alerts-avro", value_serde=AvroSerde(client, ALERT))
    )
    with running(app):
        out = read_all(bootstrap, "alerts-avro", 1)
        dead = read_all(bootstrap, "avro-app-dead-letters", 1)
    reader = AvroSerde(client, use_latest=True)
    assert [reader.deserialize(m.value(), "alerts-avro") for m in out] == [
        {"sensor": "s1", "fahrenheit": 118.4}
    ]
    assert [m.key() for m in dead] == [b"bad"]
    assert b"wire format" in dict(dead[0].headers())["hw.dlq.error"]
