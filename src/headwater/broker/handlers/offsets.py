"""Committed offsets: OffsetCommit v2-9, OffsetFetch v1-9, OffsetDelete v0.

OffsetCommit v3 adds throttle time, v5 drops the retention time, v6 leader epochs, v7 static
membership, v8 flexible encoding, v9 lets KIP-848 members commit with their member epoch in
place of the generation (a stale one is STALE_MEMBER_EPOCH; they must use v9+). OffsetFetch v2
lists all partitions of a group when topics is null, v7 require_stable, v8 batches several
groups, v9 carries the member id and epoch of KIP-848 members. Commits are answered after fsync.

Authorises READ on the group then READ on each topic (OffsetCommit); DESCRIBE on each group,
then DESCRIBE on each topic (OffsetFetch: a named partition is TOPIC_AUTHORIZATION_FAILED, an
all-offsets answer leaves it out); DELETE on the group and READ on each topic (OffsetDelete).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._offsets import CommittedOffset
from headwater.broker._registry import handles

UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
TXN_OFFSET_COMMIT = 28
METADATA_BYTES_MAX = 4096


def membership_error(ctx: RequestContext, group_id: str, generation: int, member: str) -> int:
    """The commit's generation (classic) or member epoch (consumer protocol) must be current.

    TxnOffsetCommit shares this check; Kafka asks KIP-848 members for OffsetCommit v9+ only.
    """
    transactional = ctx.header.api_key == TXN_OFFSET_COMMIT
    return ctx.broker.groups.core.validate_commit(
        group_id,
        member,
        generation,
        ctx.version,
        transactional=transactional,
        has_offsets=group_id in ctx.broker.offsets.groups,
    )


@handles(8, "OffsetCommit", 2, 9)
async def offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    if not ctx.allowed(_authorize.READ, _authorize.GROUP, request.group_id):
        return _every_partition(request, _authorize.GROUP_AUTHORIZATION_FAILED)
    denied = _authorize.denied_topics(ctx, _authorize.READ, (t.name for t in request.topics))
    group_error = membership_error(
        ctx, request.group_id, request.generation_id_or_member_epoch, request.member_id
    )
    now = broker.now_ms()
    accepted: dict[tuple[str, int], CommittedOffset] = {}
    out = []
    for topic in request.topics:
        entries = []
        for p in topic.partitions:
            if topic.name in denied:
                code = _authorize.TOPIC_AUTHORIZATION_FAILED
                entries.append({"partition_index": p.partition_index, "error_code": code})
                continue
            code = group_error or broker.groups.core.commit_partition_error(
                request.group_id,
                request.member_id,
                request.generation_id_or_member_epoch,
                topic.name,
                p.partition_index,
            )
            metadata = p.committed_metadata
            if not code and broker.topics.partition(topic.name, p.partition_index) is None:
                code = UNKNOWN_TOPIC_OR_PARTITION
            if not code and metadata is not None and len(metadata) > METADATA_BYTES_MAX:
                code = OFFSET_METADATA_TOO_LARGE
            if not code:
                accepted[(topic.name, p.partition_index)] = CommittedOffset(
                    p.committed_offset, getattr(p, "committed_leader_epoch", -1), metadata, now
                )
            entries.append({"partition_index": p.partition_index, "error_code": code})
        out.append({"name": topic.name, "partitions": entries})
    if accepted:
        last = broker.offsets.commit(request.group_id, accepted, now)
        await broker.committer.wait_durable(broker.offsets.log, last)
    return {"throttle_time": 0, "topics": out}


def _every_partition(request: Any, code: int) -> dict[str, Any]:
    return {
        "throttle_time": 0,
        "topics": [
            {
                "name": t.name,
                "partitions": [
                    {"partition_index": p.partition_index, "error_code": code} for p in t.partitions
                ],
            }
            for t in request.topics
        ],
    }


UNSTABLE_OFFSET_COMMIT = 88


def _fetch_group(
    ctx: RequestContext, group_id: str, topics: Any, require_stable: bool
) -> list[dict[str, Any]]:
    committed = ctx.broker.offsets.fetch(group_id)
    # KIP-447: offsets waiting in an open transaction are not answered to careful consumers.
    unstable = ctx.broker.transactions.pending_for(group_id) if require_stable else set()
    wanted: dict[str, list[int]] = {}
    if topics is None:
        for name, index in committed:
            wanted.setdefault(name, []).append(index)
        # Fetching all offsets leaves out the topics the caller may not describe.
        hidden = _authorize.denied_topics(ctx, _authorize.DESCRIBE, wanted, refusal=False)
        for name in hidden:
            del wanted[name]
        denied: frozenset[str] = frozenset()
    else:
        for topic in topics:
            wanted[topic.name] = list(topic.partition_indexes)
        denied = _authorize.denied_topics(ctx, _authorize.DESCRIBE, wanted)
    out = []
    for name, indexes in wanted.items():
        entries = []
        for index in sorted(indexes):
            if name in denied:
                entries.append(
                    {
                        "partition_index": index,
                        "committed_offset": -1,
                        "committed_leader_epoch": -1,
                        "metadata": "",
                        "error_code": _authorize.TOPIC_AUTHORIZATION_FAILED,
                    }
                )
                continue
            found = committed.get((name, index))
            entries.append(
                {
                    "partition_index": index,
                    "committed_offset": found.offset if found else -1,
                    "committed_leader_epoch": found.leader_epoch if found else -1,
                    "metadata": found.metadata if found else "",
                    "error_code": UNSTABLE_OFFSET_COMMIT if (name, index) in unstable else 0,
                }
            )
        out.append({"name": name, "partitions": entries})
    return out


def _fetch_groups(ctx: RequestContext, request: Any) -> list[dict[str, Any]]:
    out = []
    for g in request.groups:
        if not ctx.allowed(_authorize.DESCRIBE, _authorize.GROUP, g.group_id):
            code = _authorize.GROUP_AUTHORIZATION_FAILED
            out.append({"group_id": g.group_id, "topics": [], "error_code": code})
            continue
        error = ctx.broker.groups.core.validate_fetch(
            g.group_id, getattr(g, "member_id", None), getattr(g, "member_epoch", -1)
        )
        topics = [] if error else _fetch_group(ctx, g.group_id, g.topics, request.require_stable)
        out.append({"group_id": g.group_id, "topics": topics, "error_code": error})
    return out


@handles(9, "OffsetFetch", 1, 9)
async def offset_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if ctx.version >= 8:
        return {"throttle_time": 0, "groups": _fetch_groups(ctx, request)}
    if not ctx.allowed(_authorize.DESCRIBE, _authorize.GROUP, request.group_id):
        code = _authorize.GROUP_AUTHORIZATION_FAILED
        return {"throttle_time": 0, "error_code": code, "topics": []}
    return {
        "throttle_time": 0,
        "error_code": 0,
        "topics": _fetch_group(
            ctx, request.group_id, request.topics, getattr(request, "require_stable", False)
        ),
    }


GROUP_SUBSCRIBED_TO_TOPIC = 86


@handles(47, "OffsetDelete", 0, 0)
async def offset_delete(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    if not ctx.allowed(_authorize.DELETE, _authorize.GROUP, request.group_id):
        code = _authorize.GROUP_AUTHORIZATION_FAILED
        return {"error_code": code, "throttle_time": 0, "topics": []}
    committed = broker.offsets.fetch(request.group_id)
    if not committed and broker.groups.core.is_empty(request.group_id):
        return {"error_code": 69, "throttle_time": 0, "topics": []}  # GROUP_ID_NOT_FOUND
    denied = _authorize.denied_topics(ctx, _authorize.READ, (t.name for t in request.topics))
    doomed = []
    out = []
    for topic in request.topics:
        entries = []
        for p in topic.partitions:
            if topic.name in denied:
                code = _authorize.TOPIC_AUTHORIZATION_FAILED
                entries.append({"partition_index": p.partition_index, "error_code": code})
                continue
            doomed.append((topic.name, p.partition_index))
            entries.append({"partition_index": p.partition_index, "error_code": 0})
        out.append({"name": topic.name, "partitions": entries})
    if doomed or not denied:
        last = broker.offsets.delete(request.group_id, doomed, broker.now_ms())
        await broker.committer.wait_durable(broker.offsets.log, last)
    return {"error_code": 0, "throttle_time": 0, "topics": out}
