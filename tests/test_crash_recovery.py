"""kill -9 in a loop: everything acknowledged with acks=all survives every crash."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer

from headwater.testing import BrokerProcess

CRASHES = 4


def _produce_until_killed(
    bootstrap: str, start: int, acked: set[int], stop: threading.Event
) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 5000,
            "retries": 0,
            "compression.type": "lz4",
        }
    )

    def report(err: KafkaError | None, msg: object) -> None:
        if err is None:
            acked.add(int(msg.value()))  # type: ignore[attr-defined]

    i = start
    while not stop.is_set():
        with contextlib.suppress(BufferError):
            producer.produce(
                "crash", key=str(i % 13).encode(), value=str(i).encode(), on_delivery=report
            )
        i += 1
        if i % 100 == 0:
            producer.poll(0.001)
    producer.flush(6)


def _read_all(bootstrap: str) -> list[int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe(["crash"])
    values: list[int] = []
    eof: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for msg in consumer.consume(5000, timeout=0.5):
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                continue
            values.append(int(msg.value()))
        if eof and len(eof) == len(consumer.assignment()):
            break
    consumer.close()
    return values


def test_acknowledged_data_survives_repeated_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed={seed}")
    broker = BrokerProcess(tmp_path / "data", "--num-partitions", "3")
    acked: set[int] = set()
    broker.start()
    try:
        for crash in range(CRASHES):
            stop = threading.Event()
            worker = threading.Thread(
                target=_produce_until_killed,
                args=(broker.bootstrap, crash * 10_000_000, acked, stop),
            )
            worker.start()
            time.sleep(rng.uniform(0.5, 1.5))
            broker.kill()
            stop.set()
            worker.join()
            broker.start()
        values = _read_all(broker.bootstrap)
    finally:
        broker.stop()
    missing = acked - set(values)
    print(f"crashes survived={CRASHES} acknowledged={len(acked)} read back={len(values)}")
    assert acked, "the producer never got an acknowledgement"
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
    assert len(values) == len(set(values)), "a record appears twice"
