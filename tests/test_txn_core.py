"""Transactions with confluent-kafka end to end, plus the KIP-890 late-produce defence."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from headwater.broker import BrokerThread
from headwater.protocol import NewRecord, build_batch
from headwater.testing import embedded_broker
from rawkafka import call, connect


def _read(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": str(uuid.uuid4()),
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    eof: set[int] = set()
    while not eof or len(eof) < len(consumer.assignment()):
        msg = consumer.poll(10)
        assert msg is not None, "no end of partition reached"
        if msg.error() is not None:
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            eof.add(msg.partition())
            continue
        values.append(msg.value())
    consumer.close()
    return values


def _txn_producer(bootstrap: str, txn_id: str, **extra: object) -> Producer:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "log_level": 0, **extra}
    )
    producer.init_transactions(30)
    return producer


def test_commit_abort_and_last_stable_offset(bootstrap: str) -> None:
    producer = _txn_producer(bootstrap, "t-basic")
    producer.begin_transaction()
    producer.produce("tx", b"c1")
    producer.produce("tx", b"c2")
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce("tx", b"aborted")
    producer.flush(30)  # make sure the aborted record reaches the log
    producer.abort_transaction(30)
    assert _read(bootstrap, "tx") == [b"c1", b"c2"]
    assert b"aborted" in _read(bootstrap, "tx", "read_uncommitted")
    producer.begin_transaction()
    producer.produce("tx", b"open")
    producer.flush(30)
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce("tx", b"after-open")
    plain.flush(30)
    assert _read(bootstrap, "tx") == [b"c1", b"c2"]  # held back by the open transaction
    producer.commit_transaction(30)
    assert _read(bootstrap, "tx") == [b"c1", b"c2", b"open", b"after-open"]


def test_offsets_in_a_transaction_visible_only_on_commit(bootstrap: str) -> None:
    plain = Producer({"bootstrap.servers": bootstrap})
    for i in range(100):
        plain.produce("src", str(i).encode())
    plain.flush(30)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ctp",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(["src"])
    producer = _txn_producer(bootstrap, "t-ctp")
    done = 0
    aborted_once = False
    while done < 100:
        batch = [m for m in consumer.consume(30, timeout=1) if m.error() is None]
        if not batch:
            continue
        producer.begin_transaction()
        for msg in batch:
            producer.produce("dst", msg.value() + b"!")
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
        )
        if not aborted_once:
            aborted_once = True
            producer.abort_transaction(30)
            first = batch[0]
            consumer.seek(TopicPartition(first.topic(), first.partition(), first.offset()))
            continue
        producer.commit_transaction(30)
        done += len(batch)
    consumer.close()
    assert _read(bootstrap, "dst") == [f"{i}!".encode() for i in range(100)]
    check = Consumer({"bootstrap.servers": bootstrap, "group.id": "ctp"})
    assert check.committed([TopicPartition("src", 0)], timeout=10)[0].offset == 100
    check.close()


def test_zombie_is_fenced(bootstrap: str) -> None:
    first = _txn_producer(bootstrap, "t-zombie")
    first.begin_transaction()
    first.produce("z", b"zombie")
    first.flush(30)
    second = _txn_producer(bootstrap, "t-zombie")  # aborts the first one's transaction
    second.begin_transaction()
    second.produce("z", b"live")
    second.commit_transaction(30)
    with pytest.raises(KafkaException):
        first.commit_transaction(10)
    assert _read(bootstrap, "z") == [b"live"]


def test_timed_out_transaction_is_aborted(bootstrap: str) -> None:
    hung = _txn_producer(bootstrap, "t-hung", **{"transaction.timeout.ms": 1500})
    hung.begin_transaction()
    hung.produce("hang", b"never")
    hung.flush(30)
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce("hang", b"later")
    plain.flush(30)
    with connect(bootstrap) as sock:
        deadline = time.monotonic() + 60  # a bound against hanging, not a speed assertion
        state = ""
        while state != "CompleteAbort" and time.monotonic() < deadline:
            time.sleep(0.2)
            described = call(sock, 65, 0, {"transactional_ids": ["t-hung"]})
            state = described.transaction_states[0].transaction_state
        assert state == "CompleteAbort"
    # read_committed now reaches "later"; the hung transaction's record stays invisible.
    assert _read(bootstrap, "hang") == [b"later"]


def _raw_txn(sock: object, api: int, body: dict[str, object]) -> object:
    return call(sock, api, 3, body)  # type: ignore[arg-type]


def test_late_produce_after_end_is_rejected(bootstrap: str) -> None:
    """KIP-890: a produce delayed past its transaction's end must not join the next one."""
    with connect(bootstrap) as sock:
        init = _raw_txn(
            sock,
            22,
            {
                "transactional_id": "t-late",
                "transaction_timeout": 60000,
                "producer_id": -1,
                "producer_epoch": -1,
            },
        )
        pid, epoch = init.producer_id, init.producer_epoch  # type: ignore[attr-defined]
        ids = {
            "v3_and_below_transactional_id": "t-late",
            "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": "late", "partitions": [0]}],
        }

        def produce(seq: int, value: bytes) -> int:
            batch = build_batch(
                [NewRecord(None, value, 1_700_000_000_000)],
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=seq,
                transactional=True,
            )
            response = call(
                sock,
                0,
                9,
                {
                    "transactional_id": "t-late",
                    "acks": -1,
                    "timeout": 5000,
                    "topic_data": [
                        {"name": "late", "partition_data": [{"index": 0, "records": bytes(batch)}]}
                    ],
                },
            )
            return int(response.responses[0].partition_responses[0].error_code)

        end = {
            "transactional_id": "t-late",
            "producer_id": pid,
            "producer_epoch": epoch,
            "committed": True,
        }
        call(sock, 3, 12, {"topics": [{"name": "late"}], "allow_auto_topic_creation": True})
        _raw_txn(sock, 24, ids)
        assert produce(0, b"in-first") == 0
        assert _raw_txn(sock, 26, end).error_code == 0  # type: ignore[attr-defined]
        assert produce(1, b"delayed") != 0  # arrives after its transaction ended
        _raw_txn(sock, 24, ids)
        assert produce(1, b"in-second") == 0
        assert _raw_txn(sock, 26, end).error_code == 0  # type: ignore[attr-defined]
    assert _read(bootstrap, "late") == [b"in-first", b"in-second"]


