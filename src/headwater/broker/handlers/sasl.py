"""SaslHandshake v1 and SaslAuthenticate v0-2: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.

SaslHandshake picks the mechanism; each SaslAuthenticate carries one client token and returns
the server's. v1 of SaslAuthenticate adds ``session_lifetime_ms`` (KIP-368 re-authentication),
v2 is flexible. SaslHandshake v0 (raw tokens outside Kafka framing) is gone from Kafka 4
(KIP-896) and is not offered. Users and their SCRAM credentials live in the broker's
credential store; PLAIN checks a password against the same stored SCRAM credential, so one
user list serves both. A failed exchange is answered after
``connection_failed_authentication_delay_ms`` and closes its connection, as in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._session import SaslExchange
from headwater.security._errors import AuthenticationFailed
from headwater.security._plain import PlainServer
from headwater.security._scram import SCRAM_MECHANISMS, ScramServer

log = logging.getLogger(__name__)

UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


class _Scram:
    """A SCRAM exchange as a SaslExchange: client-first, then client-final."""

    def __init__(self, server: ScramServer) -> None:
        self._server = server
        self._steps = 0

    def step(self, token: bytes) -> bytes:
        self._steps += 1
        if self._steps == 1:
            return self._server.first(token)
        if self._steps == 2:
            return self._server.final(token)
        raise AuthenticationFailed("SCRAM exchange already finished")

    @property
    def complete(self) -> bool:
        return self._server.done

    @property
    def user(self) -> str:
        return self._server.username


class _Plain:
    """PLAIN as a SaslExchange: one token holding the user name and password."""

    def __init__(self, server: PlainServer) -> None:
        self._server = server
        self._user: str | None = None

    def step(self, token: bytes) -> bytes:
        if self._user is not None:
            raise AuthenticationFailed("PLAIN exchange already finished")
        self._user = self._server.authenticate(token)
        return b""

    @property
    def complete(self) -> bool:
        return self._user is not None

    @property
    def user(self) -> str:
        assert self._user is not None
        return self._user


def _exchange(ctx: RequestContext, mechanism: str) -> SaslExchange:
    store = ctx.broker.credentials
    if mechanism in SCRAM_MECHANISMS:
        return _Scram(ScramServer(mechanism, store.get))
    return _Plain(PlainServer(store.get))


@handles(17, "SaslHandshake", 1, 1)
async def sasl_handshake(ctx: RequestContext, request: Any) -> dict[str, Any]:
    session = ctx.session
    enabled = ctx.broker.config.sasl_enabled_mechanisms
    if not session.listener.sasl:
        return {"error_code": ILLEGAL_SASL_STATE, "mechanisms": []}
    if session.exchange is not None:
        session.fail()  # a second handshake in the middle of an exchange
        return {"error_code": ILLEGAL_SASL_STATE, "mechanisms": enabled}
    if request.mechanism not in enabled:
        return {"error_code": UNSUPPORTED_SASL_MECHANISM, "mechanisms": enabled}
    session.begin(request.mechanism, _exchange(ctx, request.mechanism))
    return {"error_code": 0, "mechanisms": enabled}


@handles(36, "SaslAuthenticate", 0, 2)
async def sasl_authenticate(ctx: RequestContext, request: Any) -> dict[str, Any]:
    session = ctx.session
    exchange = session.exchange
    answer: dict[str, Any] = {
        "error_code": 0,
        "error_message": None,
        "auth_bytes": b"",
        "session_lifetime": 0,
    }
    if exchange is None:
        session.fail()
        answer["error_code"] = ILLEGAL_SASL_STATE
        answer["error_message"] = "SaslAuthenticate before a SaslHandshake chose a mechanism"
        return answer
    mechanism = session.mechanism or ""
    metrics = ctx.broker.metrics.authentications
    try:
        if mechanism == "PLAIN":
            # PLAIN derives the salted password (thousands of HMACs): off the event loop.
            answer["auth_bytes"] = await asyncio.to_thread(exchange.step, request.auth_bytes)
        else:
            answer["auth_bytes"] = exchange.step(request.auth_bytes)
    except AuthenticationFailed as exc:
        return await _refuse(ctx, answer, str(exc))
    if not exchange.complete:
        return answer
    lifetime_ms = ctx.broker.config.connections_max_reauth_ms
    expires_ms = ctx.broker.now_ms() + lifetime_ms if lifetime_ms else None
    refused = session.succeed(exchange.user, expires_ms)
    if refused is not None:
        return await _refuse(ctx, answer, refused)
    metrics.labels(session.listener.name, mechanism, "success").inc()
    log.info(
        "authenticated principal=%s mechanism=%s listener=%s peer=%s",
        session.principal,
        mechanism,
        session.listener.name,
        ctx.client_host,
    )
    if ctx.version >= 1:
        answer["session_lifetime"] = lifetime_ms
    return answer


async def _refuse(ctx: RequestContext, answer: dict[str, Any], reason: str) -> dict[str, Any]:
    session = ctx.session
    session.fail()
    ctx.broker.metrics.authentications.labels(
        session.listener.name, session.mechanism or "", "failure"
    ).inc()
    ctx.broker.auth_failures.warning(
        "authentication failed listener=%s mechanism=%s peer=%s reason=%s",
        session.listener.name,
        session.mechanism,
        ctx.client_host,
        reason,
    )
    await asyncio.sleep(ctx.broker.config.connection_failed_authentication_delay_ms / 1000)
    answer["error_code"] = SASL_AUTHENTICATION_FAILED
    answer["error_message"] = reason
    answer["auth_bytes"] = b""
    return answer
