"""Rebuilding a task's stores: local file first, then the changelog from its checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from headwater.client import Consumer, KafkaError, TopicPartition, watermarks
from headwater.streams._state import (
    DurableStore,
    LocalStateFile,
    decode_key,
    decode_value,
    encode,
)

log = logging.getLogger("headwater.streams")


def changelog_end(consumer: Consumer, topic: str, partition: int, timeout_s: float = 2.0) -> int:
    """The changelog's end offset as the broker sees it now, asked again while its leader
    moves; short by default, because the caller blocks the processing loop meanwhile."""
    _low, high = watermarks(consumer, topic, partition, timeout_s)
    return high


def restore_store(
    consumer: Consumer,
    name: str,
    changelog: str,
    partition: int,
    state_dir: Path,
) -> DurableStore:
    """A store for ``partition`` holding exactly what the changelog holds."""
    local = LocalStateFile(state_dir / name / f"{partition}.sqlite")
    store = DurableStore(name, changelog, partition, local)
    low, high = watermarks(consumer, changelog, partition, timeout_s=30)
    checkpoint = local.checkpoint()
    if checkpoint < low or checkpoint > high:
        # The file is from another changelog (deleted, recreated or truncated): start over.
        local.wipe()
        checkpoint = -1
    data: dict[Hashable, Any] = local.load() if checkpoint >= 0 else {}
    start = checkpoint if checkpoint >= 0 else low
    if start < high:
        replayed = _replay(consumer, changelog, partition, start, data)
        local.wipe()
        local.save([(encode(k), encode(v)) for k, v in data.items()], high)
        log.info(
            "restored store %s partition %d: %d changelog records replayed, %d keys",
            name,
            partition,
            replayed,
            len(data),
        )
    store.data = data
    return store


def _replay(
    consumer: Consumer, topic: str, partition: int, start: int, data: dict[Hashable, Any]
) -> int:
    consumer.assign([TopicPartition(topic, partition, start)])
    replayed = 0
    idle_since = time.monotonic()
    try:
        while True:
            batch = consumer.consume(10_000, timeout=0.2)
            if not batch:
                if time.monotonic() - idle_since > 30:
                    raise RuntimeError(
                        f"restoring {topic}[{partition}] stalled: no data and no end of partition "
                        "for 30 s; is the broker reachable?"
                    )
                continue
            idle_since = time.monotonic()
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return replayed
                    raise RuntimeError(f"restoring {topic}[{partition}] failed: {err.str()}")
                key = msg.key()
                if key is None:
                    continue
                value = msg.value()
                decoded = decode_key(key)
                if value is None:
                    data.pop(decoded, None)
                else:
                    data[decoded] = decode_value(value)
                replayed += 1
    finally:
        consumer.unassign()