def test_committed_survives_restart_and_open_one_is_aborted(broker: BrokerThread) -> None:
    bootstrap = broker.bootstrap
    producer = _txn_producer(bootstrap, "t-restart")
    producer.begin_transaction()
    producer.produce("rs", b"kept")
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce("rs", b"interrupted")
    producer.flush(30)
    broker.stop()
    data_dir: Path = broker.config.data_dir
    with embedded_broker(data_dir) as again:
        assert _read(again.bootstrap, "rs", "read_uncommitted")[:1] == [b"kept"]
        _txn_producer(again.bootstrap, "t-restart")  # re-init aborts the interrupted one
        assert _read(again.bootstrap, "rs") == [b"kept"]


def test_admin_sees_open_transactions(bootstrap: str) -> None:
    producer = _txn_producer(bootstrap, "t-visible")
    producer.begin_transaction()
    producer.produce("vis", b"x")
    producer.flush(30)
    with connect(bootstrap) as sock:
        listed = call(sock, 66, 0, {"state_filters": [], "producer_id_filters": []})
        ids = {t.transactional_id: t.transaction_state for t in listed.transaction_states}
        assert ids["t-visible"] == "Ongoing"
        described = call(sock, 65, 0, {"transactional_ids": ["t-visible"]})
        state = described.transaction_states[0]
        assert [t.topic for t in state.topics] == ["vis"]
        producers = call(sock, 61, 0, {"topics": [{"name": "vis", "partition_indexes": [0]}]})
        active = producers.topics[0].partitions[0].active_producers
        assert [p.producer_id for p in active] == [state.producer_id]
        assert active[0].current_txn_start_offset == 0
    producer.abort_transaction(30)


def test_lost_add_partitions_fences_the_producer(broker: BrokerThread) -> None:
    """A power cut can lose an unsynced AddPartitionsToTxn while the transaction's data (fsynced
    by acks=all) survives. Recovery aborts that data; the producer's retried EndTxn(commit)
    must then be refused, not answered as a success for data that was aborted."""
    bootstrap = broker.bootstrap
    with connect(bootstrap) as sock:
        call(sock, 3, 12, {"topics": [{"name": "pc"}], "allow_auto_topic_creation": True})
        init = _raw_txn(
            sock,
            22,
            {
                "transactional_id": "t-pc",
                "transaction_timeout": 60000,
                "producer_id": -1,
                "producer_epoch": -1,
            },
        )
        pid, epoch = init.producer_id, init.producer_epoch  # type: ignore[attr-defined]
    broker.stop()
    data_dir: Path = broker.config.data_dir
    # The surviving data of the transaction whose AddPartitionsToTxn was lost.
    from headwater.protocol import split_batches
    from headwater.storage import LogConfig, PartitionLog

    batch = build_batch(
        [NewRecord(None, b"aborted-by-recovery", 1_700_000_000_000)],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=0,
        transactional=True,
    )
    log = PartitionLog.open(data_dir / "pc-0", LogConfig(), now_ms=int(time.time() * 1000))
    log.append(batch, split_batches(batch), now_ms=int(time.time() * 1000))
    log.flush()
    log.close()
    with embedded_broker(data_dir) as again, connect(again.bootstrap) as sock:
        end = _raw_txn(
            sock,
            26,
            {
                "transactional_id": "t-pc",
                "producer_id": pid,
                "producer_epoch": epoch,
                "committed": True,
            },
        )
        assert end.error_code != 0  # type: ignore[attr-defined]
        assert _read(again.bootstrap, "pc") == []
        assert _read(again.bootstrap, "pc", "read_uncommitted") == [b"aborted-by-recovery"]
