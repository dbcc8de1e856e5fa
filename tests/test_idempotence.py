"""Idempotent producers: retries are not written twice, gaps and old epochs are refused,
and the state survives a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer

from headwater.broker import BrokerThread
from headwater.protocol import NewRecord, build_batch
from headwater.testing import embedded_broker
from rawkafka import call, connect

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


def _count(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": str(uuid.uuid4()),
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    while True:
        msg = consumer.poll(10)
        assert msg is not None
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF
            break
        values.append(msg.value())
    consumer.close()
    return values


def test_dropped_response_retry_is_not_duplicated(broker: BrokerThread) -> None:
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 0,
            "log_level": 0,
        }
    )
    producer.produce("idem", value=b"first")
    producer.flush(30)
    broker.call(lambda: broker.broker.faults.__setitem__(0, "drop-response"))
    errors: list[object] = []
    producer.produce("idem", value=b"second", on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(60) == 0
    assert errors == [None]
    assert broker.broker.faults == {}, "the fault hook never fired"
    assert _count(broker.bootstrap, "idem") == [b"first", b"second"]


def _send(bootstrap: str, batch: bytes) -> tuple[int, int]:
    with connect(bootstrap) as sock:
        # Metadata creates the topic, as a client's would: a produce never does.
        call(sock, 3, 9, {"topics": [{"name": "seq"}], "allow_auto_topic_creation": True})
        response = call(
            sock,
            0,
            9,
            {
                "acks": -1,
                "timeout": 5000,
                "topic_data": [{"name": "seq", "partition_data": [{"index": 0, "records": batch}]}],
            },
        )
    part = response.responses[0].partition_responses[0]
    return int(part.error_code), int(part.base_offset)


def _batch(seq: int, epoch: int = 0, pid: int = 4242, n: int = 2) -> bytes:
    records = [NewRecord(None, f"{seq}-{i}".encode(), 1_700_000_000_000) for i in range(n)]
    return bytes(build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq))


def test_sequences_and_epochs_survive_restart(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with embedded_broker(data) as running:
        assert _send(running.bootstrap, _batch(0)) == (0, 0)
        assert _send(running.bootstrap, _batch(2)) == (0, 2)
        assert _send(running.bootstrap, _batch(0)) == (0, 0)  # retry: original offset
        assert _send(running.bootstrap, _batch(7))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    with embedded_broker(data) as running:
        assert _send(running.bootstrap, _batch(2)) == (0, 2)  # still known after restart
        assert _send(running.bootstrap, _batch(0, epoch=1)) == (0, 4)  # epoch bump
        assert _send(running.bootstrap, _batch(4, epoch=0))[0] == INVALID_PRODUCER_EPOCH
        assert _count(running.bootstrap, "seq") == [b"0-0", b"0-1", b"2-0", b"2-1", b"0-0", b"0-1"]


def test_producer_ids_are_never_reused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with embedded_broker(data) as running:
        first = running.call(running.broker.allocate_producer_id)
    with embedded_broker(data) as running:
        again = running.call(running.broker.allocate_producer_id)
    assert again > first
