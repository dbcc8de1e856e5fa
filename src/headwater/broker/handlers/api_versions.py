"""ApiVersions v0-3: the version ranges this broker handles, computed from the registry.

v3 adds client software name/version (flexible) and, as tagged fields, the features the broker
supports and has finalized. ``transaction.version`` = 2 tells clients that speak KIP-890 part 2
(the Java client from 4.0) to bump the producer epoch with every transaction;
``group.version`` = 1 says the consumer rebalance protocol (KIP-848) is on, as Kafka 4
finalizes it (clients look for ConsumerGroupHeartbeat, but tools show the feature). Unknown
higher versions are answered by the server with a v0 body and UNSUPPORTED_VERSION so clients
can retry (see ``_server``).
"""

from __future__ import annotations

from typing import Any

from headwater.broker._context import RequestContext
from headwater.broker._registry import handles

TRANSACTION_VERSION = 2
GROUP_VERSION = 1
# (name, lowest supported version, highest supported version = finalized level).
FEATURES = (
    ("transaction.version", 0, TRANSACTION_VERSION),
    ("group.version", 0, GROUP_VERSION),
)
# KIP-1022: clients before it refuse a supported range starting at 0, so answers before v4
# leave such features out of the supported list, as Kafka does; the finalized list keeps them.
SUPPORTED_FROM_ZERO_VERSION = 4
# Kafka numbers finalized feature sets by metadata offset; one fixed set needs one fixed epoch.
FINALIZED_FEATURES_EPOCH = 1


@handles(18, "ApiVersions", 0, 3)
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {
        "error_code": 0,
        "api_keys": ctx.broker.api_versions(),
        "throttle_time": 0,
        "supported_features": [
            {"name": name, "min_version": low, "max_version": high}
            for name, low, high in FEATURES
            if low > 0 or ctx.version >= SUPPORTED_FROM_ZERO_VERSION
        ],
        "finalized_features_epoch": FINALIZED_FEATURES_EPOCH,
        "finalized_features": [
            {"name": name, "max_version_level": level, "min_version_level": level}
            for name, _, level in FEATURES
        ],
    }
