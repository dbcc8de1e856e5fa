"""Idempotent and transactional producers: fencing, sequence gaps, stale epochs, invalid
transaction transitions, and what read_committed consumers see (aborted records, the LSO)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from conformance._harness import (
    Observation,
    Target,
    error_name,
    now_ms,
    plain,
    scenario,
    wait_for,
)
from conformance.errors import fetched
from headwater.protocol import NewRecord, build_batch


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
    records = [NewRecord(None, f"s{seq + i}".encode(), now_ms()) for i in range(n)]
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


def _init_v5(t: Target, txn_id: str, timeout_ms: int = 60_000) -> tuple[int, int]:
    t.settle(
        10,
        4,
        {"key_type": 1, "coordinator_keys": [txn_id]},
        lambda r: str(plain(r.coordinators[0].error_code)),
    )
    response = t.settle(
        22,
        5,
        {
            "transactional_id": txn_id,
            "transaction_timeout": timeout_ms,
            "producer_id": -1,
            "producer_epoch": -1,
        },
        lambda r: str(plain(r.error_code)),
    )
    return int(response.producer_id), int(response.producer_epoch)


def _end_v5(t: Target, txn_id: str, pid: int, epoch: int, committed: bool) -> list[Any]:
    """EndTxn v5 (transaction version 2): [error, epoch handed back relative to ``epoch``]."""
    response = t.settle(
        26,
        5,
        {
            "transactional_id": txn_id,
            "producer_id": pid,
            "producer_epoch": epoch,
            "committed": committed,
        },
        lambda r: str(plain(r.error_code)),
    )
    code = plain(response.error_code)
    return [code, int(response.producer_epoch) - epoch if code == "NONE" else None]


def _produce_v12(t: Target, topic: str, txn_id: str, pid: int, epoch: int, seq: int) -> str:
    batch = _batch(pid, epoch, seq, 1, transactional=True)
    return str(t.produce_raw(topic, batch, transactional_id=txn_id, version=12)["error_code"])


@scenario
def tv2_end_txn(t: Target) -> Observation:
    """Transaction version 2, raw (Produce v12, EndTxn v5): EndTxn abort and commit with
    nothing open; a produced transaction committed, the commit retried under the old epoch,
    then the old epoch asking for an abort, an older epoch committing, and a late produce."""
    topic = t.create_topic("tv2")
    txn_id = t.unique("txn")
    pid, epoch = _init_v5(t, txn_id)
    out: dict[str, Any] = {"empty_abort": _end_v5(t, txn_id, pid, epoch, committed=False)}
    pid, epoch = _init_v5(t, txn_id)
    out["empty_commit"] = _end_v5(t, txn_id, pid, epoch, committed=True)
    pid, epoch = _init_v5(t, txn_id)
    out["produce"] = _produce_v12(t, topic, txn_id, pid, epoch, 0)
    out["commit"] = _end_v5(t, txn_id, pid, epoch, committed=True)
    out["commit_retry"] = _end_v5(t, txn_id, pid, epoch, committed=True)
    out["abort_old_epoch"] = _end_v5(t, txn_id, pid, epoch, committed=False)
    out["commit_older_epoch"] = _end_v5(t, txn_id, pid, epoch - 1, committed=True)
    out["late_produce"] = _produce_v12(t, topic, txn_id, pid, epoch, 1)
    return out


@scenario
def tv2_timeout(t: Target) -> Observation:
    """Transaction version 2, raw: a transaction with a 1 s timeout produces and then waits
    until the broker aborts it; then the late EndTxn commit, and an abort under that epoch."""
    topic = t.create_topic("tv2-timeout")
    txn_id = t.unique("txn")
    pid, epoch = _init_v5(t, txn_id, timeout_ms=1000)
    out: dict[str, Any] = {"produce": _produce_v12(t, topic, txn_id, pid, epoch, 0)}
    _await_markers(t, topic)
    out["late_commit"] = _end_v5(t, txn_id, pid, epoch, committed=True)
    out["late_abort"] = _end_v5(t, txn_id, pid, epoch, committed=False)
    out["read_committed"] = _consume(t, topic, "read_committed", 0)
    return out


@scenario
def fenced_by_version(t: Target) -> Observation:
    """After a second InitProducerId bumped the epoch, the old epoch sends AddPartitionsToTxn
    v0-3, AddOffsetsToTxn v0-4, EndTxn v0-4, InitProducerId v3-5 (naming its id and epoch)
    and TxnOffsetCommit v0-4: which versions say PRODUCER_FENCED (raw)."""
    topic = t.create_topic("fenced")
    group = t.unique("group")
    txn_id = t.unique("txn")
    _, pid, old = init_producer_id(t, txn_id)
    init_producer_id(t, txn_id)
    ids = {"transactional_id": txn_id, "producer_id": pid, "producer_epoch": old}
    out: dict[str, Any] = {}
    for version in range(4):
        response = t.call(
            24,
            version,
            {
                "v3_and_below_transactional_id": txn_id,
                "v3_and_below_producer_id": pid,
                "v3_and_below_producer_epoch": old,
                "v3_and_below_topics": [{"name": topic, "partitions": [0]}],
            },
        )
        result = response.results_by_topic_v3_and_below[0].results_by_partition[0]
        out[f"add_partitions_v{version}"] = plain(result.partition_error_code)
    for version in range(5):
        answer = t.call(25, version, {**ids, "group_id": group})
        out[f"add_offsets_v{version}"] = plain(answer.error_code)
    for version in range(5):
        answer = t.call(26, version, {**ids, "committed": False})
        out[f"end_txn_v{version}"] = plain(answer.error_code)
    for version in range(3, 6):
        answer = t.call(22, version, {**ids, "transaction_timeout": 60_000})
        out[f"init_producer_id_v{version}"] = plain(answer.error_code)
    offsets = [
        {
            "name": topic,
            "partitions": [
                {
                    "partition_index": 0,
                    "committed_offset": 1,
                    "committed_leader_epoch": -1,
                    "committed_metadata": "",
                }
            ],
        }
    ]
    for version in range(5):
        body = {
            **ids,
            "group_id": group,
            "generation_id": -1,
            "member_id": "",
            "group_instance_id": None,
            "topics": offsets,
        }
        answer = t.call(28, version, body)
        out[f"txn_offset_commit_v{version}"] = plain(answer.topics[0].partitions[0].error_code)
    return out
