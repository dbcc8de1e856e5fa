"""Producer and consumer construction from a profile plus the user's overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer

from headwater.client._profiles import consumer_config, producer_config


def new_producer(
    bootstrap: str, profile: str = "durable", overrides: Mapping[str, Any] | None = None
) -> Producer:
    """A confluent-kafka producer with ``profile``'s settings and ``overrides`` applied last."""
    return Producer(producer_config(bootstrap, profile, overrides))


def new_consumer(
    bootstrap: str, group_id: str | None, overrides: Mapping[str, Any] | None = None
) -> Consumer:
    """A confluent-kafka consumer with the ingestion defaults and ``overrides`` applied last."""
    return Consumer(consumer_config(bootstrap, group_id, overrides))
