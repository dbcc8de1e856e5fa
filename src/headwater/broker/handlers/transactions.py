"""Idempotence and transactions: InitProducerId v0-5, AddPartitionsToTxn v0-3,
AddOffsetsToTxn v0-4, TxnOffsetCommit v0-5, EndTxn v0-5, DescribeTransactions v0,
ListTransactions v0-1, DescribeProducers v0.

InitProducerId v2 makes the timeout a duration, v3 lets a producer re-init with its current id
and epoch, v4 is flexible. TxnOffsetCommit v3 adds group generation and member (KIP-447).
The versions KIP-890 added (InitProducerId v5, AddOffsetsToTxn v4, TxnOffsetCommit v4, EndTxn
v4) only allow a new error code this broker never sends. Transaction version 2 (KIP-890 part
2) is TxnOffsetCommit v5, which adds its group to the transaction, and EndTxn v5, which bumps
the producer epoch and answers with it; ApiVersions advertises it as the finalized feature
``transaction.version`` = 2. ListTransactions v1 adds a duration filter.

Authorises WRITE on the transactional id (InitProducerId when it names one, else
IDEMPOTENT_WRITE on the cluster or WRITE on any topic; AddPartitionsToTxn with WRITE on each
topic; AddOffsetsToTxn and TxnOffsetCommit with READ on the group, TxnOffsetCommit with READ
on each topic; EndTxn), DESCRIBE on each transactional id (DescribeTransactions refuses,
ListTransactions leaves out) and READ on each topic (DescribeProducers).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._txn_coordinator import TxnError
from headwater.broker.handlers.offsets import membership_error
from headwater.protocol._codec import millis

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_PRODUCER_EPOCH = 47
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105
_TXN_REFUSED = _authorize.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def _may_write(ctx: RequestContext, transactional_id: str) -> bool:
    return ctx.allowed(_authorize.WRITE, _authorize.TRANSACTIONAL_ID, transactional_id)


def _init_refusal(ctx: RequestContext, transactional_id: str | None) -> int:
    """Kafka: WRITE on a named transactional id; without one, IDEMPOTENT_WRITE on the
    cluster or WRITE on any topic (KIP-679)."""
    if ctx.broker.authorizer is None:
        return 0
    if transactional_id is not None:
        return 0 if _may_write(ctx, transactional_id) else _TXN_REFUSED
    if _authorize.allowed_cluster(ctx, _authorize.IDEMPOTENT_WRITE, refusal=False):
        return 0
    if _authorize.allowed_any(ctx, _authorize.WRITE, _authorize.TOPIC):
        return 0
    _authorize.denied(
        ctx, "InitProducerId", _authorize.IDEMPOTENT_WRITE, _authorize.CLUSTER, "kafka-cluster"
    )
    return _authorize.CLUSTER_AUTHORIZATION_FAILED


# KIP-588: from these versions a producer whose epoch was bumped past is told PRODUCER_FENCED;
# older clients only know INVALID_PRODUCER_EPOCH (TxnOffsetCommit keeps it in every version).
_FENCED_FROM_VERSION = {22: 4, 24: 2, 25: 2, 26: 2}


def _fencing(ctx: RequestContext, api_key: int, code: int) -> int:
    if code == INVALID_PRODUCER_EPOCH and ctx.version >= _FENCED_FROM_VERSION[api_key]:
        return PRODUCER_FENCED
    return code


# EndTxn and TxnOffsetCommit v5 are the requests of transaction version 2 (KIP-890 part 2).
TRANSACTION_V2_VERSION = 5


@handles(22, "InitProducerId", 0, 5)
async def init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "throttle_time": 0,
        "error_code": 0,
        "producer_id": -1,
        "producer_epoch": -1,
    }
    refused = _init_refusal(ctx, request.transactional_id)
    if refused:
        out["error_code"] = refused
        return out
    if request.transactional_id is None:
        out["producer_id"] = ctx.broker.allocate_producer_id()
        out["producer_epoch"] = 0
        return out
    try:
        pid, epoch = await ctx.broker.transactions.init_producer_id(
            request.transactional_id,
            millis(request.transaction_timeout),
            getattr(request, "producer_id", -1),
            getattr(request, "producer_epoch", -1),
        )
    except TxnError as exc:
        out["error_code"] = _fencing(ctx, 22, exc.error_code)
        return out
    out["producer_id"], out["producer_epoch"] = pid, epoch
    return out


@handles(24, "AddPartitionsToTxn", 0, 3)
async def add_partitions_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    wanted = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
    errors = _add_partitions_refusal(ctx, request, wanted)
    if errors is None:
        errors = await _add_partitions(ctx, request, wanted)
    by_topic: dict[str, list[dict[str, int]]] = {}
    for (topic, partition), code in errors.items():
        by_topic.setdefault(topic, []).append(
            {"partition_index": partition, "partition_error_code": code}
        )
    return {
        "throttle_time": 0,
        "results_by_topic_v3_and_below": [
            {"name": name, "results_by_partition": parts} for name, parts in by_topic.items()
        ],
    }


def _add_partitions_refusal(
    ctx: RequestContext, request: Any, wanted: list[tuple[str, int]]
) -> dict[tuple[str, int], int] | None:
    """Kafka's answer when the id or a topic is refused: the refused partitions (and unknown
    ones) say why, the others OPERATION_NOT_ATTEMPTED."""
    if ctx.broker.authorizer is None:
        return None
    if not _may_write(ctx, request.v3_and_below_transactional_id):
        return dict.fromkeys(wanted, _TXN_REFUSED)
    denied = _authorize.denied_topics(ctx, _authorize.WRITE, (t for t, _ in wanted))
    if not denied:
        return None
    topics = ctx.broker.topics
    errors = {}
    for topic, partition in wanted:
        if topic in denied:
            errors[(topic, partition)] = _authorize.TOPIC_AUTHORIZATION_FAILED
        elif topics.partition(topic, partition) is None:
            errors[(topic, partition)] = UNKNOWN_TOPIC_OR_PARTITION
        else:
            errors[(topic, partition)] = _authorize.OPERATION_NOT_ATTEMPTED
    return errors


async def _add_partitions(
    ctx: RequestContext, request: Any, wanted: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    try:
        errors = await ctx.broker.transactions.add_partitions(
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            wanted,
        )
    except TxnError as exc:
        errors = dict.fromkeys(wanted, _fencing(ctx, 24, exc.error_code))
    return errors


@handles(25, "AddOffsetsToTxn", 0, 4)
async def add_offsets_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _may_write(ctx, request.transactional_id):
        return {"throttle_time": 0, "error_code": _TXN_REFUSED}
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": _authorize.GROUP_AUTHORIZATION_FAILED}
    try:
        await ctx.broker.transactions.add_offsets(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.group_id,
        )
    except TxnError as exc:
        return {"throttle_time": 0, "error_code": _fencing(ctx, 25, exc.error_code)}
    return {"throttle_time": 0, "error_code": 0}


@handles(28, "TxnOffsetCommit", 0, 5)
async def txn_offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _may_write(ctx, request.transactional_id):
        return _every_partition(request, _TXN_REFUSED, frozenset(), 0)
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return _every_partition(request, _authorize.GROUP_AUTHORIZATION_FAILED, frozenset(), 0)
    denied = _authorize.denied_topics(ctx, _authorize.READ, (t.name for t in request.topics))
    offsets = []
    code = 0
    for topic in request.topics:
        if topic.name in denied:
            continue  # Kafka commits the others
        for p in topic.partitions:
            if ctx.broker.topics.partition(topic.name, p.partition_index) is None:
                code = code or UNKNOWN_TOPIC_OR_PARTITION
            offsets.append(
                (
                    topic.name,
                    p.partition_index,
                    p.committed_offset,
                    getattr(p, "committed_leader_epoch", -1),
                    p.committed_metadata,
                )
            )
    if not code and not offsets and denied:
        return _every_partition(request, 0, denied, _authorize.TOPIC_AUTHORIZATION_FAILED)
    if not code:
        # KIP-447: a consumer replaced by a rebalance must not commit through a transaction.
        code = membership_error(
            ctx,
            request.group_id,
            getattr(request, "generation_id", -1),
            getattr(request, "member_id", ""),
        )
    if not code:
        try:
            await ctx.broker.transactions.txn_offset_commit(
                request.transactional_id,
                request.producer_id,
                request.producer_epoch,
                request.group_id,
                offsets,
                implicit=ctx.version >= TRANSACTION_V2_VERSION,
            )
        except TxnError as exc:
            code = exc.error_code
    return _every_partition(request, code, denied, _authorize.TOPIC_AUTHORIZATION_FAILED)


def _every_partition(
    request: Any, code: int, denied: frozenset[str], denied_code: int
) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "topics": [
            {
                "name": t.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": denied_code if t.name in denied else code,
                    }
                    for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


@handles(26, "EndTxn", 0, 5)
async def end_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _may_write(ctx, request.transactional_id):
        return {
            "throttle_time": 0,
            "error_code": _TXN_REFUSED,
            "producer_id": -1,
            "producer_epoch": -1,
        }
    try:
        producer_id, producer_epoch = await ctx.broker.transactions.end_txn(
            request.transactional_id,
            request.producer_id,
            request.producer_epoch,
            request.committed,
            bump_epoch=ctx.version >= TRANSACTION_V2_VERSION,
        )
    except TxnError as exc:
        return {
            "throttle_time": 0,
            "error_code": _fencing(ctx, 26, exc.error_code),
            "producer_id": -1,
            "producer_epoch": -1,
        }
    return {
        "throttle_time": 0,
        "error_code": 0,
        "producer_id": producer_id,
        "producer_epoch": producer_epoch,
    }


@handles(65, "DescribeTransactions", 0, 0)
async def describe_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    known = ctx.broker.transactions.store.transactions
    states = []
    for txn_id in request.transactional_ids:
        refused = not ctx.allowed(_authorize.DESCRIBE, _authorize.TRANSACTIONAL_ID, txn_id)
        meta = None if refused else known.get(txn_id)
        if meta is None:
            states.append(
                {
                    "error_code": _TXN_REFUSED if refused else TRANSACTIONAL_ID_NOT_FOUND,
                    "transactional_id": txn_id,
                    "transaction_state": "",
                    "producer_id": -1,
                    "producer_epoch": -1,
                    "transaction_start_time": -1,
                    "transaction_timeout": 0,
                    "topics": [],
                }
            )
            continue
        topics: dict[str, list[int]] = {}
        for topic, partition in sorted(meta.partitions):
            topics.setdefault(topic, []).append(partition)
        # Kafka leaves out the topics the caller may not describe.
        for topic in _authorize.denied_topics(ctx, _authorize.DESCRIBE, topics, refusal=False):
            del topics[topic]
        states.append(
            {
                "error_code": 0,
                "transactional_id": txn_id,
                "transaction_state": meta.state,
                "transaction_timeout": meta.timeout_ms,
                "transaction_start_time": meta.start_ms,
                "producer_id": meta.producer_id,
                "producer_epoch": meta.producer_epoch,
                "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
            }
        )
    return {"throttle_time": 0, "transaction_states": states}


@handles(66, "ListTransactions", 0, 1)
async def list_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    states = set(request.state_filters or ())
    pids = set(request.producer_id_filters or ())
    min_age = getattr(request, "duration_filter", -1)
    now = ctx.broker.now_ms()
    out = []
    for meta in ctx.broker.transactions.store.transactions.values():
        if states and meta.state not in states:
            continue
        if pids and meta.producer_id not in pids:
            continue
        if min_age >= 0 and (meta.start_ms < 0 or now - meta.start_ms < min_age):
            continue
        if ctx.broker.authorizer is not None and not _authorize.allowed(
            ctx,
            _authorize.DESCRIBE,
            _authorize.TRANSACTIONAL_ID,
            meta.transactional_id,
            refusal=False,
        ):
            continue
        out.append(
            {
                "transactional_id": meta.transactional_id,
                "producer_id": meta.producer_id,
                "transaction_state": meta.state,
            }
        )
    return {
        "throttle_time": 0,
        "error_code": 0,
        "unknown_state_filters": [],
        "transaction_states": out,
    }


@handles(61, "DescribeProducers", 0, 0)
async def describe_producers(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = []
    denied = _authorize.denied_topics(ctx, _authorize.READ, (t.name for t in request.topics))
    for want in request.topics:
        parts = []
        for index in want.partition_indexes:
            if want.name in denied:
                code = _authorize.TOPIC_AUTHORIZATION_FAILED
                parts.append(
                    {
                        "partition_index": index,
                        "error_code": code,
                        "error_message": _authorize.MESSAGES[code],
                        "active_producers": [],
                    }
                )
                continue
            partition = ctx.broker.topics.partition(want.name, index)
            if partition is None:
                parts.append(
                    {
                        "partition_index": index,
                        "error_code": UNKNOWN_TOPIC_OR_PARTITION,
                        "error_message": f"unknown partition {want.name}-{index}",
                        "active_producers": [],
                    }
                )
                continue
            state = partition.producers
            parts.append(
                {
                    "partition_index": index,
                    "error_code": 0,
                    "error_message": None,
                    "active_producers": [
                        {
                            "producer_id": pid,
                            "producer_epoch": epoch,
                            "last_sequence": seq,
                            "last_timestamp": timestamp,
                            "coordinator_epoch": 0,
                            "current_txn_start_offset": state.ongoing.get(pid, -1),
                        }
                        for pid, (epoch, seq, _, timestamp) in state.producers().items()
                    ],
                }
            )
        topics.append({"name": want.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
