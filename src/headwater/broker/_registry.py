"""The table of API handlers. ApiVersions is computed from it, so the broker can never
advertise an API or version that nothing handles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.broker._context import RequestContext

HandlerFn = Callable[["RequestContext", Any], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    name: str
    min_version: int
    max_version: int
    fn: HandlerFn


HANDLERS: dict[int, Handler] = {}


def handles(
    api_key: int, name: str, min_version: int, max_version: int
) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of ``api_key`` for versions min..max inclusive."""

    def register(fn: HandlerFn) -> HandlerFn:
        assert api_key not in HANDLERS, f"api_key {api_key} registered twice"
        HANDLERS[api_key] = Handler(api_key, name, min_version, max_version, fn)
        return fn

    return register
