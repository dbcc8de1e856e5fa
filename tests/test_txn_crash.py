"""Exactly-once under kill -9: transactional consume-transform-produce against a broker that is
killed and restarted at random moments. Every input must come out exactly once, committed."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.testing import BrokerProcess

INPUTS = 3000
CRASHES = 4
QUIET = {"log_level": 0}


def _done(consumer: Consumer) -> bool:
    parts = [TopicPartition("in", p) for p in range(3)]
    committed = consumer.committed(parts, timeout=10)
    for tp in committed:
        _, high = consumer.get_watermark_offsets(TopicPartition("in", tp.partition), timeout=10)
        if tp.offset < high:
            return False
    return True


def _one_round(bootstrap: str, stop: threading.Event) -> bool:
    """Process until done (True) or until something fails because the broker died (False)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "eos",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            **QUIET,
        }
    )
    try:
        consumer.subscribe(["in"])
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": "eos-1",
                "transaction.timeout.ms": 10000,
                **QUIET,
            }
        )
        producer.init_transactions(30)
        while not stop.is_set():
            batch = [m for m in consumer.consume(100, timeout=0.5) if m.error() is None]
            if not batch:
                if consumer.assignment() and _done(consumer):
                    return True
                continue
            producer.begin_transaction()
            for msg in batch:
                producer.produce("out", key=msg.key(), value=b"T" + msg.value())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(30)
        return False
    except Exception:  # the broker was killed mid-call: start over from committed offsets
        return False
    finally:
        with contextlib.suppress(Exception):
            consumer.close()


def _worker(bootstrap: str, finished: threading.Event, stop: threading.Event) -> None:
    while not stop.is_set():
        if _one_round(bootstrap, stop):
            finished.set()
            return
        time.sleep(0.3)


def _read_out(bootstrap: str) -> list[tuple[bytes, int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": str(uuid.uuid4()),
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe(["out"])
    out: list[tuple[bytes, int]] = []
    eof: set[int] = set()
    while len(eof) < 3:
        msg = consumer.poll(10)
        assert msg is not None
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF
            eof.add(msg.partition())
            continue
        out.append((msg.key(), int(msg.value()[1:])))
    consumer.close()
    return out


def test_exactly_once_across_kill_9(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"seed={seed}")
    broker = BrokerProcess(tmp_path / "data").start()
    stop = threading.Event()
    finished = threading.Event()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for name in ("in", "out"):
            admin.create_topics([NewTopic(name, 3, 1)])[name].result(30)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        for i in range(INPUTS):
            producer.produce("in", key=str(i % 20).encode(), value=str(i).encode())
        assert producer.flush(30) == 0
        worker = threading.Thread(target=_worker, args=(broker.bootstrap, finished, stop))
        worker.start()
        crashes = 0
        while crashes < CRASHES and not finished.is_set():
            time.sleep(rng.uniform(0.2, 0.8))
            broker.kill()
            crashes += 1
            broker.start()
        finished.wait(240)  # a bound against hanging forever, not a speed assertion
        stop.set()
        worker.join(60)
        assert finished.is_set(), "the pipeline never finished"
        out = _read_out(broker.bootstrap)
    finally:
        stop.set()
        broker.stop()
    values = [v for _, v in out]
    print(f"crashes survived={crashes} records checked={len(values)}")
    assert sorted(values) == list(range(INPUTS)), "an input was lost or duplicated"
    last: dict[bytes, int] = {}
    for key, value in out:
        assert value > last.get(key, -1), f"per-key order broken for key {key!r}"
        last[key] = value
