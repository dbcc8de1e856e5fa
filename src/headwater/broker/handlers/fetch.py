"""Fetch v4-12, ListOffsets v1-6 and OffsetForLeaderEpoch v2-4: reading the logs.

Fetch v4 adds isolation level and the last stable offset, v5 log start offset, v7 fetch
sessions (answered sessionless: session id 0 means every request is a full fetch), v11
rack id and preferred replica, v12 flexible encoding. Stored bytes are returned as they are.
An empty fetch waits on the partitions' append signal up to max_wait_ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._topics import Partition
from headwater.protocol._codec import millis
from headwater.storage import OffsetOutOfRangeError

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
EARLIEST = -2
LATEST = -1


def _partition_entry(index: int, error: int, partition: Partition | None) -> dict[str, Any]:
    hw = partition.log.log_end_offset if partition else -1
    lso = partition.producers.last_stable_offset(hw) if partition else -1
    return {
        "partition_index": index,
        "error_code": error,
        "high_watermark": hw,
        "last_stable_offset": lso,
        "log_start_offset": partition.log.log_start_offset if partition else -1,
        "aborted_transactions": None,
        "preferred_read_replica": -1,
        "records": b"",
    }


def _collect(
    ctx: RequestContext, request: Any, max_bytes: int
) -> tuple[list[dict[str, Any]], int, list[Partition]]:
    """One pass over the requested partitions: (response topics, bytes, partitions read)."""
    topics = ctx.broker.topics
    read_committed = getattr(request, "isolation_level", 0) == 1
    total = 0
    watched: list[Partition] = []
    out = []
    for fetch_topic in request.topics:
        entries = []
        for want in fetch_topic.partitions:
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
                    entry["error_code"] = OFFSET_OUT_OF_RANGE
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
    responses, total, watched = _collect(ctx, request, max_bytes)
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
                        responses, total, _ = _collect(ctx, request, max_bytes)
                        if total >= request.min_bytes:
                            break
        finally:
            for partition in watched:
                partition.listeners.discard(arrived.set)
        if total < request.min_bytes:
            responses, total, _ = _collect(ctx, request, max_bytes)
    return {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": responses}


@handles(2, "ListOffsets", 1, 6)
async def list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics
    out = []
    for want_topic in request.topics:
        entries = []
        for want in want_topic.partitions:
            partition = topics.partition(want_topic.name, want.partition_index)
            entry: dict[str, Any] = {
                "partition_index": want.partition_index,
                "error_code": 0,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": 0,
            }
            if partition is None:
                entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
            elif want.timestamp == LATEST:
                end = partition.log.log_end_offset
                if getattr(request, "isolation_level", 0) == 1:
                    end = partition.producers.last_stable_offset(end)
                entry["offset"] = end
            elif want.timestamp == EARLIEST:
                entry["offset"] = partition.log.log_start_offset
            else:
                found = partition.log.offset_for_timestamp(want.timestamp)
                if found is not None:
                    entry["offset"], entry["timestamp"] = found
            entries.append(entry)
        out.append({"name": want_topic.name, "partitions": entries})
    return {"throttle_time": 0, "topics": out}


@handles(23, "OffsetForLeaderEpoch", 2, 4)
async def offset_for_leader_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """A single node has had one leader epoch (0) since each partition was created."""
    topics = ctx.broker.topics
    out = []
    for want_topic in request.topics:
        entries = []
        for want in want_topic.partitions:
            partition = topics.partition(want_topic.topic, want.partition)
            if partition is None:
                entries.append(
                    {
                        "error_code": UNKNOWN_TOPIC_OR_PARTITION,
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
