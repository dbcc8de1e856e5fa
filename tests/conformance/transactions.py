"""Idempotent and transactional producers: fencing, sequence gaps, stale epochs, invalid
transaction transitions, and what read_committed consumers see (aborted records, the LSO)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from conformance._harness import Observation, Target, error_name, plain, scenario, wait_for
from conformance.errors import fetched
from headwater.protocol import NewRecord, build_batch

TS = 1_700_000_000_000


def init_producer_id(t: Target, txn_id: str | None) -> tuple[str, int, int]:
    """InitProducerId v4, waited out while Kafka creates __transaction_state."""
    if txn_id is not None:
        t.settle(
            10,
            4,
            {"key_type": 1, "coordinator_keys": [txn_id]},
            lambda r: str(plain(r.coordinators[0].error_code)),
        )
    response = t.settle(
        22,
        4,
        {
            "transactional_id": txn_id,
            "transaction_timeout": 60_000,
            "producer_id": -1,
            "producer_epoch": -1,
        },
        lambda r: str(plain(r.error_code)),
    )
    answer = plain(response)
    return str(answer["error_code"]), int(response.producer_id), int(response.producer_epoch)


def add_partitions(t: Target, txn: tuple[str, int, int], topic: str) -> str:
    txn_id, pid, epoch = txn
    response = t.settle(
        24,
        3,
        {
            "v3_and_below_transactional_id": txn_id,
            "v3_and_below_producer_id": pid,
            "v3_and_below_producer_epoch": epoch,
            "v3_and_below_topics": [{"name": topic, "partitions": [0]}],
        },
        lambda r: str(
            plain(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)
        ),
    )
    result = response.results_by_topic_v3_and_below[0].results_by_partition[0]
    return str(plain(result.partition_error_code))


def end_txn(t: Target, txn: tuple[str, int, int], committed: bool) -> str:
    txn_id, pid, epoch = txn
    response = t.settle(
        26,
        3,
        {
            "transactional_id": txn_id,
            "producer_id": pid,
            "producer_epoch": epoch,
            "committed": committed,
        },
        lambda r: str(plain(r.error_code)),
    )
    return str(plain(response.error_code))


def add_offsets(t: Target, txn: tuple[str, int, int], group: str) -> str:
    txn_id, pid, epoch = txn
    response = t.settle(
        25,
        3,
        {
            "transactional_id": txn_id,
            "producer_id": pid,
            "producer_epoch": epoch,
            "group_id": group,
        },
        lambda r: str(plain(r.error_code)),
    )
    return str(plain(response.error_code))


def _batch(pid: int, epoch: int, seq: int, n: int = 2, *, transactional: bool = False) -> bytes:
    records = [NewRecord(None, f"s{seq + i}".encode(), TS) for i in range(n)]
    return bytes(
        build_batch(
            records,
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
            transactional=transactional,
        )
    )


def _produced(answer: dict[str, Any]) -> dict[str, Any]:
    """A produce answer without the partition index, which every scenario here knows."""
    answer.pop("index")
    return answer


@scenario
def out_of_order_sequence(t: Target) -> Observation:
    """An idempotent producer (raw): sequences 0-1 and 2-3, then a gap (7), a retry of 0-1,
    and the next in-order batch (4-5)."""
    topic = t.create_topic("idem")
    _, pid, epoch = init_producer_id(t, None)
    out = {}
    for label, seq in (("seq_0", 0), ("seq_2", 2), ("gap_7", 7), ("retry_0", 0), ("seq_4", 4)):
        out[label] = _produced(t.produce_raw(topic, _batch(pid, epoch, seq)))
    return out


@scenario
def first_sequence_not_zero(t: Target) -> Observation:
    """A producer id's very first batch on a partition starts at sequence 5 (raw)."""
    topic = t.create_topic("idem")
    _, pid, epoch = init_producer_id(t, None)
    return {"first_seq_5": _produced(t.produce_raw(topic, _batch(pid, epoch, 5)))}


