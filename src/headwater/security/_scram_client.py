"""The client side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677), for this package's own
protocol-level tools (``headwater transactions``, ``headwater quotas``), which talk to brokers
without librdkafka.

It sends exactly the nonce the server returned (librdkafka before 2.6.1 did not, and Kafka 4
refuses that) and checks the server's signature, so a server that does not know the password
cannot pass for one that does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from headwater.security._errors import AuthenticationFailed

_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_GS2_HEADER = "n,,"


def _saslname(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


def _attributes(message: bytes) -> dict[str, str]:
    try:
        text = message.decode()
    except UnicodeDecodeError:
        raise AuthenticationFailed("the server's SCRAM message is not UTF-8") from None
    attributes: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and len(key) == 1:
            attributes.setdefault(key, value)
    return attributes


class ScramClient:
    """One SCRAM exchange: ``first()``, then ``final(server_first)``, then ``verify(...)``."""

    def __init__(self, mechanism: str, user: str, password: str, nonce: str | None = None) -> None:
        if mechanism not in _HASHES:
            raise ValueError(f"unknown SCRAM mechanism {mechanism!r}: {' or '.join(_HASHES)}")
        self._hash = _HASHES[mechanism]
        self._password = password.encode()
        self._nonce = nonce or secrets.token_urlsafe(24)
        self._first_bare = f"n={_saslname(user)},r={self._nonce}"
        self._server_signature = b""

    def first(self) -> bytes:
        return (_GS2_HEADER + self._first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        attributes = _attributes(server_first)
        if "e" in attributes:
            raise AuthenticationFailed(f"the server refused the login: {attributes['e']}")
        nonce, salt_text, iterations_text = (attributes.get(k) for k in ("r", "s", "i"))
        if not nonce or not salt_text or not iterations_text or not iterations_text.isdigit():
            raise AuthenticationFailed("the server's SCRAM first message is malformed")
        if not nonce.startswith(self._nonce) or nonce == self._nonce:
            raise AuthenticationFailed("the server's SCRAM nonce does not extend ours")
        try:
            salt = base64.b64decode(salt_text, validate=True)
        except ValueError:
            raise AuthenticationFailed("the server's SCRAM salt is not base64") from None
        salted = hashlib.pbkdf2_hmac(self._hash, self._password, salt, int(iterations_text))
        client_key = hmac.new(salted, b"Client Key", self._hash).digest()
        stored_key = hashlib.new(self._hash, client_key).digest()
        channel = base64.b64encode(_GS2_HEADER.encode()).decode()
        without_proof = f"c={channel},r={nonce}"
        auth_message = f"{self._first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, self._hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", self._hash).digest()
        self._server_signature = hmac.new(server_key, auth_message, self._hash).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """Raise unless the server proved it holds this user's credential."""
        attributes = _attributes(server_final)
        if "e" in attributes:
            raise AuthenticationFailed(f"the server refused the login: {attributes['e']}")
        expected = base64.b64encode(self._server_signature).decode()
        if not self._server_signature or not hmac.compare_digest(attributes.get("v", ""), expected):
            raise AuthenticationFailed("the server's SCRAM signature is wrong")
