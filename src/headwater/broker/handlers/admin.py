"""Topic administration: CreateTopics v2-7, DeleteTopics v1-6, CreatePartitions v0-3,
and DeleteRecords v0-2.

CreateTopics v5 returns the resulting configs and partition counts, v7 topic ids; DeleteTopics
v6 accepts topic ids. Replication factors other than 1 (or -1, the default) are refused:
this broker is one node and never pretends to replicate.

Authorises CREATE on the cluster or else on each topic, and DESCRIBE_CONFIGS on it to see its
configs in the answer (CreateTopics); DELETE on each topic (DeleteTopics, DeleteRecords);
ALTER on each topic (CreatePartitions).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._topics import TopicError

INVALID_REPLICATION_FACTOR = 38
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_OUT_OF_RANGE = 1
INVALID_REQUEST = 42
_TOPIC_REFUSED = _authorize.TOPIC_AUTHORIZATION_FAILED


def _may_create(ctx: RequestContext, cluster: bool, name: str) -> bool:
    return cluster or ctx.allowed(_authorize.CREATE, _authorize.TOPIC, name)


@handles(19, "CreateTopics", 2, 7)
async def create_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    cluster = broker.authorizer is None or _authorize.allowed_cluster(
        ctx, _authorize.CREATE, refusal=False
    )
    out = []
    for want in request.topics:
        entry: dict[str, Any] = {
            "name": want.name,
            "error_code": 0,
            "error_message": None,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": [],
        }
        if not _may_create(ctx, cluster, want.name):
            entry.update(error_code=_TOPIC_REFUSED, error_message="Authorization failed.")
            out.append(entry)
            continue
        partitions = want.num_partitions
        if partitions == -1:
            partitions = len(want.assignments) or broker.config.num_partitions
        if want.replication_factor not in (-1, 1):
            entry["error_code"] = INVALID_REPLICATION_FACTOR
            entry["error_message"] = (
                f"replication factor {want.replication_factor} is not possible on a "
                "single-node broker; use 1 (or point clients at a Kafka cluster)"
            )
            out.append(entry)
            continue
        configs = {c.name: c.value for c in want.configs if c.value is not None}
        try:
            topic = await broker.topics.create_async(
                want.name, partitions, configs, broker.now_ms(), validate_only=request.validate_only
            )
        except TopicError as exc:
            entry["error_code"] = exc.error_code
            entry["error_message"] = str(exc)
            out.append(entry)
            continue
        entry["num_partitions"] = partitions
        entry["replication_factor"] = 1
        if topic is not None:
            entry["topic_id"] = topic.topic_id
        if topic is not None and not ctx.allowed(
            _authorize.DESCRIBE_CONFIGS, _authorize.TOPIC, topic.name
        ):
            entry["topic_config_error_code"] = _TOPIC_REFUSED
        elif topic is not None:
            values = broker.topics.effective_configs(topic)
            entry["configs"] = [
                {
                    "name": k,
                    "value": v,
                    "read_only": False,
                    "config_source": broker.topics.config_source(topic, k),
                    "is_sensitive": False,
                }
                for k, v in values.items()
            ]
        out.append(entry)
    return {"throttle_time": 0, "topics": out}


@handles(20, "DeleteTopics", 1, 6)
async def delete_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics
    if ctx.version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    out = []
    for name, topic_id in wanted:
        if name is None and topic_id is not None and topic_id in topics.by_id:
            name = topics.by_id[topic_id].name
        entry: dict[str, Any] = {
            "name": name,
            "topic_id": topic_id,
            "error_code": 0,
            "error_message": None,
        }
        if name is not None and not ctx.allowed(_authorize.DELETE, _authorize.TOPIC, name):
            entry.update(error_code=_TOPIC_REFUSED, error_message=_authorize.MESSAGES[29])
            out.append(entry)
            continue
        try:
            deleted = topics.delete(name or "")
            entry["topic_id"] = deleted.topic_id
        except TopicError as exc:
            entry["error_code"] = exc.error_code
            entry["error_message"] = str(exc)
        out.append(entry)
    return {"throttle_time": 0, "responses": out}


@handles(37, "CreatePartitions", 0, 3)
async def create_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    out = []
    for want in request.topics:
        entry: dict[str, Any] = {"name": want.name, "error_code": 0, "error_message": None}
        if not ctx.allowed(_authorize.ALTER, _authorize.TOPIC, want.name):
            # Kafka's controller words it so.
            entry.update(
                error_code=_TOPIC_REFUSED, error_message="The topic authorization is failed."
            )
            out.append(entry)
            continue
        topic = broker.topics.topics.get(want.name)
        try:
            if topic is None:
                raise TopicError(UNKNOWN_TOPIC_OR_PARTITION, f"topic {want.name!r} does not exist")
            await broker.topics.add_partitions_async(
                topic, want.count, broker.now_ms(), validate_only=request.validate_only
            )
        except TopicError as exc:
            entry["error_code"] = exc.error_code
            entry["error_message"] = str(exc)
        out.append(entry)
    return {"throttle_time": 0, "results": out}


@handles(21, "DeleteRecords", 0, 2)
async def delete_records(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics
    denied = _authorize.denied_topics(ctx, _authorize.DELETE, (t.name for t in request.topics))
    out = []
    for want_topic in request.topics:
        entries = []
        refused = want_topic.name in denied
        for want in want_topic.partitions:
            partition = None if refused else topics.partition(want_topic.name, want.partition_index)
            entry = {"partition_index": want.partition_index, "low_watermark": -1, "error_code": 0}
            if refused:
                entry["error_code"] = _TOPIC_REFUSED
            elif partition is None:
                entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            else:
                target = partition.log.log_end_offset if want.offset == -1 else want.offset
                if not 0 <= target <= partition.log.log_end_offset:
                    entry["error_code"] = OFFSET_OUT_OF_RANGE
                else:
                    entry["low_watermark"] = partition.log.delete_records(target)
            entries.append(entry)
        out.append({"name": want_topic.name, "partitions": entries})
    return {"throttle_time": 0, "topics": out}
