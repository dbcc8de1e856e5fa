"""Transaction version 2 (KIP-890 part 2) over raw requests on a real socket.

No client available here speaks it yet (the Java client does from Kafka 4.0), so these tests
send exactly what such a client sends: Produce v12 without AddPartitionsToTxn, TxnOffsetCommit
v5 without AddOffsetsToTxn, and EndTxn v5, whose answer carries the producer epoch of the next
transaction. The central case is Jepsen's: a produce delayed until after the next transaction
has already added the same partition must be fenced, not absorbed into it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.broker import BrokerThread
from headwater.broker._txn_store import COMPLETE_COMMIT, TxnMeta, TxnStore
from headwater.protocol import NewRecord, build_batch
from headwater.testing import embedded_broker
from rawkafka import call, connect, txn_offset_commit

INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
DEADLINE_S = 60.0


class V2Producer:
    """A transactional producer speaking transaction version 2, one request at a time."""

    def __init__(self, sock: Any, txn_id: str, timeout_ms: int = 60_000) -> None:
        self.sock, self.txn_id = sock, txn_id
        init = call(
            sock,
            22,
            4,
            {
                "transactional_id": txn_id,
                "transaction_timeout": timeout_ms,
                "producer_id": -1,
                "producer_epoch": -1,
            },
        )
        assert init.error_code == 0, init
        self.producer_id, self.producer_epoch = int(init.producer_id), int(init.producer_epoch)
        self._sequences: dict[tuple[str, int], int] = {}

    def batch(self, topic: str, partition: int, value: bytes) -> bytes:
        """The next batch for a partition, under the current id and epoch."""
        tp = (topic, partition)
        sequence = self._sequences.get(tp, 0)
        self._sequences[tp] = sequence + 1
        return bytes(
            build_batch(
                [NewRecord(None, value, 1_700_000_000_000)],
                producer_id=self.producer_id,
                producer_epoch=self.producer_epoch,
                base_sequence=sequence,
                transactional=True,
            )
        )

    def send(self, topic: str, partition: int, batch: bytes, version: int = 12) -> int:
        response = call(
            self.sock,
            0,
            version,
            {
                "transactional_id": self.txn_id,
                "acks": -1,
                "timeout": 5000,
                "topic_data": [
                    {"name": topic, "partition_data": [{"index": partition, "records": batch}]}
                ],
            },
        )
        return int(response.responses[0].partition_responses[0].error_code)

    def produce(self, topic: str, partition: int, value: bytes, version: int = 12) -> int:
        return self.send(topic, partition, self.batch(topic, partition, value), version)

    def end(self, committed: bool, epoch: int | None = None) -> Any:
        """EndTxn v5; on success the producer moves to the epoch the broker answers with,
        and its sequences start again at zero, as KIP-890 part 2 prescribes."""
        response = call(
            self.sock,
            26,
            5,
            {
                "transactional_id": self.txn_id,
                "producer_id": self.producer_id,
                "producer_epoch": self.producer_epoch if epoch is None else epoch,
                "committed": committed,
            },
        )
        if response.error_code == 0:
            new = (int(response.producer_id), int(response.producer_epoch))
            if new != (self.producer_id, self.producer_epoch):
                self.producer_id, self.producer_epoch = new
                self._sequences.clear()
        return response

    def commit_offset(self, group: str, topic: str, offset: int) -> int:
        """TxnOffsetCommit v5 of partition 0 of ``topic``."""
        txn = (self.txn_id, self.producer_id, self.producer_epoch)
        return txn_offset_commit(self.sock, 5, txn, group, topic, offset)


def _create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    )
    for future in futures.values():
        future.result(30)


def _values(
    bootstrap: str, topic: str, partitions: int = 1, isolation: str = "read_committed"
) -> list[bytes]:
    """Every visible value of ``topic``, partition by partition, up to each one's end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values: list[bytes] = []
    eof: set[int] = set()
    deadline = time.monotonic() + DEADLINE_S
    while len(eof) < partitions:
        assert time.monotonic() < deadline, "end of partition never reached"
        msg = consumer.poll(1)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            eof.add(int(msg.partition() or 0))
            continue
        value = msg.value()
        assert value is not None
        values.append(value)
    consumer.close()
    return values


