"""The broker's client quotas: durable settings, per-request limits and the throttle answer.

Wraps the sans-IO core (``_quotas``) for the connection shell. Settings live in
``<data_dir>/__meta/client-quotas.json`` (written atomically through ``write_json``); the
limits of each (user, client id) pair are resolved once and cached until the next change.
With no quota set, ``active`` is False and the shell calls handlers directly, so requests cost
what they did before (one attribute check).

KIP-219 order: the request is handled and recorded first; its response carries the throttle
time and goes out at once; the shell then reads nothing more from that connection until the
time has passed. Produce records its record bytes, Fetch the bytes it answers (capped at what
one request may carry within the quota, and answered empty when throttled, the bytes taken
back, as Kafka's KafkaApis does); every API but ApiVersions and SASL records the time its
handler ran on the event loop, as a percentage of one thread.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.broker import _quotas as q
from headwater.storage._durable_file import read_json, write_json

if TYPE_CHECKING:
    from headwater.broker._context import RequestContext

log = logging.getLogger(__name__)

PRODUCE, FETCH = 0, 1
# Kafka exempts these from request quotas: a client must always be able to (re)connect.
REQUEST_QUOTA_EXEMPT = frozenset((17, 18, 36))
Handler = Callable[["RequestContext", Any], Awaitable[dict[str, Any] | None]]


def quotas_path(data_dir: Path) -> Path:
    return data_dir / "__meta" / "client-quotas.json"


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one (user, client id) is held to; None where no quota applies."""

    producer: q.Limit | None
    consumer: q.Limit | None
    request: q.Limit | None


_UNLIMITED = Limits(None, None, None)


class _Timed:
    """Await a coroutine and add up the time its own steps take, not the time it waits.

    This is the share of the event loop thread a request uses, what Kafka's request quota
    counts as I/O thread time; a long-polling fetch waiting for data costs nothing.
    """

    __slots__ = ("_clock", "_coro", "elapsed_s")

    def __init__(self, coro: Coroutine[Any, Any, Any], clock: Callable[[], float]) -> None:
        self._coro = coro
        self._clock = clock
        self.elapsed_s = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, clock = self._coro, self._clock
        value: Any = None
        error: BaseException | None = None
        while True:
            started = clock()
            try:
                waited = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.elapsed_s += clock() - started
                return stop.value
            finally:
                value, error = None, None
            self.elapsed_s += clock() - started
            try:
                value = yield waited
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation goes on to the handler
                error = exc


class ClientQuotas:
    """Quota settings of one broker and the rates of the clients they hold."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self.settings = q.QuotaSettings.from_json(read_json(path))
        self.tracker = q.QuotaTracker()
        self._limits: dict[tuple[str, str], Limits] = {}
        self.active = False
        self._refresh()

    def _refresh(self) -> None:
        self._limits.clear()
        self.active = any(self.settings.enforced(key) for key in q.ENFORCED)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def alter(self, changes: list[tuple[q.Entity, list[tuple[str, float, bool]]]]) -> None:
        """Apply validated changes and store them before anyone is held to them."""
        for ent, ops in changes:
            self.settings.alter(ent, ops)
        write_json(self.path, self.settings.to_json())
        # Rates of entities whose limits changed start afresh, as Kafka re-creates sensors.
        self.tracker.rates.clear()
        self._refresh()
        log.info("client quotas changed entities=%d", len(self.settings.entries))

    def limits(self, user: str, client_id: str) -> Limits:
        key = (user, client_id)
        found = self._limits.get(key)
        if found is None:
            s = self.settings
            found = self._limits[key] = Limits(
                s.limit(q.PRODUCER_BYTE_RATE, user, client_id),
                s.limit(q.CONSUMER_BYTE_RATE, user, client_id),
                s.limit(q.REQUEST_PERCENTAGE, user, client_id),
            )
        return found

    async def handle(
        self, ctx: RequestContext, fn: Handler, body: Any
    ) -> tuple[dict[str, Any] | None, int, bool]:
        """Run one handler under the caller's quotas: (response, throttle time in ms, whether
        any quota applies to the caller)."""
        principal = ctx.principal
        user = principal.partition(":")[2] or principal
        limits = self.limits(user, ctx.header.client_id or "")
        api_key = ctx.header.api_key
        tracker = self.tracker
        if api_key == FETCH and limits.consumer is not None:
            most = max(int(tracker.max_value_in_window(limits.consumer)), 1)
            if most < body.max_bytes:
                body = dataclasses.replace(body, max_bytes=most)
        elapsed_s = 0.0
        if limits.request is not None and api_key not in REQUEST_QUOTA_EXEMPT:
            timed = _Timed(fn(ctx, body), self._clock)  # type: ignore[arg-type]
            response = await timed
            elapsed_s = timed.elapsed_s
        else:
            response = await fn(ctx, body)
        now = self.now_ms()
        throttle = 0
        if limits.request is not None and api_key not in REQUEST_QUOTA_EXEMPT:
            throttle = tracker.record(q.REQUEST_PERCENTAGE, limits.request, elapsed_s * 100, now)
        if api_key == PRODUCE and limits.producer is not None:
            size = sum(len(d.records or b"") for t in body.topic_data for d in t.partition_data)
            throttle = max(
                throttle, tracker.record(q.PRODUCER_BYTE_RATE, limits.producer, size, now)
            )
        elif api_key == FETCH and limits.consumer is not None and response is not None:
            size = sum(len(p["records"]) for t in response["responses"] for p in t["partitions"])
            bandwidth = tracker.record(q.CONSUMER_BYTE_RATE, limits.consumer, size, now)
            if bandwidth or throttle:
                tracker.unrecord(q.CONSUMER_BYTE_RATE, limits.consumer, size, now)
                response = {**response, "responses": []}
            throttle = max(throttle, bandwidth)
        if throttle and response is not None:
            response = {**response, "throttle_time": throttle}
        bound = limits != _UNLIMITED
        return response, throttle, bound
