"""DescribeTopicPartitions v0 (KIP-966): topics and their partitions, paged by a cursor.

The 4.x Java Admin describes topics with this API instead of Metadata. Answers follow Kafka's
``DescribeTopicPartitionsRequestHandler``: topics are answered in name order; a response holds
at most ``response_partition_limit`` partitions (and never more than
``PARTITIONS_PER_RESPONSE_MAX``, Kafka's ``max.request.partition.size.limit``), and when the
limit cuts a topic short, or leaves the next topic out, ``next_cursor`` names the topic and
partition to ask for next. A request with a cursor starts there; its topic list must then
contain the cursor's topic. An empty topic list means every (non-internal) topic, and topics
that do not exist are then left out rather than reported.

Authorises DESCRIBE on each topic: a named one is TOPIC_AUTHORIZATION_FAILED whether it exists
or not, an all-topics answer leaves it out; with the authorizer on, each topic's authorised
operations are answered (Kafka always fills them in; without an authorizer they are unknown).
"""

from __future__ import annotations

import uuid
from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._topics import Topic, check_topic_name

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC = 17
INVALID_REQUEST = 42
OPERATIONS_UNKNOWN = -2147483648
# Kafka's max.request.partition.size.limit default: the most partitions one response carries.
PARTITIONS_PER_RESPONSE_MAX = 2000
_NO_TOPIC_ID = uuid.UUID(int=0)


def _partition(node: int, index: int) -> dict[str, Any]:
    return {
        "error_code": 0,
        "partition_index": index,
        "leader_id": node,
        "leader_epoch": 0,
        "replica_nodes": [node],
        "isr_nodes": [node],
        "eligible_leader_replicas": [],
        "last_known_elr": [],
        "offline_replicas": [],
    }


def _topic(ctx: RequestContext, topic: Topic, first: int, limit: int) -> tuple[dict[str, Any], int]:
    """The entry for ``topic`` from partition ``first``, at most ``limit`` partitions long,
    and the next partition index to ask for (-1 when the topic is complete)."""
    node = ctx.broker.config.node_id
    count = len(topic.partitions)
    end = min(count, first + limit)
    entry = {
        "error_code": 0,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.internal,
        "partitions": [_partition(node, index) for index in range(first, end)],
        "topic_authorized_operations": OPERATIONS_UNKNOWN,
    }
    bits = _authorize.operations(ctx, _authorize.TOPIC, topic.name)
    if bits is not None:
        entry["topic_authorized_operations"] = bits
    return entry, (end if end < count else -1)


def _missing(name: str) -> dict[str, Any]:
    code = INVALID_TOPIC if check_topic_name(name) is not None else UNKNOWN_TOPIC_OR_PARTITION
    return {"error_code": code, "name": name, "topic_id": _NO_TOPIC_ID, "partitions": []}


@handles(75, "DescribeTopicPartitions", 0, 0)
async def describe_topic_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics.topics
    cursor = request.cursor
    after = cursor.topic_name if cursor is not None else ""
    fetch_all = not request.topics
    denied: frozenset[str] = frozenset()
    if fetch_all:
        names = sorted(name for name, t in topics.items() if not t.internal and name >= after)
        if ctx.broker.authorizer is not None:
            hidden = _authorize.denied_topics(ctx, _authorize.DESCRIBE, names, refusal=False)
            names = [name for name in names if name not in hidden]
    else:
        names = sorted({t.name for t in request.topics if t.name >= after})
        if cursor is not None and cursor.topic_name not in names:
            # Kafka refuses the whole request: the cursor must point into the asked topics.
            return {
                "throttle_time": 0,
                "topics": [
                    {**_missing(t.name), "error_code": INVALID_REQUEST} for t in request.topics
                ],
            }
        # Refused before the lookup, so the answer never tells whether the topic exists.
        denied = _authorize.denied_topics(ctx, _authorize.DESCRIBE, names)
    remaining = min(PARTITIONS_PER_RESPONSE_MAX, request.response_partition_limit)
    out: list[dict[str, Any]] = []
    next_cursor = None
    for name in names:
        if remaining <= 0:
            # Every earlier topic is complete; the next response starts with this one.
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        if name in denied:
            out.append({**_missing(name), "error_code": _authorize.TOPIC_AUTHORIZATION_FAILED})
            continue
        topic = topics.get(name)
        if topic is None:
            if not fetch_all:
                out.append(_missing(name))
            continue
        first = cursor.partition_index if cursor is not None and name == after else 0
        entry, next_index = _topic(ctx, topic, max(first, 0), remaining)
        out.append(entry)
        if next_index != -1:
            next_cursor = {"topic_name": name, "partition_index": next_index}
            break
        remaining -= len(entry["partitions"])
    return {"throttle_time": 0, "topics": out, "next_cursor": next_cursor}
