"""Who a connection is, and what it may send before it has proved it: the security session.

Sans-IO: the connection shell asks ``admit(api_key, now_ms)`` before it dispatches a frame,
and the SASL handlers move the session along (handshake → exchange → authenticated). Rules,
as Apache Kafka applies them:

- On a SASL listener nothing but ApiVersions, SaslHandshake and SaslAuthenticate is accepted
  until authentication succeeds; anything else closes the connection.
- KIP-368: with ``connections_max_reauth_ms`` set, a session expires; the client may
  re-authenticate on the same connection (SaslHandshake, then SaslAuthenticate, as the same
  principal; its other requests go on meanwhile under the session it has), and a request
  other than those after expiry closes the connection.
- A failed authentication is answered (after a delay) and then the connection is closed.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from headwater.broker._listeners import Listener
from headwater.protocol import ProtocolError

API_VERSIONS = 18
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
_BEFORE_AUTHENTICATION = frozenset((API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE))
ANONYMOUS = "User:ANONYMOUS"


class SaslExchange(Protocol):
    """One mechanism's server side: feed client tokens, get server tokens."""

    def step(self, token: bytes) -> bytes:
        """The answer to ``token``; raises ``AuthenticationFailed`` to refuse."""
        ...

    @property
    def complete(self) -> bool:
        """True once the exchange has authenticated its user."""
        ...

    @property
    def user(self) -> str:
        """The authenticated user name (only when complete)."""
        ...


class SessionClosed(ProtocolError):
    """A request the session does not allow now: the connection is closed."""

    reason = "authentication"


@dataclasses.dataclass(slots=True)
class Session:
    """The security state of one connection."""

    listener: Listener
    principal: str = ANONYMOUS
    authenticated: bool = False
    mechanism: str | None = None
    exchange: SaslExchange | None = None
    # Set once authenticated with SaslAuthenticate v1+ and a reauth limit: the session's end.
    expires_ms: int | None = None
    reauthenticating: bool = False
    # Authentication failed: answer the request in flight, then close the connection.
    closing: bool = False
    # After SaslHandshake v0 the next frames are bare SASL tokens, not Kafka requests.
    raw_tokens: bool = False

    @classmethod
    def open(cls, listener: Listener, tls_principal: str | None) -> Session:
        """A new connection: authenticated at once unless its listener speaks SASL."""
        session = cls(listener)
        if tls_principal is not None and not listener.sasl:
            session.principal = tls_principal
        session.authenticated = not listener.sasl
        return session

    @property
    def sequential(self) -> bool:
        """True while requests must be handled one at a time (before authentication)."""
        return not self.authenticated or self.closing

    def admit(self, api_key: int, now_ms: int) -> None:
        """Raise ``SessionClosed`` if this request may not be handled on this connection now."""
        if self.closing:
            raise SessionClosed("authentication failed; the connection is being closed")
        if api_key in _BEFORE_AUTHENTICATION:
            return
        if not self.authenticated:  # re-authenticating keeps the session it had
            raise SessionClosed(
                f"api_key={api_key} sent before SASL authentication completed on listener "
                f"{self.listener.name}; only ApiVersions, SaslHandshake and SaslAuthenticate "
                "are accepted until then"
            )
        if self.expires_ms is not None and now_ms >= self.expires_ms:
            raise SessionClosed(
                f"api_key={api_key} sent after the session of {self.principal} expired "
                "(connections_max_reauth_ms); the client did not re-authenticate"
            )

    def begin(self, mechanism: str, exchange: SaslExchange) -> None:
        """A SaslHandshake chose ``mechanism``: the next SaslAuthenticate tokens go to it."""
        if self.authenticated:
            self.reauthenticating = True
        self.mechanism = mechanism
        self.exchange = exchange

    def succeed(self, user: str, expires_ms: int | None) -> str | None:
        """The exchange authenticated ``user``; returns an error text if it may not switch."""
        principal = f"User:{user}"
        if self.reauthenticating and principal != self.principal:
            self.closing = True
            return (
                f"re-authentication as {principal} on a connection authenticated as "
                f"{self.principal}: a connection cannot change principal"
            )
        self.principal = principal
        self.authenticated = True
        self.reauthenticating = False
        self.exchange = None
        self.expires_ms = expires_ms
        return None

    def fail(self) -> None:
        self.exchange = None
        self.closing = True
