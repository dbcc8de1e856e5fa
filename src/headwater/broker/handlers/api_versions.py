"""ApiVersions v0-3: the version ranges this broker handles, computed from the registry.

v3 adds client software name/version (flexible) and, as tagged fields, the features the broker
supports and has finalized. ``transaction.version`` = 2 tells clients that speak KIP-890 part 2
(the Java client from 4.0) to bump the producer epoch with every transaction. Unknown higher
versions are answered by the server with a v0 body and UNSUPPORTED_VERSION so clients can retry
(see ``_server``).
"""

from __future__ import annotations

from typing import Any

from headwater.broker._context import RequestContext
from headwater.broker._registry import handles

TRANSACTION_VERSION = 2
# Kafka numbers finalized feature sets by metadata offset; one fixed set needs one fixed epoch.
FINALIZED_FEATURES_EPOCH = 1


@handles(18, "ApiVersions", 0, 3)
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {
        "error_code": 0,
        "api_keys": ctx.broker.api_versions(),
        "throttle_time": 0,
        "supported_features": [
            {"name": "transaction.version", "min_version": 0, "max_version": TRANSACTION_VERSION}
        ],
        "finalized_features_epoch": FINALIZED_FEATURES_EPOCH,
        "finalized_features": [
            {
                "name": "transaction.version",
                "max_version_level": TRANSACTION_VERSION,
                "min_version_level": TRANSACTION_VERSION,
            }
        ],
    }
