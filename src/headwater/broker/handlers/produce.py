"""Produce v3-12: validate batches, assign offsets in place, append verbatim, acknowledge.

v3 is the first version with v2 record batches and transactional ids; v5 adds log start
offset; v8 per-record errors and an error message; v9 flexible encoding; v10-11 leader hints;
v12 (transaction version 2) lets a transactional batch add its partition to the transaction.
acks=0 is never answered; acks=all waits for the fsync policy (group commit). A produce never
creates a topic, as in Kafka: clients auto-create through Metadata, which they ask first.
CreateTime records beyond message.timestamp.before/after.max.ms are INVALID_TIMESTAMP.
Authorises WRITE on the transactional id (transactional records) and WRITE on each topic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from headwater.broker import _authorize, _schema_validation
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._timestamp_bounds import timestamp_errors
from headwater.broker._topics import Partition
from headwater.protocol import (
    BatchHeader,
    CorruptBatchError,
    read_header,
    set_leader_epoch,
    split_batches,
)
from headwater.storage import PartitionLog, StorageFullError

log = logging.getLogger(__name__)

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_REQUIRED_ACKS = 21
INVALID_TIMESTAMP = 32
KAFKA_STORAGE_ERROR = 56
INVALID_RECORD = 87
DUPLICATE_SEQUENCE_NUMBER = 46
IMPLICIT_ADD_VERSION = 12
# The low byte of a v2 batch's attributes, and its transactional bit.
_ATTRIBUTES_LOW = 22
_TRANSACTIONAL = 0x10


def _error(index: int, code: int, message: str | None = None) -> dict[str, Any]:
    return {
        "index": index,
        "error_code": code,
        "base_offset": -1,
        "log_append_time": -1,
        "log_start_offset": -1,
        "record_errors": [],
        "error_message": message,
    }


@handles(0, "Produce", 3, 12)
async def produce(ctx: RequestContext, request: Any) -> dict[str, Any] | None:
    broker = ctx.broker
    acks = request.acks
    durable: list[tuple[PartitionLog, int]] = []
    results = []
    denied: frozenset[str] = frozenset()
    if broker.authorizer is not None:
        if _transactional_refused(ctx, request):
            code = _authorize.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            return None if acks == 0 else _every_partition(request, code)
        denied = _authorize.denied_topics(
            ctx, _authorize.WRITE, (t.name for t in request.topic_data)
        )
    for topic_data in request.topic_data:
        topic = broker.topics.topics.get(topic_data.name)
        partitions = []
        for data in topic_data.partition_data:
            if acks not in (0, 1, -1):
                partitions.append(_error(data.index, INVALID_REQUIRED_ACKS))
                continue
            if topic_data.name in denied:
                partitions.append(_error(data.index, _authorize.TOPIC_AUTHORIZATION_FAILED))
                continue
            if topic is None or not 0 <= data.index < len(topic.partitions):
                partitions.append(
                    _error(
                        data.index,
                        UNKNOWN_TOPIC_OR_PARTITION,
                        f"unknown topic or partition {topic_data.name}",
                    )
                )
                continue
            partitions.append(_append(ctx, topic, data, durable, request.transactional_id))
        results.append({"name": topic_data.name, "partition_responses": partitions})
    if acks == 0:
        return None
    policy = broker.config.fsync_policy
    if durable and (policy == "always" or (policy == "acks-all" and acks == -1)):
        await asyncio.gather(*(broker.committer.wait_durable(lg, off) for lg, off in durable))
    return {"responses": results, "throttle_time": 0}


def _transactional_refused(ctx: RequestContext, request: Any) -> bool:
    """Kafka refuses the whole request when it carries transactional records and WRITE on
    its transactional id is not allowed (or it names none)."""
    transactional = any(
        len(d.records or b"") > _ATTRIBUTES_LOW and (d.records[_ATTRIBUTES_LOW] & _TRANSACTIONAL)
        for t in request.topic_data
        for d in t.partition_data
    )
    txn_id = request.transactional_id
    if not transactional:
        return False
    return txn_id is None or not ctx.allowed(_authorize.WRITE, _authorize.TRANSACTIONAL_ID, txn_id)


def _every_partition(request: Any, code: int) -> dict[str, Any]:
    return {
        "responses": [
            {
                "name": t.name,
                "partition_responses": [_error(d.index, code) for d in t.partition_data],
            }
            for t in request.topic_data
        ],
        "throttle_time": 0,
    }


def _refusal(
    ctx: RequestContext,
    topic: str,
    index: int,
    headers: list[BatchHeader],
    limit: int,
    transactional_id: str | None,
) -> dict[str, Any] | None:
    """Size and transaction checks every batch must pass before anything is written."""
    for header in headers:
        if header.size > limit:
            return _error(
                index,
                MESSAGE_TOO_LARGE,
                f"batch of {header.size} bytes exceeds max.message.bytes={limit}",
            )
        if header.is_transactional:
            # KIP-890: the partition must be part of this producer's open transaction, so a
            # delayed produce of an ended transaction cannot slip into the next one. From v12
            # the produce itself adds the partition, under the epoch of the open transaction.
            coordinator = ctx.broker.transactions
            check = (
                coordinator.add_partition_implicitly
                if ctx.version >= IMPLICIT_ADD_VERSION
                else coordinator.verify_produce
            )
            code = check(
                transactional_id, header.producer_id, header.producer_epoch, (topic, index)
            )
            if code:
                return _error(index, code, "batch is not part of an open transaction")
    return None


def _content_refusal(
    ctx: RequestContext,
    topic: str,
    partition: Partition,
    configs: dict[str, str],
    payload: bytearray,
    headers: list[BatchHeader],
) -> dict[str, Any] | None:
    """Record-level checks, in Kafka's order: timestamps, then (opt-in) schema ids."""
    broker = ctx.broker
    if configs["message.timestamp.type"] == "CreateTime":
        late = timestamp_errors(
            payload,
            headers,
            before_max_ms=int(configs["message.timestamp.before.max.ms"]),
            after_max_ms=int(configs["message.timestamp.after.max.ms"]),
            now_ms=broker.now_ms(),
        )
        if late:
            answer = _error(
                partition.index,
                INVALID_TIMESTAMP,
                f"{len(late)} records have timestamps outside message.timestamp.*.max.ms",
            )
            answer.update(record_errors=late, log_start_offset=partition.log.log_start_offset)
            return answer
    if configs[_schema_validation.CONFIG] == "true":
        invalid = _schema_validation.refusal(broker.topics, topic, payload, headers)
        if invalid is not None:
            log.info("schema validation refused topic=%s partition=%d", topic, partition.index)
            answer = _error(partition.index, INVALID_RECORD, invalid[0])
            answer["record_errors"] = invalid[1]
            return answer
    return None


