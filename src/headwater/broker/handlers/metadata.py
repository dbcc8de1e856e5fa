"""Metadata v0-12 and DescribeCluster v0-1: this single node leads every partition.

Metadata v1 adds the controller and internal flag, v2 the cluster id, v4 the auto-creation
switch, v8 authorized operations, v9 flexible encoding, v10 topic ids, v12 nullable names.
Authorised operations, when asked for, are every operation of the resource type with the
authorizer off, as Kafka answers without one, and the caller's own with it on.

Authorises DESCRIBE on each topic (a named one is TOPIC_AUTHORIZATION_FAILED, whether it
exists or not; an all-topics answer leaves it out) and CREATE on the cluster or the topic to
auto-create one. DescribeCluster is answered to anyone, as in Kafka; its cluster operations
are 0 without DESCRIBE on the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._topics import Topic, TopicError, check_topic_name

log = logging.getLogger(__name__)

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC = 17
INVALID_REQUEST = 42
OPERATIONS_UNKNOWN = -2147483648
# Bit sets of AclOperation codes: a topic's READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
# DESCRIBE_CONFIGS and ALTER_CONFIGS; the cluster's CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
# DESCRIBE_CONFIGS, ALTER_CONFIGS and IDEMPOTENT_WRITE.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))


def broker_entry(ctx: RequestContext) -> dict[str, Any]:
    host, port = ctx.broker.advertised_for(ctx.listener)
    return {
        "node_id": ctx.broker.config.node_id,
        "broker_id": ctx.broker.config.node_id,
        "host": host,
        "port": port,
        "rack": None,
    }


def topic_entry(ctx: RequestContext, topic: Topic, *, operations: bool = False) -> dict[str, Any]:
    node = ctx.broker.config.node_id
    return {
        "error_code": 0,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.internal,
        "partitions": [
            {
                "error_code": 0,
                "partition_index": p.index,
                "leader_id": node,
                "leader_epoch": 0,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [],
            }
            for p in topic.partitions
        ],
        "topic_authorized_operations": topic_operations(ctx, topic.name)
        if operations
        else OPERATIONS_UNKNOWN,
    }


def topic_operations(ctx: RequestContext, name: str) -> int:
    """A topic's authorized-operations bit set: every operation with the authorizer off."""
    bits = _authorize.operations(ctx, _authorize.TOPIC, name)
    return TOPIC_OPERATIONS if bits is None else bits


def _refused(name: str | None, topic_id: Any = None) -> dict[str, Any]:
    return {
        "error_code": _authorize.TOPIC_AUTHORIZATION_FAILED,
        "name": name,
        "topic_id": topic_id,
        "partitions": [],
    }


def _describable(ctx: RequestContext, name: str) -> bool:
    return _authorize.allowed(ctx, _authorize.DESCRIBE, _authorize.TOPIC, name, refusal=False)


def _may_create(ctx: RequestContext, name: str) -> bool:
    """Kafka auto-creates for a caller with CREATE on the cluster, or else on the topic."""
    if ctx.broker.authorizer is None:
        return True
    return _authorize.allowed_cluster(ctx, _authorize.CREATE, refusal=False) or _authorize.allowed(
        ctx, _authorize.CREATE, _authorize.TOPIC, name
    )


def auto_create(ctx: RequestContext, name: str) -> Topic | None:
    """Create ``name`` with the broker defaults when auto-creation is on."""
    broker = ctx.broker
    if not broker.config.auto_create_topics:
        return None
    try:
        return broker.topics.create(name, broker.config.num_partitions, {}, broker.now_ms())
    except TopicError as exc:
        log.info("auto-create refused topic=%s reason=%s", name, exc)
        return None


def _named(ctx: RequestContext, item: Any, allow: bool, operations: bool) -> dict[str, Any]:
    """The entry for one asked-for topic, by name or (v12) by id."""
    topics = ctx.broker.topics
    name = item.name
    if name is None:
        topic = topics.by_id.get(item.topic_id)
        if topic is None:
            return {
                "error_code": UNKNOWN_TOPIC_OR_PARTITION,
                "name": None,
                "topic_id": item.topic_id,
                "partitions": [],
            }
        if not ctx.allowed(_authorize.DESCRIBE, _authorize.TOPIC, topic.name):
            return _refused(None, item.topic_id)
        return topic_entry(ctx, topic, operations=operations)
    # Authorised before the lookup, so the answer never tells whether the topic exists.
    if not ctx.allowed(_authorize.DESCRIBE, _authorize.TOPIC, name):
        return _refused(name)
    topic = topics.topics.get(name)
    if topic is None and check_topic_name(name) is not None:
        return {"error_code": INVALID_TOPIC, "name": name, "partitions": []}
    if topic is None and allow and ctx.broker.config.auto_create_topics:
        if not _may_create(ctx, name):
            return _refused(name)
        topic = auto_create(ctx, name)
    if topic is None:
        return {"error_code": UNKNOWN_TOPIC_OR_PARTITION, "name": name, "partitions": []}
    return topic_entry(ctx, topic, operations=operations)


@handles(3, "Metadata", 0, 12)
async def metadata(ctx: RequestContext, request: Any) -> dict[str, Any]:
    wanted = request.topics
    operations = bool(getattr(request, "include_topic_authorized_operations", False))
    entries: list[dict[str, Any]] = []
    if wanted is None or (ctx.version == 0 and not wanted):
        entries = [
            topic_entry(ctx, t, operations=operations)
            for t in ctx.broker.topics.topics.values()
            if not t.internal and (ctx.broker.authorizer is None or _describable(ctx, t.name))
        ]
    elif ctx.version < 12 and any(item.name is None for item in wanted):
        # Topic ids name topics only from v12; before it Kafka refuses the whole request,
        # answering every topic with INVALID_REQUEST and a null name as "" (not nullable).
        entries = [
            {
                "error_code": INVALID_REQUEST,
                "name": item.name or "",
                "topic_id": item.topic_id,
                "partitions": [],
            }
            for item in wanted
        ]
    else:
        allow = getattr(request, "allow_auto_topic_creation", True)
        entries = [_named(ctx, item, allow, operations) for item in wanted]
    cluster = getattr(request, "include_cluster_authorized_operations", False)
    return {
        "throttle_time": 0,
        "brokers": [broker_entry(ctx)],
        "cluster_id": ctx.broker.config.cluster_id,
        "controller_id": ctx.broker.config.node_id,
        "topics": entries,
        "cluster_authorized_operations": _authorize.cluster_operations(ctx, CLUSTER_OPERATIONS)
        if cluster
        else OPERATIONS_UNKNOWN,
    }


@handles(60, "DescribeCluster", 0, 1)
async def describe_cluster(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "error_code": 0,
        "error_message": None,
        "endpoint_type": 1,
        "cluster_id": ctx.broker.config.cluster_id,
        "controller_id": ctx.broker.config.node_id,
        "brokers": [broker_entry(ctx)],
        "cluster_authorized_operations": (
            _authorize.cluster_operations(ctx, CLUSTER_OPERATIONS)
            if request.include_cluster_authorized_operations
            else OPERATIONS_UNKNOWN
        ),
    }
