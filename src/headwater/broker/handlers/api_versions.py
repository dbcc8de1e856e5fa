"""ApiVersions v0-3: the version ranges this broker handles, computed from the registry.

v3 adds client software name/version (flexible). Unknown higher versions are answered by the
server with a v0 body and UNSUPPORTED_VERSION so clients can retry (see ``_server``).
"""

from __future__ import annotations

from typing import Any

from headwater.broker._context import RequestContext
from headwater.broker._registry import handles


@handles(18, "ApiVersions", 0, 3)
async def api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {"error_code": 0, "api_keys": ctx.broker.api_versions(), "throttle_time": 0}
