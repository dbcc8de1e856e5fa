"""KIP-848 consumer groups: ConsumerGroupHeartbeat v0-1, ConsumerGroupDescribe v0-1.

ConsumerGroupHeartbeat v1 adds ``subscribed_topic_regex`` and makes the client generate its
member id (v0 lets the coordinator generate one on the first heartbeat). ConsumerGroupDescribe
v1 adds each member's type (1: consumer protocol; classic members never join these groups
here). A client picks this protocol with ``group.protocol=consumer``. Authorised operations
are answered as DescribeGroups answers them.

Authorises READ on the group and DESCRIBE on each subscribed topic name (ConsumerGroupHeartbeat:
one refused topic is TOPIC_AUTHORIZATION_FAILED for the heartbeat, as in Kafka) and DESCRIBE
on each group (ConsumerGroupDescribe).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker._consumer_types import HeartbeatRequest
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker.handlers.groups import OPERATIONS_UNKNOWN, group_operations
from headwater.protocol._codec import millis

MEMBER_TYPE_CONSUMER = 1


@handles(68, "ConsumerGroupHeartbeat", 0, 1)
async def consumer_group_heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    names = request.subscribed_topic_names
    owned = request.topic_partitions
    refusal = _heartbeat_refusal(ctx, request.group_id, names)
    if refusal:
        return {
            "throttle_time": 0,
            "error_code": refusal,
            "error_message": _authorize.MESSAGES[refusal],
            "member_epoch": -1,
            "heartbeat_interval": 0,
        }
    result = ctx.broker.groups.consumer_heartbeat(
        HeartbeatRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            member_epoch=request.member_epoch,
            instance_id=request.instance_id,
            rack_id=request.rack_id,
            rebalance_timeout_ms=millis(request.rebalance_timeout),
            subscribed_topic_names=None if names is None else tuple(names),
            subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
            server_assignor=request.server_assignor,
            owned=None
            if owned is None
            else tuple((tp.topic_id, tuple(tp.partitions)) for tp in owned),
            client_id=ctx.header.client_id or "",
            client_host=ctx.client_host,
            version=ctx.version,
        )
    )
    assignment = None
    if result.assignment is not None:
        assignment = {
            "topic_partitions": [
                {"topic_id": topic_id, "partitions": list(partitions)}
                for topic_id, partitions in result.assignment.items()
            ]
        }
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "member_id": result.member_id,
        "member_epoch": result.member_epoch,
        "heartbeat_interval": result.heartbeat_interval_ms,
        "assignment": assignment,
    }


def _heartbeat_refusal(ctx: RequestContext, group_id: str, names: Any) -> int:
    if ctx.broker.authorizer is None:
        return 0
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, group_id):
        return _authorize.GROUP_AUTHORIZATION_FAILED
    if names and _authorize.denied_topics(ctx, _authorize.DESCRIBE, names):
        return _authorize.TOPIC_AUTHORIZATION_FAILED
    return 0


def _assignment(parts: list[tuple[Any, str, tuple[int, ...]]]) -> dict[str, Any]:
    return {
        "topic_partitions": [
            {"topic_id": topic_id, "topic_name": name, "partitions": list(partitions)}
            for topic_id, name, partitions in parts
        ]
    }


@handles(69, "ConsumerGroupDescribe", 0, 1)
async def consumer_group_describe(ctx: RequestContext, request: Any) -> dict[str, Any]:
    out = []
    for group_id in request.group_ids:
        if not ctx.allowed(_authorize.DESCRIBE, _authorize.GROUP, group_id):
            code = _authorize.GROUP_AUTHORIZATION_FAILED
            out.append(
                {
                    "error_code": code,
                    "error_message": _authorize.MESSAGES[code],
                    "group_id": group_id,
                    "group_state": "",
                    "group_epoch": -1,
                    "assignment_epoch": -1,
                    "assignor_name": "",
                    "members": [],
                    "authorized_operations": OPERATIONS_UNKNOWN,
                }
            )
            continue
        desc = ctx.broker.groups.core.consumer_describe(group_id)
        out.append(
            {
                "error_code": desc.error_code,
                "error_message": desc.error_message,
                "group_id": group_id,
                "group_state": desc.state,
                "group_epoch": desc.group_epoch,
                "assignment_epoch": desc.assignment_epoch,
                "assignor_name": desc.assignor_name,
                "members": [
                    {
                        "member_id": m.member_id,
                        "instance_id": m.instance_id,
                        "rack_id": m.rack_id,
                        "member_epoch": m.member_epoch,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "subscribed_topic_names": list(m.subscribed_topic_names),
                        "subscribed_topic_regex": m.subscribed_topic_regex,
                        "assignment": _assignment(m.assignment),
                        "target_assignment": _assignment(m.target_assignment),
                        "member_type": MEMBER_TYPE_CONSUMER,
                    }
                    for m in desc.members
                ],
                "authorized_operations": group_operations(
                    ctx, group_id, request.include_authorized_operations, desc.error_code
                ),
            }
        )
    return {"throttle_time": 0, "groups": out}