@scenario
def stale_epoch(t: Target) -> Observation:
    """An idempotent producer id writes with epoch 0, then epoch 1 from sequence 3 and from 0,
    then epoch 0 again (raw)."""
    topic = t.create_topic("idem")
    _, pid, _ = init_producer_id(t, None)
    return {
        "epoch_0": _produced(t.produce_raw(topic, _batch(pid, 0, 0))),
        "epoch_1_seq_3": _produced(t.produce_raw(topic, _batch(pid, 1, 3))),
        "epoch_1_seq_0": _produced(t.produce_raw(topic, _batch(pid, 1, 0))),
        "epoch_0_again": _produced(t.produce_raw(topic, _batch(pid, 0, 2))),
    }


@scenario
def fenced_producer(t: Target) -> Observation:
    """Two confluent-kafka transactional producers with the same transactional.id: the first
    opens a transaction, the second initialises; the first's commit, and what read_committed
    consumers see after the second commits."""
    topic = t.create_topic("fenced")
    txn_id = t.unique("txn")
    zombie = t.producer(**{"transactional.id": txn_id})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie")
    zombie.flush(30)
    winner = t.producer(**{"transactional.id": txn_id})
    winner.init_transactions(60)
    winner.begin_transaction()
    winner.produce(topic, value=b"winner")
    winner.commit_transaction(30)
    out: dict[str, Any] = {}
    try:
        zombie.commit_transaction(30)
        out["zombie_commit"] = "NONE"
    except KafkaException as exc:
        out["zombie_commit"] = error_name(exc)
        out["zombie_fatal"] = exc.args[0].fatal()
    out["read_committed"] = _consume(t, topic, "read_committed", 1)
    return out


