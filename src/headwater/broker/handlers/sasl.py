"""SaslHandshake v0-1 and SaslAuthenticate v0-2: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.

SaslHandshake picks the mechanism; each SaslAuthenticate carries one client token and returns
the server's. v1 of SaslAuthenticate adds ``session_lifetime_ms`` (KIP-368 re-authentication),
v2 is flexible. After SaslHandshake v0 the tokens come as bare size-prefixed frames instead
(Kafka 4 still accepts it, and librdkafka 2.0 turns SASL on only when v0 is listed). Users
and their SCRAM credentials live in the broker's credential store; PLAIN checks a password
against the same stored SCRAM credential, so one user list serves both. A failed exchange is
answered after ``connection_failed_authentication_delay_ms`` and closes its connection, as
in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from headwater.broker import _audit
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.broker._session import SaslExchange, Session, SessionClosed
from headwater.security._errors import AuthenticationFailed
from headwater.security._plain import PlainServer
from headwater.security._scram import SCRAM_MECHANISMS, ScramServer

if TYPE_CHECKING:
    from headwater.broker._server import Broker

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


@handles(17, "SaslHandshake", 0, 1)
async def sasl_handshake(ctx: RequestContext, request: Any) -> dict[str, Any]:
    session = ctx.session
    enabled = ctx.broker.config.sasl_enabled_mechanisms
    if not session.listener.sasl:
        return {"error_code": ILLEGAL_SASL_STATE, "mechanisms": []}
    if session.exchange is not None or (ctx.version == 0 and session.authenticated):
        session.fail()  # a second handshake mid-exchange, or a v0 re-authentication
        return {"error_code": ILLEGAL_SASL_STATE, "mechanisms": enabled}
    if request.mechanism not in enabled:
        return {"error_code": UNSUPPORTED_SASL_MECHANISM, "mechanisms": enabled}
    session.begin(request.mechanism, _exchange(ctx, request.mechanism))
    # v0: the tokens that follow come as bare size-prefixed frames, not SaslAuthenticate.
    session.raw_tokens = ctx.version == 0
    return {"error_code": 0, "mechanisms": enabled}


@handles(36, "SaslAuthenticate", 0, 2)
async def sasl_authenticate(ctx: RequestContext, request: Any) -> dict[str, Any]:
    session = ctx.session
    answer: dict[str, Any] = {
        "error_code": 0,
        "error_message": None,
        "auth_bytes": b"",
        "session_lifetime": 0,
    }
    if session.exchange is None or session.raw_tokens:
        session.fail()
        answer["error_code"] = ILLEGAL_SASL_STATE
        answer["error_message"] = "SaslAuthenticate before a SaslHandshake v1 chose a mechanism"
        return answer
    token, refused = await authenticate_token(
        ctx.broker, session, ctx.client_host, request.auth_bytes
    )
    if refused is not None:
        answer["error_code"] = SASL_AUTHENTICATION_FAILED
        answer["error_message"] = refused
        return answer
    answer["auth_bytes"] = token
    if session.authenticated and ctx.version >= 1:
        answer["session_lifetime"] = ctx.broker.config.connections_max_reauth_ms
    return answer


async def raw_token(broker: Broker, session: Session, client_host: str, token: bytes) -> bytes:
    """A bare SASL token after SaslHandshake v0: the size-prefixed server token, or
    ``SessionClosed`` (there is no way to say why, so the connection just closes)."""
    answer, refused = await authenticate_token(broker, session, client_host, token)
    if refused is not None:
        raise SessionClosed(f"SASL authentication failed: {refused}")
    if session.authenticated:
        session.raw_tokens = False
    return len(answer).to_bytes(4, "big") + answer


async def authenticate_token(
    broker: Broker, session: Session, client_host: str, token: bytes
) -> tuple[bytes, str | None]:
    """One client token through the session's exchange: (server token, refusal or None).

    A refusal is returned after connection_failed_authentication_delay_ms, with the session
    marked to close once it is answered.
    """
    exchange = session.exchange
    assert exchange is not None
    mechanism = session.mechanism or ""
    try:
        if mechanism == "PLAIN":
            # PLAIN derives the salted password (thousands of HMACs): off the event loop.
            answer = await asyncio.to_thread(exchange.step, token)
        else:
            answer = exchange.step(token)
    except AuthenticationFailed as exc:
        return b"", await _refuse(broker, session, client_host, str(exc))
    if not exchange.complete:
        return answer, None
    lifetime_ms = broker.config.connections_max_reauth_ms
    expires_ms = broker.now_ms() + lifetime_ms if lifetime_ms else None
    refused = session.succeed(exchange.user, expires_ms)
    if refused is not None:
        return b"", await _refuse(broker, session, client_host, refused)
    broker.metrics.authentications.labels(session.listener.name, mechanism, "success").inc()
    log.info(
        "authenticated principal=%s mechanism=%s listener=%s peer=%s",
        session.principal,
        mechanism,
        session.listener.name,
        client_host,
    )
    _audit.audit_authentication(broker, session, client_host, mechanism, True)
    return answer, None


async def _refuse(broker: Broker, session: Session, client_host: str, reason: str) -> str:
    session.fail()
    broker.metrics.authentications.labels(
        session.listener.name, session.mechanism or "", "failure"
    ).inc()
    _audit.audit_authentication(broker, session, client_host, session.mechanism, False, reason)
    broker.auth_failures.warning(
        "authentication failed listener=%s mechanism=%s peer=%s reason=%s",
        session.listener.name,
        session.mechanism,
        client_host,
        reason,
    )
    await asyncio.sleep(broker.config.connection_failed_authentication_delay_ms / 1000)
    return reason