def _committed(bootstrap: str, group: str, topic: str) -> int:
    """read_uncommitted, so a pending transactional offset is answered with the last
    committed one instead of UNSTABLE_OFFSET_COMMIT (KIP-447)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"}
    )
    found = consumer.committed([TopicPartition(topic, 0)], timeout=30)
    consumer.close()
    return int(found[0].offset)


def test_api_versions_advertise_transaction_version_2(bootstrap: str) -> None:
    with connect(bootstrap) as sock:
        response = call(sock, 18, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert response.error_code == 0
    finalized = {f.name: int(f.max_version_level) for f in response.finalized_features}
    assert finalized == {"transaction.version": 2, "group.version": 1}
    assert int(response.finalized_features_epoch) >= 0
    maxima = {int(k.api_key): int(k.max_version) for k in response.api_keys}
    assert maxima[0] >= 12  # Produce: implicit AddPartitionsToTxn
    assert maxima[26] >= 5  # EndTxn: epoch in the response
    assert maxima[28] >= 5  # TxnOffsetCommit: implicit AddOffsetsToTxn


def test_produce_adds_partitions_and_every_end_txn_bumps_the_epoch(bootstrap: str) -> None:
    _create(bootstrap, {"v2-a": 2, "v2-b": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, "t-v2-basic")
        first_epoch = txn.producer_epoch
        # No AddPartitionsToTxn: the produces add their partitions themselves.
        assert txn.produce("v2-a", 0, b"a0") == 0
        assert txn.produce("v2-a", 1, b"a1") == 0
        assert txn.produce("v2-b", 0, b"b0") == 0
        assert txn.produce("v2-a", 0, b"a0-2") == 0
        assert _values(bootstrap, "v2-a", 2) == []  # open: nothing past the LSO
        committed = txn.end(committed=True)
        assert committed.error_code == 0
        assert int(committed.producer_epoch) == first_epoch + 1
        assert _values(bootstrap, "v2-a", 2) == [b"a0", b"a0-2", b"a1"]
        assert _values(bootstrap, "v2-b") == [b"b0"]

        assert txn.produce("v2-a", 0, b"aborted") == 0  # sequence 0 again, new epoch
        aborted = txn.end(committed=False)
        assert aborted.error_code == 0
        assert int(aborted.producer_epoch) == first_epoch + 2
        assert txn.produce("v2-b", 0, b"b1") == 0
        assert txn.end(committed=True).error_code == 0
    assert _values(bootstrap, "v2-a", 2) == [b"a0", b"a0-2", b"a1"]
    assert _values(bootstrap, "v2-b") == [b"b0", b"b1"]
    assert b"aborted" in _values(bootstrap, "v2-a", 2, "read_uncommitted")


def test_produce_delayed_into_the_next_transaction_is_fenced(bootstrap: str) -> None:
    """Jepsen's torn-transaction case: the late produce arrives after the next transaction
    has already put the same partition in play. With transaction version 1 it would carry
    the same epoch and be absorbed; the per-transaction epoch bump fences it."""
    _create(bootstrap, {"v2-late": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, "t-v2-late")
        assert txn.produce("v2-late", 0, b"first") == 0
        delayed = txn.batch("v2-late", 0, b"delayed")  # built, held up in the network
        assert txn.end(committed=True).error_code == 0
        assert txn.produce("v2-late", 0, b"second") == 0  # the next transaction adds p0
        assert txn.send("v2-late", 0, delayed) == INVALID_PRODUCER_EPOCH
        assert txn.produce("v2-late", 0, b"third") == 0
        assert txn.end(committed=True).error_code == 0
    assert _values(bootstrap, "v2-late") == [b"first", b"second", b"third"]
    assert b"delayed" not in _values(bootstrap, "v2-late", isolation="read_uncommitted")


def test_retried_end_txn_gets_the_same_answer(bootstrap: str) -> None:
    _create(bootstrap, {"v2-retry": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, "t-v2-retry")
        used = txn.producer_epoch
        assert txn.produce("v2-retry", 0, b"once") == 0
        first = txn.end(committed=True)
        # The answer was lost: the client retries under the epoch it sent with.
        retry = txn.end(committed=True, epoch=used)
        assert retry.error_code == 0
        assert (retry.producer_id, retry.producer_epoch) == (
            first.producer_id,
            first.producer_epoch,
        )
        # The same epoch asking for the opposite outcome is refused, as Kafka refuses it.
        assert txn.end(committed=False, epoch=used).error_code == INVALID_TXN_STATE
        # An abort with nothing produced since bumps the epoch (Kafka's way to recover from
        # an abortable error); a commit of nothing is refused.
        idle = txn.end(committed=False)
        assert idle.error_code == 0
        assert int(idle.producer_epoch) == int(first.producer_epoch) + 1
        assert txn.end(committed=True).error_code == INVALID_TXN_STATE
    assert _values(bootstrap, "v2-retry") == [b"once"]


def test_txn_offset_commit_adds_its_group(bootstrap: str) -> None:
    _create(bootstrap, {"v2-src": 1, "v2-out": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, "t-v2-offsets")
        assert txn.produce("v2-out", 0, b"derived") == 0
        assert txn.commit_offset("v2-group", "v2-src", 7) == 0  # no AddOffsetsToTxn before
        assert _committed(bootstrap, "v2-group", "v2-src") == OFFSET_INVALID  # pending
        assert txn.end(committed=True).error_code == 0
        assert _committed(bootstrap, "v2-group", "v2-src") == 7

        assert txn.produce("v2-out", 0, b"dropped") == 0
        assert txn.commit_offset("v2-group", "v2-src", 9) == 0
        assert txn.end(committed=False).error_code == 0
    assert _committed(bootstrap, "v2-group", "v2-src") == 7
    assert _values(bootstrap, "v2-out") == [b"derived"]


def test_timed_out_transaction_fences_the_late_commit(tmp_path: Path) -> None:
    with embedded_broker(tmp_path / "data") as broker:
        bootstrap = broker.bootstrap
        _create(bootstrap, {"v2-timeout": 1})
        with connect(bootstrap) as sock:
            txn = V2Producer(sock, "t-v2-timeout", timeout_ms=500)
            used = txn.producer_epoch
            assert txn.produce("v2-timeout", 0, b"too-slow") == 0
            deadline = time.monotonic() + DEADLINE_S
            while b"too-slow" not in _values(bootstrap, "v2-timeout") and _lso_stuck(
                bootstrap, "v2-timeout"
            ):
                assert time.monotonic() < deadline, "the transaction never timed out"
                time.sleep(0.2)
            zombie = txn.batch("v2-timeout", 0, b"zombie")  # still under the old epoch
            assert txn.send("v2-timeout", 0, zombie) == INVALID_PRODUCER_EPOCH
            late = txn.end(committed=True)
            assert late.error_code == INVALID_TXN_STATE  # Kafka's answer too
            # Aborting is what happened: that answer hands over the epoch to go on with.
            assert txn.end(committed=False, epoch=used).error_code == 0
            assert txn.producer_epoch > used
            assert txn.produce("v2-timeout", 0, b"next") == 0
            assert txn.end(committed=True).error_code == 0
        assert _values(bootstrap, "v2-timeout") == [b"next"]


def _lso_stuck(bootstrap: str, topic: str) -> bool:
    """True while an open transaction holds the last stable offset below the high mark."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lso-{uuid.uuid4()}",
            "isolation.level": "read_committed",
        }
    )
    low, stable = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    consumer.close()
    return bool(stable == low)


