"""Named client profiles: sensible librdkafka settings that users override key by key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater.client._security import with_security

PRODUCER_PROFILES: dict[str, dict[str, Any]] = {
    # Nothing acknowledged is lost: acks from the fsync policy, idempotent retries.
    "durable": {
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.size": 256 * 1024,
    },
    "low-latency": {
        "acks": 1,
        "compression.type": "none",
        "linger.ms": 0,
        "batch.size": 64 * 1024,
    },
    "high-throughput": {
        "acks": 1,
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1024 * 1024,
        "queue.buffering.max.kbytes": 1024 * 1024,
    },
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": True,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10_000,
    # librdkafka otherwise pauses fetching for a second once 100k messages are queued.
    "queued.min.messages": 1_000_000,
    "fetch.queue.backoff.ms": 10,
}


def producer_config(
    bootstrap: str, profile: str = "durable", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka producer settings for ``profile`` with ``overrides`` applied last."""
    if profile not in PRODUCER_PROFILES:
        raise ValueError(
            f"unknown producer profile {profile!r}; choose one of {', '.join(PRODUCER_PROFILES)}"
        )
    return with_security(
        {"bootstrap.servers": bootstrap, **PRODUCER_PROFILES[profile], **(overrides or {})}
    )


def consumer_config(
    bootstrap: str, group_id: str | None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = with_security({"bootstrap.servers": bootstrap, **CONSUMER_DEFAULTS})
    if group_id is None:
        # librdkafka requires a group id even for assign()-only consumers; never commit it.
        config["group.id"] = "headwater-cli"
        config["enable.auto.commit"] = False
    else:
        config["group.id"] = group_id
    config.update(overrides or {})
    return config
