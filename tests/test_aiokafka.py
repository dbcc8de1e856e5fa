"""aiokafka 0.14 against the broker: produce, consume in a group, commit and resume."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def test_produce_consume_commit(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic("aio", num_partitions=2, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
    await producer.start()
    for i in range(200):
        await producer.send("aio", key=f"k{i % 4}".encode(), value=str(i).encode())
    await producer.flush()
    await producer.stop()

    consumer = AIOKafkaConsumer(
        "aio",
        bootstrap_servers=bootstrap,
        group_id="aio-g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[int] = []
    while len(seen) < 200:
        batches = await consumer.getmany(timeout_ms=1000)
        for records in batches.values():
            seen.extend(int(r.value) for r in records)
    await consumer.commit()
    await consumer.stop()
    assert sorted(seen) == list(range(200))

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    await producer.send_and_wait("aio", key=b"k0", value=b"200")
    await producer.stop()
    consumer = AIOKafkaConsumer(
        "aio", bootstrap_servers=bootstrap, group_id="aio-g", auto_offset_reset="earliest"
    )
    await consumer.start()
    record = await consumer.getone()
    await consumer.stop()
    assert record.value == b"200"
