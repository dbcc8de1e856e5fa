"""Fetch v4-12, ListOffsets v1-11 and OffsetForLeaderEpoch v2-4: reading the logs.

Fetch v4 adds isolation level and the last stable offset, v5 log start offset, v7 fetch
sessions (answered sessionless: session id 0 means every request is a full fetch), v11
rack id and preferred replica, v12 flexible encoding. Stored bytes are returned as they are.
An empty fetch waits on the partitions' append signal up to max_wait_ms.

ListOffsets v7 adds the max-timestamp query (KIP-734; the 4.x Java Admin's
``OffsetSpec.maxTimestamp()`` needs it), v8 earliest-local (KIP-405), v9 latest-tiered
(KIP-1005), v10 a timeout, v11 earliest-pending-upload (KIP-1023). There is no tiered storage
here, so earliest-local is the log start, and the two tiered queries find no offset (-1), as
on a Kafka broker without remote storage.

Authorises READ on each topic (Fetch) and DESCRIBE on each topic (ListOffsets,
OffsetForLeaderEpoch); a refused topic's partitions answer TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._topics import Partition
from headwater.protocol._codec import millis
from headwater.storage import OffsetOutOfRangeError

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
UNSUPPORTED_VERSION = 35
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
EARLIEST_PENDING_UPLOAD = -6
# The first ListOffsets version that may carry each query (Kafka refuses it in older ones).
_QUERY_MIN_VERSION = {
    MAX_TIMESTAMP: 7,
    EARLIEST_LOCAL: 8,
    LATEST_TIERED: 9,
    EARLIEST_PENDING_UPLOAD: 11,
}


def _partition_entry(index: int, error: int, partition: Partition | None) -> dict[str, Any]:
    """A partition's answer; an unknown partition's is Kafka's error entry (offsets -1, an
    empty rather than null list of aborted transactions)."""
    hw = partition.log.log_end_offset if partition else -1
    lso = partition.producers.last_stable_offset(hw) if partition else -1
    return {
        "partition_index": index,
        "error_code": error,
        "high_watermark": hw,
        "last_stable_offset": lso,
        "log_start_offset": partition.log.log_start_offset if partition else -1,
        "aborted_transactions": None if partition else [],
        "preferred_read_replica": -1,
        "records": b"",
    }


def _collect(
    ctx: RequestContext, request: Any, max_bytes: int, denied: frozenset[str]
) -> tuple[list[dict[str, Any]], int, list[Partition]]:
    """One pass over the requested partitions: (response topics, bytes, partitions read)."""
    topics = ctx.broker.topics
    read_committed = getattr(request, "isolation_level", 0) == 1
    total = 0
    watched: list[Partition] = []
    out = []
    for fetch_topic in request.topics:
        entries = []
        refused = fetch_topic.topic in denied
        for want in fetch_topic.partitions:
            if refused:
                entries.append(
                    _partition_entry(want.partition, _authorize.TOPIC_AUTHORIZATION_FAILED, None)
                )
                continue
            partition = topics.partition(fetch_topic.topic, want.partition)
            if partition is None:
                entries.append(_partition_entry(want.partition, UNKNOWN_TOPIC_OR_PARTITION, None))
                continue
            watched.append(partition)
            entry = _partition_entry(want.partition, 0, partition)
            budget = min(want.partition_max_bytes, max_bytes - total)
            if budget > 0 or total == 0:
                # read_committed consumers see nothing at or past the last stable offset.
                limit = entry["last_stable_offset"] if read_committed else None
                try:
                    data = partition.log.read(
                        want.fetch_offset,
                        max(budget, 0),
                        min_one=(total == 0),
                        max_offset=limit,
                    )
                except OffsetOutOfRangeError:
                    # Kafka answers a failed read without the partition's offsets.
                    entry.update(
                        error_code=OFFSET_OUT_OF_RANGE,
                        high_watermark=-1,
                        last_stable_offset=-1,
                        log_start_offset=-1,
                    )
                    data = b""
                entry["records"] = data
                if read_committed and data:
                    entry["aborted_transactions"] = partition.producers.aborted_in(
                        want.fetch_offset, entry["last_stable_offset"]
                    )
                total += len(data)
            entries.append(entry)
        out.append({"topic": fetch_topic.topic, "partitions": entries})
    return out, total, watched


@handles(1, "Fetch", 4, 12)
async def fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    max_bytes = min(request.max_bytes, ctx.broker.config.fetch_bytes_max)
    wait_ms = millis(request.max_wait)
    denied = _authorize.denied_topics(ctx, _authorize.READ, (t.topic for t in request.topics))
    responses, total, watched = _collect(ctx, request, max_bytes, denied)
    if total < max(request.min_bytes, 1) and wait_ms > 0 and watched:
        arrived = asyncio.Event()
        for partition in watched:
            partition.listeners.add(arrived.set)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_ms / 1000):
                    while True:
                        await arrived.wait()
                        arrived.clear()
                        responses, total, _ = _collect(ctx, request, max_bytes, denied)
                        if total >= request.min_bytes:
                            break
        finally:
            for partition in watched:
                partition.listeners.discard(arrived.set)
        if total < request.min_bytes:
            responses, total, _ = _collect(ctx, request, max_bytes, denied)
    return {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": responses}


@handles(2, "ListOffsets", 1, 11)
async def list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics
    read_committed = getattr(request, "isolation_level", 0) == 1
    denied = _authorize.denied_topics(ctx, _authorize.DESCRIBE, (t.name for t in request.topics))
    out = []
    for want_topic in request.topics:
        entries = []
        for want in want_topic.partitions:
            refused = want_topic.name in denied
            partition = None if refused else topics.partition(want_topic.name, want.partition_index)
            entry: dict[str, Any] = {
                "partition_index": want.partition_index,
                "error_code": 0,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": -1,
            }
            if refused:
                entry["error_code"] = _authorize.TOPIC_AUTHORIZATION_FAILED
            elif partition is None:
                entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            elif ctx.version < _QUERY_MIN_VERSION.get(want.timestamp, 0):
                entry["error_code"] = UNSUPPORTED_VERSION
            else:
                _list_offset(partition, want.timestamp, read_committed, entry)
            entries.append(entry)
        out.append({"name": want_topic.name, "partitions": entries})
    return {"throttle_time": 0, "topics": out}


def _list_offset(
    partition: Partition, query: int, read_committed: bool, entry: dict[str, Any]
) -> None:
    """Fill ``entry``'s offset, timestamp and leader epoch for one partition and query; a
    query that finds nothing keeps Kafka's -1 for all three."""
    log = partition.log
    # read_committed readers are never told of an offset at or past the last stable offset.
    end = log.log_end_offset
    if read_committed:
        end = partition.producers.last_stable_offset(end)
    if query == LATEST:
        entry.update(offset=end, leader_epoch=0)
    elif query in (EARLIEST, EARLIEST_LOCAL):
        entry.update(offset=log.log_start_offset, leader_epoch=0)
    elif query not in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        if query == MAX_TIMESTAMP:
            found = log.max_timestamp_offset()
        else:
            found = log.offset_for_timestamp(query)
        if found is not None and found[0] < end:
            entry.update(offset=found[0], timestamp=found[1], leader_epoch=0)


@handles(23, "OffsetForLeaderEpoch", 2, 4)
async def offset_for_leader_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A single node has had one leader epoch (0) since each partition was created."""
    topics = ctx.broker.topics
    denied = _authorize.denied_topics(ctx, _authorize.DESCRIBE, (t.topic for t in request.topics))
    out = []
    for want_topic in request.topics:
        entries = []
        refused = want_topic.topic in denied
        for want in want_topic.partitions:
            partition = None if refused else topics.partition(want_topic.topic, want.partition)
            if partition is None:
                entries.append(
                    {
                        "error_code": _authorize.TOPIC_AUTHORIZATION_FAILED
                        if refused
                        else UNKNOWN_TOPIC_OR_PARTITION,
                        "partition": want.partition,
                        "leader_epoch": -1,
                        "end_offset": -1,
                    }
                )
            else:
                entries.append(
                    {
                        "error_code": 0,
                        "partition": want.partition,
                        "leader_epoch": 0,
                        "end_offset": partition.log.log_end_offset,
                    }
                )
        out.append({"topic": want_topic.topic, "partitions": entries})
    return {"throttle_time": 0, "topics": out}