def test_bumped_epoch_and_retry_survive_restart(broker: BrokerThread) -> None:
    bootstrap = broker.bootstrap
    _create(bootstrap, {"v2-restart": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, "t-v2-restart")
        used = txn.producer_epoch
        assert txn.produce("v2-restart", 0, b"before") == 0
        delayed = txn.batch("v2-restart", 0, b"delayed")
        answer = txn.end(committed=True)
        assert answer.error_code == 0
    broker.stop()
    with embedded_broker(broker.config.data_dir) as again:
        with connect(again.bootstrap) as sock:
            txn.sock = sock
            retry = txn.end(committed=True, epoch=used)
            assert retry.error_code == 0
            assert int(retry.producer_epoch) == int(answer.producer_epoch)
            assert txn.send("v2-restart", 0, delayed) == INVALID_PRODUCER_EPOCH
            assert txn.produce("v2-restart", 0, b"after") == 0
            assert txn.end(committed=True).error_code == 0
        assert _values(again.bootstrap, "v2-restart") == [b"before", b"after"]


def test_epoch_overflow_moves_to_a_new_producer_id(tmp_path: Path) -> None:
    """The bump that exhausts the epoch hands out a new producer id; the markers of the
    transaction it ends still go out under the old id, so nothing is left hanging."""
    data = tmp_path / "data"
    data.mkdir()
    store = TxnStore(data, 0)
    # One InitProducerId away from the last epoch.
    store.write(TxnMeta("t-v2-wrap", 999, 32_765, 60_000, state=COMPLETE_COMMIT), 0)
    store.close()
    with embedded_broker(data) as broker:
        bootstrap = broker.bootstrap
        _create(bootstrap, {"v2-wrap": 1})
        with connect(bootstrap) as sock:
            txn = V2Producer(sock, "t-v2-wrap")
            assert (txn.producer_id, txn.producer_epoch) == (999, 32_766)
            assert txn.produce("v2-wrap", 0, b"last-epoch") == 0
            answer = txn.end(committed=True)
            assert answer.error_code == 0
            assert int(answer.producer_id) != 999
            assert int(answer.producer_epoch) == 0
            assert txn.produce("v2-wrap", 0, b"new-id") == 0
            assert txn.end(committed=True).error_code == 0
        assert _values(bootstrap, "v2-wrap") == [b"last-epoch", b"new-id"]


@pytest.mark.parametrize("version", [3, 4])
def test_end_txn_before_v5_keeps_the_epoch(bootstrap: str, version: int) -> None:
    """Transaction version 1 clients (librdkafka, kafka-python, aiokafka) keep one epoch."""
    _create(bootstrap, {f"v1-{version}": 1})
    with connect(bootstrap) as sock:
        txn = V2Producer(sock, f"t-v1-{version}")
        epoch = txn.producer_epoch
        add = call(
            sock,
            24,
            3,
            {
                "v3_and_below_transactional_id": txn.txn_id,
                "v3_and_below_producer_id": txn.producer_id,
                "v3_and_below_producer_epoch": epoch,
                "v3_and_below_topics": [{"name": f"v1-{version}", "partitions": [0]}],
            },
        )
        assert (
            add.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
        )
        assert txn.produce(f"v1-{version}", 0, b"kept", version=11) == 0
        response = call(
            sock,
            26,
            version,
            {
                "transactional_id": txn.txn_id,
                "producer_id": txn.producer_id,
                "producer_epoch": epoch,
                "committed": True,
            },
        )
        assert response.error_code == 0
        # Produce v11 only verifies: the ended transaction does not take a late batch.
        assert txn.produce(f"v1-{version}", 0, b"late", version=11) == INVALID_TXN_STATE
    assert _values(bootstrap, f"v1-{version}") == [b"kept"]
