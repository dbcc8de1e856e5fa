"""HTTP Basic authentication against the broker's SCRAM users, and roles for HTTP services.

The schema registry, the console and the broker's /metrics endpoint log users in with the
same ``<data-dir>/__meta/scram-credentials.json`` the broker uses for SASL, so one list of
users serves Kafka clients and HTTP clients. The password is checked as SASL/PLAIN checks
it: the user's SCRAM keys are re-derived from it and compared in constant time, SCRAM-SHA-512
preferred, and an unknown user costs the same PBKDF2 work and gets the same answer as a wrong
password.

PBKDF2 costs milliseconds, and HTTP clients send their credentials with every request, so a
successful login is remembered (as an HMAC of the password under a per-process key, bound to
the credential it was checked against) for the next requests; changing or removing the user
in the store ends that at once. Failures are never remembered: every guess pays full price.

:class:`BasicAuthMiddleware` is a plain ASGI callable (no framework import): 401 with a
``WWW-Authenticate`` challenge and a Confluent-style JSON error when unauthenticated, 403 when
a read-only user sends a write method.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from headwater.security._credentials import CredentialStore
from headwater.security._errors import AuthenticationFailed, SecurityError
from headwater.security._scram import ITERATIONS_DEFAULT, ScramCredential, decoy_salt

log = logging.getLogger(__name__)

READ_ONLY = "read-only"
READ_WRITE = "read-write"
ROLES = (READ_ONLY, READ_WRITE)
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")
# "Basic " plus the base64 of a 4 KiB user:password (PLAIN's own bound), with room to spare.
AUTHORIZATION_BYTES_MAX = 8192
# Successful logins remembered; a bound so that many users cannot grow memory without end.
VERIFIED_CACHE_MAX = 1024
# One warning per interval at most, with a count of the failures in between: a password
# guesser must not be able to flood the log.
FAILURE_LOG_INTERVAL_S = 10.0

_INVALID = "Authentication failed: Invalid username or password"
_PREFERRED_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
_CACHE_KEY = secrets.token_bytes(32)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_basic(header: str | bytes | None) -> tuple[str, str]:
    """(user, password) from an ``Authorization: Basic <base64(user:password)>`` value.

    Strict: bounded length, the ``Basic`` scheme (any case), canonical base64, UTF-8, a
    non-empty user and password split at the first colon (RFC 7617: a user has no colon).
    """
    if header is None or len(header) == 0:
        raise AuthenticationFailed("Authentication required: no Authorization header")
    if len(header) > AUTHORIZATION_BYTES_MAX:
        raise AuthenticationFailed(
            f"Invalid Authorization header: longer than {AUTHORIZATION_BYTES_MAX} bytes"
        )
    if isinstance(header, str):
        try:
            raw = header.encode("ascii")
        except UnicodeEncodeError:
            raise AuthenticationFailed("Invalid Authorization header: not ASCII") from None
    else:
        raw = bytes(header)
    scheme, _, token = raw.strip().partition(b" ")
    if scheme.lower() != b"basic":
        raise AuthenticationFailed("Invalid Authorization header: the scheme is not Basic")
    try:
        decoded = base64.b64decode(token.strip(b" "), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(
            "Invalid Authorization header: not base64 of UTF-8 text"
        ) from None
    user, colon, password = text.partition(":")
    if not colon:
        raise AuthenticationFailed("Invalid Authorization header: no colon after the username")
    if not user or not password:
        raise AuthenticationFailed("Authentication failed: empty username or password")
    if "\x00" in text:
        raise AuthenticationFailed("Invalid Authorization header: NUL in the credentials")
    return user, password


class _FailureLog:
    """Logs refused logins, at most one line per interval, never with the password."""

    def __init__(self, clock: Callable[[], float], interval_s: float) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last: float | None = None
        self._suppressed = 0

    def refused(self, reason: str, user: str | None, peer: str | None) -> None:
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self._interval_s:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        log.warning(
            "http authentication failed user=%r peer=%s reason=%s suppressed=%d",
            user,
            peer,
            reason,
            suppressed,
        )


class BasicAuth:
    """Checks Basic credentials against a :class:`CredentialStore` and gives each user a role.

    ``roles`` maps user names to ``read-only`` or ``read-write``; users it does not list get
    ``default_role``. Safe to call from several threads.
    """

    def __init__(
        self,
        store: CredentialStore,
        roles: Mapping[str, str] | None = None,
        realm: str = "headwater",
        *,
        default_role: str = READ_ONLY,
        clock: Callable[[], float] = time.monotonic,
        failure_log_interval_s: float = FAILURE_LOG_INTERVAL_S,
    ) -> None:
        for user, role in {**(roles or {}), "": default_role}.items():
            if role not in ROLES:
                what = "default_role" if user == "" else f"the role of {user!r}"
                raise ValueError(f"{what} is {role!r}: choose one of {', '.join(ROLES)}")
        if '"' in realm or "\\" in realm:
            raise ValueError("the realm must not contain quotes or backslashes")
        self.store = store
        self.roles = dict(roles or {})
        self.default_role = default_role
        self.realm = realm
        # Unknown users cost the same PBKDF2 work as a wrong password (as in SASL/PLAIN).
        self._decoy = ScramCredential(
            _PREFERRED_MECHANISMS[0],
            decoy_salt(_PREFERRED_MECHANISMS[0], ""),
            bytes(64),
            bytes(64),
            ITERATIONS_DEFAULT,
        )
        self._lock = threading.Lock()
        self._verified: OrderedDict[tuple[str, bytes], ScramCredential] = OrderedDict()
        self._failures = _FailureLog(clock, failure_log_interval_s)

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        return f'Basic realm="{self.realm}", charset="UTF-8"'

    def role(self, user: str) -> str:
        return self.roles.get(user, self.default_role)

    def can_write(self, user: str) -> bool:
        return self.role(user) == READ_WRITE

    def authenticate(self, header: str | bytes | None, *, peer: str | None = None) -> str:
        """The user the ``Authorization`` header value proves to be, or AuthenticationFailed."""
        user: str | None = None
        try:
            user, password = parse_basic(header)
            return self._verify(user, password)
        except AuthenticationFailed as exc:
            self._failures.refused(str(exc), user, peer)
            raise

    def _verify(self, user: str, password: str) -> str:
        key = (user, hmac.new(_CACHE_KEY, password.encode("utf-8"), hashlib.sha256).digest())
        credential = self._current(user)
        with self._lock:
            remembered = self._verified.get(key)
        if remembered is not None and remembered == credential:
            return user
        if credential is None:
            self._decoy.verify_password(password)
            raise AuthenticationFailed(_INVALID)
        if not credential.verify_password(password):
            raise AuthenticationFailed(_INVALID)
        # Bound to the credential it was checked against: a changed password or a removed
        # user no longer matches it.
        with self._lock:
            self._verified[key] = credential
            self._verified.move_to_end(key)
            while len(self._verified) > VERIFIED_CACHE_MAX:
                self._verified.popitem(last=False)
        return user

    def _current(self, user: str) -> ScramCredential | None:
        try:
            for mechanism in _PREFERRED_MECHANISMS:
                credential = self.store.get(user, mechanism)
                if credential is not None:
                    return credential
        except SecurityError as exc:
            log.warning("http credential lookup failed error=%s", exc)
            raise AuthenticationFailed(
                "Authentication failed: the server cannot read its credential store"
            ) from exc
        return None


def _error_body(code: int, message: str) -> bytes:
    return json.dumps({"error_code": code, "message": message}).encode()


class BasicAuthMiddleware:
    """ASGI middleware: every request outside ``public_paths`` must log in with Basic auth.

    Read-only users are refused ``write_methods`` with 403. The user is passed on as
    ``scope["user"]`` and ``scope["state"]["user"]`` (Starlette's ``request.state.user``).
    Password checks run in a worker thread, so PBKDF2 never stalls the event loop.
    """

    def __init__(
        self,
        app: AsgiApp,
        auth: BasicAuth,
        *,
        write_methods: Iterable[str] = WRITE_METHODS,
        public_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.auth = auth
        self.write_methods = frozenset(m.upper() for m in write_methods)
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        headers = [v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else None
        try:
            if len(headers) > 1:
                raise AuthenticationFailed("Invalid request: more than one Authorization header")
            header = headers[0] if headers else None
            user = await asyncio.to_thread(self.auth.authenticate, header, peer=peer)
        except AuthenticationFailed as exc:
            await self._refuse(scope, send, 401, 40101, str(exc))
            return
        if scope.get("method", "GET").upper() in self.write_methods and not self.auth.can_write(
            user
        ):
            await self._refuse(scope, send, 403, 40301, f"User {user!r} may only read")
            return
        scope = dict(scope)
        scope["user"] = user
        scope["state"] = {**(scope.get("state") or {}), "user": user}
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, code: int, text: str) -> None:
        if scope["type"] == "websocket":
            # 1008: policy violation; closing before accept makes the server answer 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        body = _error_body(code, text)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", self.auth.challenge.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def wsgi_basic_auth(app: Callable[..., Iterable[bytes]], auth: BasicAuth) -> Callable[..., Any]:
    """A WSGI app that answers 401 unless the request logs in with Basic auth, else ``app``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR")
        try:
            auth.authenticate(environ.get("HTTP_AUTHORIZATION"), peer=peer)
        except AuthenticationFailed as exc:
            body = _error_body(40101, str(exc))
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("WWW-Authenticate", auth.challenge),
                ],
            )
            return [body]
        return app(environ, start_response)

    return wrapped