def _append(
    ctx: RequestContext,
    topic: Any,
    data: Any,
    durable: list[tuple[PartitionLog, int]],
    transactional_id: str | None,
) -> dict[str, Any]:
    broker = ctx.broker
    partition = topic.partitions[data.index]
    records = data.records
    configs = broker.topics.effective_configs(topic)
    limit = int(configs["max.message.bytes"])
    if not records:
        return _error(data.index, INVALID_RECORD, "empty record set")
    payload = bytearray(records)
    try:
        headers = split_batches(payload)
    except CorruptBatchError as exc:
        log.warning("corrupt batch topic=%s partition=%d reason=%s", topic.name, data.index, exc)
        return _error(data.index, CORRUPT_MESSAGE, str(exc))
    refusal = _refusal(ctx, topic.name, data.index, headers, limit, transactional_id)
    if refusal is not None:
        return refusal
    refusal = _content_refusal(ctx, topic.name, partition, configs, payload, headers)
    if refusal is not None:
        return refusal
    verdicts = [partition.producers.check(h) for h in headers]
    for verdict in verdicts:
        if verdict.error_code:
            answer = _error(data.index, verdict.error_code, "producer sequence or epoch rejected")
            answer["log_start_offset"] = partition.log.log_start_offset
            return answer
    duplicates = [v.duplicate_of for v in verdicts if v.duplicate_of is not None]
    if duplicates:
        if len(headers) > 1:
            return _error(data.index, DUPLICATE_SEQUENCE_NUMBER, "batch set mixes retries")
        base, last = duplicates[0]
        # A retry of a batch already written: answer with its original offsets, write nothing.
        durable.append((partition.log, last))
        # Kafka answers a retry with the stored batch's max timestamp as its append time. A
        # retry carries the same records, so its header has it, unless the topic stamped the
        # append time: that is kept for the producer's latest batch, the usual retry.
        stamp = headers[0].max_timestamp
        latest = partition.producers.producers().get(headers[0].producer_id)
        if latest is not None and latest[2] == last:
            stamp = latest[3]
        return {
            "index": data.index,
            "error_code": 0,
            "base_offset": base,
            "log_append_time": stamp,
            "log_start_offset": partition.log.log_start_offset,
            "record_errors": [],
            "error_message": None,
        }
    pos = 0
    for header in headers:
        set_leader_epoch(payload, pos, 0)
        pos += header.size
    log_append_time = configs["message.timestamp.type"] == "LogAppendTime"
    try:
        result = partition.log.append(
            payload, headers, now_ms=broker.now_ms(), log_append_time=log_append_time
        )
    except StorageFullError as exc:
        log.error("disk full topic=%s partition=%d error=%s", topic.name, data.index, exc)
        return _error(data.index, KAFKA_STORAGE_ERROR, f"broker disk full: {exc}")
    pos = 0
    for header in headers:
        if header.producer_id >= 0:
            partition.producers.record(read_header(payload, pos))
        pos += header.size
    partition.notify()
    durable.append((partition.log, result.last_offset))
    return {
        "index": data.index,
        "error_code": 0,
        "base_offset": result.base_offset,
        "log_append_time": result.log_append_time_ms,
        "log_start_offset": result.log_start_offset,
        "record_errors": [],
        "error_message": None,
    }
