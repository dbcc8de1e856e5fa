"""Group membership: FindCoordinator v0-4, JoinGroup v0-9, SyncGroup v0-5, Heartbeat v0-4,
LeaveGroup v0-5, DescribeGroups v0-6, ListGroups v0-5, DeleteGroups v0-2.

This node coordinates every group and transaction. JoinGroup v1 adds the rebalance timeout,
v4 KIP-394 member ids, v5 static membership, v6 flexible encoding, v7 protocol type/name in
the response, v8 a reason, v9 skip_assignment; LeaveGroup v3 batches members. DescribeGroups v6
adds an error message (unknown and consumer-protocol groups are GROUP_ID_NOT_FOUND there, as in
Kafka 4); ListGroups v5 reports and filters by group type. The KIP-848 APIs are in
``consumer_groups``. DescribeGroups v3 asks for the authorised operations: every group
operation with the authorizer off, as Kafka answers without one, the caller's own with it on.

Authorises DESCRIBE on the group or transactional id (FindCoordinator, by key type), READ on
the group (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), DESCRIBE on each group
(DescribeGroups), DESCRIBE on the cluster or else on each group listed (ListGroups) and
DELETE on each group (DeleteGroups).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._group_coordinator import JoinRequest, SyncRequest
from headwater.broker._registry import handles
from headwater.protocol._codec import millis

OPERATIONS_UNKNOWN = -2147483648
# AclOperation codes a group has: READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
GROUP_OPERATIONS = sum(1 << op for op in (3, 6, 8, 10, 11))
GROUP_ID_NOT_FOUND = 69


def group_operations(ctx: RequestContext, group_id: str, asked: bool, error_code: int) -> int:
    """What a describe answers for a group's authorised operations: Kafka fills them in for
    groups it could describe, when asked."""
    if not asked or error_code:
        return OPERATIONS_UNKNOWN
    bits = _authorize.operations(ctx, _authorize.GROUP, group_id)
    return GROUP_OPERATIONS if bits is None else bits


_GROUP_REFUSED = _authorize.GROUP_AUTHORIZATION_FAILED
_TXN_KEY = 1


def _coordinator_refusal(ctx: RequestContext, key: str, key_type: int) -> int:
    if key_type == _TXN_KEY:
        if ctx.allowed(_authorize.DESCRIBE, _authorize.TRANSACTIONAL_ID, key):
            return 0
        return _authorize.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    return 0 if ctx.allowed(_authorize.DESCRIBE, _authorize.GROUP, key) else _GROUP_REFUSED


def _coordinator(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    code = _coordinator_refusal(ctx, key, key_type)
    if code:
        message = _authorize.MESSAGES[code]
        return {
            "key": key,
            "node_id": -1,
            "host": "",
            "port": -1,
            "error_code": code,
            "error_message": message,
        }
    host, port = ctx.broker.advertised_for(ctx.listener)
    return {
        "key": key,
        "node_id": ctx.broker.config.node_id,
        "host": host,
        "port": port,
        "error_code": 0,
        "error_message": None,
    }


@handles(10, "FindCoordinator", 0, 4)
async def find_coordinator(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if ctx.version >= 4:
        return {
            "throttle_time": 0,
            "coordinators": [
                _coordinator(ctx, k, request.key_type) for k in request.coordinator_keys
            ],
        }
    out = _coordinator(ctx, request.key, getattr(request, "key_type", 0))
    out["throttle_time"] = 0
    return out


@handles(11, "JoinGroup", 0, 9)
async def join_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return {
            "throttle_time": 0,
            "error_code": _GROUP_REFUSED,
            "generation_id": -1,
            "protocol_name": "",
            "leader": "",
            "member_id": "",
            "members": [],
        }
    session_ms = millis(request.session_timeout)
    rebalance = getattr(request, "rebalance_timeout", None)
    result = await ctx.broker.groups.join(
        JoinRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            protocol_type=request.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=millis(rebalance) if rebalance is not None else session_ms,
            client_id=ctx.header.client_id or "",
            client_host=ctx.client_host,
            require_known_member_id=ctx.version >= 4,
            reason=getattr(request, "reason", None),
        )
    )
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name if ctx.version >= 7 or result.protocol_name else "",
        "leader": result.leader,
        "skip_assignment": result.skip_assignment,
        "member_id": result.member_id,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "metadata": m.metadata,
            }
            for m in result.members
        ],
    }


@handles(14, "SyncGroup", 0, 5)
async def sync_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return {
            "throttle_time": 0,
            "error_code": _GROUP_REFUSED,
            "protocol_type": None,
            "protocol_name": None,
            "assignment": b"",
        }
    result = await ctx.broker.groups.sync(
        SyncRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            generation_id=request.generation_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            protocol_type=getattr(request, "protocol_type", None),
            protocol_name=getattr(request, "protocol_name", None),
            assignments=[(a.member_id, bytes(a.assignment)) for a in request.assignments],
        )
    )
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }


@handles(12, "Heartbeat", 0, 4)
async def heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": _GROUP_REFUSED}
    code = ctx.broker.groups.heartbeat(
        request.group_id,
        request.member_id,
        request.generation_id,
        getattr(request, "group_instance_id", None),
    )
    return {"throttle_time": 0, "error_code": code}


@handles(13, "LeaveGroup", 0, 5)
async def leave_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": _GROUP_REFUSED, "members": []}
    if ctx.version >= 3:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        members = [(request.member_id, None)]
    code, results = ctx.broker.groups.leave(request.group_id, members)
    if ctx.version < 3 and results and code == 0:
        code = results[0][2]
    return {
        "throttle_time": 0,
        "error_code": code,
        "members": [
            {"member_id": m, "group_instance_id": i, "error_code": e} for m, i, e in results
        ],
    }


@handles(15, "DescribeGroups", 0, 6)
async def describe_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    asked = bool(getattr(request, "include_authorized_operations", False))
    out = []
    for group_id in request.groups:
        if not ctx.allowed(_authorize.DESCRIBE, _authorize.GROUP, group_id):
            out.append(_describe_refused(group_id))
            continue
        desc = ctx.broker.groups.core.describe(group_id)
        error, message, state = desc.error_code, None, desc.state
        if state == "Dead" and not error and group_id in ctx.broker.offsets.groups:
            state = "Empty"  # a group that only holds offsets (see list_groups)
        elif ctx.version >= 6 and state == "Dead" and not error:
            error, message = GROUP_ID_NOT_FOUND, f"Group {group_id} not found."
        elif error == GROUP_ID_NOT_FOUND:
            # Kafka 4 answers a consumer-protocol group as Dead; v6 says why.
            message = f"Group {group_id} is not a classic group."
            error = error if ctx.version >= 6 else 0
        out.append(
            {
                "error_code": error,
                "error_message": message,
                "group_id": group_id,
                "group_state": state,
                "protocol_type": desc.protocol_type or "",
                "protocol_data": desc.protocol or "",
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                        "member_metadata": m.metadata,
                        "member_assignment": m.assignment,
                    }
                    for m in desc.members
                ],
                "authorized_operations": group_operations(ctx, group_id, asked, error),
            }
        )
    return {"throttle_time": 0, "groups": out}


def _describe_refused(group_id: str) -> dict[str, Any]:
    return {
        "error_code": _GROUP_REFUSED,
        "error_message": _authorize.MESSAGES[_GROUP_REFUSED],
        "group_id": group_id,
        "group_state": "",
        "protocol_type": "",
        "protocol_data": "",
        "members": [],
        "authorized_operations": OPERATIONS_UNKNOWN,
    }


def _listable(ctx: RequestContext) -> Any:
    """Which groups ListGroups may show: all with DESCRIBE on the cluster (or no authorizer),
    else those the caller may describe."""
    if ctx.broker.authorizer is None or _authorize.allowed_cluster(
        ctx, _authorize.DESCRIBE, refusal=False
    ):
        return lambda group_id: True
    return lambda group_id: _authorize.allowed(
        ctx, _authorize.DESCRIBE, _authorize.GROUP, group_id, refusal=False
    )


@handles(16, "ListGroups", 0, 5)
async def list_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """v4 filters by state, v5 by group type ("classic", "consumer"; case-insensitive)."""
    states = {s.strip().lower() for s in getattr(request, "states_filter", ()) or ()}
    types = {t.strip().lower() for t in getattr(request, "types_filter", ()) or ()}
    groups = {
        g: (ptype, state, gtype) for g, ptype, state, gtype in ctx.broker.groups.core.list_groups()
    }
    # Kafka keeps a group that an offset commit created as an Empty classic group without a
    # protocol type (no member ever joined); Headwater keeps it in the offsets log only.
    for group_id in ctx.broker.offsets.groups:
        groups.setdefault(group_id, ("", "Empty", "classic"))
    listable = _listable(ctx)
    return {
        "throttle_time": 0,
        "error_code": 0,
        "groups": [
            {"group_id": g, "protocol_type": ptype, "group_state": state, "group_type": gtype}
            for g, (ptype, state, gtype) in sorted(groups.items())
            if (not states or state.lower() in states)
            and (not types or gtype in types)
            and listable(g)
        ],
    }


@handles(42, "DeleteGroups", 0, 2)
async def delete_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    results = []
    for group_id in request.groups_names:
        if not ctx.allowed(_authorize.DELETE, _authorize.GROUP, group_id):
            results.append({"group_id": group_id, "error_code": _GROUP_REFUSED})
            continue
        code = broker.groups.core.delete_group(group_id)
        has_offsets = group_id in broker.offsets.groups
        if code == GROUP_ID_NOT_FOUND and has_offsets:
            code = 0
        if code == 0 and has_offsets:
            last = broker.offsets.delete(
                group_id, list(broker.offsets.fetch(group_id)), broker.now_ms()
            )
            await broker.committer.wait_durable(broker.offsets.log, last)
        results.append({"group_id": group_id, "error_code": code})
    return {"throttle_time": 0, "results": results}
