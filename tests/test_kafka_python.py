"""kafka-python 3 against the broker: negotiation, produce, groups, admin."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


# kafka-python needs extra codec packages for snappy/lz4/zstd; confluent-kafka and kcat cover
# every codec, so this client is checked with the ones it supports out of the box.
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_produce_and_consume(bootstrap: str, compression: str | None) -> None:
    topic = f"kp-{compression}"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type=compression, acks="all", linger_ms=5
    )
    for i in range(500):
        producer.send(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        group_id="kp-group",
        enable_auto_commit=True,
    )
    values = [m.value for m in consumer]
    consumer.close()
    assert values == [f"v{i}".encode() for i in range(500)]


def test_admin_and_offsets(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("kp-admin", num_partitions=3, replication_factor=1)])
    assert "kp-admin" in admin.list_topics()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(30):
        producer.send("kp-admin", value=str(i).encode(), partition=i % 3)
    producer.flush(30)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id="kp-offsets", enable_auto_commit=False
    )
    tps = [TopicPartition("kp-admin", p) for p in range(3)]
    end = consumer.end_offsets(tps)
    assert all(end[tp] == 10 for tp in tps)
    consumer.close()
    admin.delete_topics(["kp-admin"])
    admin.close()
    producer.close()


def test_idempotent_producer(bootstrap: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    for i in range(100):
        producer.send("kp-idem", value=str(i).encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(
        "kp-idem",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    assert [int(m.value) for m in consumer] == list(range(100))
    consumer.close()