def _consume(t: Target, topic: str, isolation: str, expected: int) -> list[list[Any]]:
    consumer = t.consumer(**{"isolation.level": isolation, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen: list[list[Any]] = []
    for _ in range(100):
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if len(seen) >= expected:
                break
            continue
        seen.append([msg.offset(), bytes(msg.value()).decode()])
    consumer.close()
    return seen


@scenario
def fenced_raw(t: Target) -> Observation:
    """InitProducerId twice for one transactional id (the epoch is bumped); the old epoch then
    sends AddPartitionsToTxn, a transactional Produce, and EndTxn (raw, TV1 versions)."""
    topic = t.create_topic("fenced")
    txn_id = t.unique("txn")
    _, pid, old = init_producer_id(t, txn_id)
    second = init_producer_id(t, txn_id)
    new = second[2]
    assert add_partitions(t, (txn_id, pid, new), topic) == "NONE"
    return {
        "epochs": [old, new, second[1] == pid],
        "add_partitions_old": add_partitions(t, (txn_id, pid, old), topic),
        "produce_old": _produced(
            t.produce_raw(topic, _batch(pid, old, 0, transactional=True), transactional_id=txn_id)
        ),
        "end_txn_old": end_txn(t, (txn_id, pid, old), committed=True),
        "end_txn_new": end_txn(t, (txn_id, pid, new), committed=False),
    }


@scenario
def end_txn_without_transaction(t: Target) -> Observation:
    """After InitProducerId, EndTxn commit and EndTxn abort with no transaction open (raw)."""
    txn_id = t.unique("txn")
    _, pid, epoch = init_producer_id(t, txn_id)
    return {
        "commit": end_txn(t, (txn_id, pid, epoch), committed=True),
        "abort": end_txn(t, (txn_id, pid, epoch), committed=False),
    }


@scenario
def transitions_after_abort(t: Target) -> Observation:
    """AddPartitionsToTxn, EndTxn abort, then EndTxn commit (the other outcome), EndTxn abort
    again (a retry), AddPartitionsToTxn (a new transaction), EndTxn commit twice (raw)."""
    topic = t.create_topic("txn")
    txn_id = t.unique("txn")
    _, pid, epoch = init_producer_id(t, txn_id)
    txn = (txn_id, pid, epoch)
    return {
        "add_partitions": add_partitions(t, txn, topic),
        "abort": end_txn(t, txn, committed=False),
        "commit_after_abort": end_txn(t, txn, committed=True),
        "abort_retry": end_txn(t, txn, committed=False),
        "add_partitions_after_abort": add_partitions(t, txn, topic),
        "commit": end_txn(t, txn, committed=True),
        "commit_retry": end_txn(t, txn, committed=True),
    }


@scenario
def unknown_transactional_id(t: Target) -> Observation:
    """AddPartitionsToTxn, AddOffsetsToTxn and EndTxn for a transactional id that never
    called InitProducerId, and with a wrong producer id for one that did (raw)."""
    topic = t.create_topic("txn")
    group = t.unique("group")
    known = t.unique("txn")
    _, pid, epoch = init_producer_id(t, known)
    unknown = (t.unique("txn"), 1234567, 0)
    wrong_pid = (known, pid + 1, epoch)
    return {
        "unknown_add_partitions": add_partitions(t, unknown, topic),
        "unknown_add_offsets": add_offsets(t, unknown, group),
        "unknown_end_txn": end_txn(t, unknown, committed=True),
        "wrong_pid_add_partitions": add_partitions(t, wrong_pid, topic),
        "wrong_pid_end_txn": end_txn(t, wrong_pid, committed=False),
    }


@scenario
def produce_outside_transaction(t: Target) -> Observation:
    """A transactional Produce v9 for a partition never added to the transaction, after
    InitProducerId (raw)."""
    topic = t.create_topic("txn")
    txn_id = t.unique("txn")
    _, pid, epoch = init_producer_id(t, txn_id)
    batch = _batch(pid, epoch, 0, transactional=True)
    return {"produce": _produced(t.produce_raw(topic, batch, transactional_id=txn_id))}


@scenario
def read_committed_visibility(t: Target) -> Observation:
    """confluent-kafka: a transaction writes a, b and aborts; the next writes c and commits.
    What read_committed and read_uncommitted consumers see, and ListOffsets latest for each."""
    topic = t.create_topic("visibility")
    producer = t.producer(**{"transactional.id": t.unique("txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"a")
    producer.produce(topic, value=b"b")
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"c")
    producer.commit_transaction(30)
    _await_markers(t, topic)
    return {
        "read_committed": _consume(t, topic, "read_committed", 1),
        "read_uncommitted": _consume(t, topic, "read_uncommitted", 3),
        "latest_committed": t.list_offsets(topic, -1, isolation_level=1)["offset"],
        "latest_uncommitted": t.list_offsets(topic, -1, isolation_level=0)["offset"],
    }


@scenario
def last_stable_offset(t: Target) -> Observation:
    """A committed record, then a transaction left open with two records: ListOffsets latest
    and raw Fetch v12 under both isolation levels, then the same after the abort."""
    topic = t.create_topic("lso")
    producer = t.producer(**{"transactional.id": t.unique("txn")})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"open-1")
    producer.produce(topic, value=b"open-2")
    producer.flush(30)

    def look() -> dict[str, Any]:
        return {
            "latest_committed": t.list_offsets(topic, -1, isolation_level=1)["offset"],
            "latest_uncommitted": t.list_offsets(topic, -1, isolation_level=0)["offset"],
            "fetch_committed": fetched(t.fetch(topic, 0, isolation_level=1)),
            "fetch_uncommitted": fetched(t.fetch(topic, 0, isolation_level=0)),
        }

    out = {"open": look()}
    producer.abort_transaction(30)
    _await_markers(t, topic)
    out["aborted"] = look()
    return out


def _await_markers(t: Target, topic: str) -> None:
    """Kafka writes transaction markers after EndTxn has answered: wait until the last
    stable offset has caught up with the high watermark."""

    def stable() -> bool:
        committed = t.list_offsets(topic, -1, isolation_level=1)["offset"]
        return bool(committed == t.list_offsets(topic, -1, isolation_level=0)["offset"])

    wait_for(stable, f"the transaction markers of {topic}")
