"""SASL/PLAIN (RFC 4616), server side, checked against the users' SCRAM credentials.

Headwater keeps no passwords, so PLAIN re-derives the user's SCRAM keys from the password it
was sent and compares them in constant time; one user list then serves PLAIN and both SCRAM
mechanisms. SCRAM-SHA-512 is preferred when a user has both. Kafka's rules and wording: an
authzid only if it equals the user name, empty names and passwords refused. PLAIN sends the
password in the clear, so it belongs on TLS listeners.
"""

from __future__ import annotations

import logging

from headwater.security._errors import AuthenticationFailed, SecurityError
from headwater.security._scram import (
    ITERATIONS_DEFAULT,
    CredentialLookup,
    ScramCredential,
    decoy_salt,
)

log = logging.getLogger(__name__)

# RFC 4616 lets each field be 255 bytes; Kafka sets no bound. Generated tokens used as
# passwords can be longer than 255, and 4 KB is still nothing to hold per connection.
PLAIN_TOKEN_BYTES_MAX = 4096
_PREFERRED_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
_INVALID = "Authentication failed: Invalid username or password"


def parse_plain(token: bytes) -> tuple[str, str, str]:
    """(authzid, authcid, password) from ``authzid NUL authcid NUL password``.

    authzid is "" when the client sent none; otherwise it equals authcid.
    """
    if len(token) > PLAIN_TOKEN_BYTES_MAX:
        raise AuthenticationFailed(
            f"Invalid SASL/PLAIN response: longer than {PLAIN_TOKEN_BYTES_MAX} bytes"
        )
    try:
        text = bytes(token).decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
    parts = text.split("\x00")
    if len(parts) != 3:
        raise AuthenticationFailed(
            f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}"
        )
    authzid, authcid, password = parts
    if not authcid:
        raise AuthenticationFailed("Authentication failed: username not specified")
    if not password:
        raise AuthenticationFailed("Authentication failed: password not specified")
    if authzid and authzid != authcid:
        raise AuthenticationFailed(
            "Authentication failed: Client requested an authorization id that is different "
            "from username"
        )
    return authzid, authcid, password


class PlainServer:
    """Checks PLAIN tokens; holds no state between them, so one instance serves many."""

    def __init__(self, lookup: CredentialLookup) -> None:
        self._lookup = lookup
        # Used for unknown users so that they cost the same PBKDF2 work as a wrong password.
        salt = decoy_salt(_PREFERRED_MECHANISMS[0], "")
        self._decoy = ScramCredential(
            _PREFERRED_MECHANISMS[0], salt, bytes(64), bytes(64), ITERATIONS_DEFAULT
        )

    def authenticate(self, token: bytes) -> str:
        """The user ``token`` proves to be, or AuthenticationFailed."""
        _, user, password = parse_plain(token)
        credential = self._find(user)
        if credential is None:
            self._decoy.verify_password(password)
            raise AuthenticationFailed(_INVALID)
        if not credential.verify_password(password):
            raise AuthenticationFailed(_INVALID)
        return user

    def _find(self, user: str) -> ScramCredential | None:
        try:
            for mechanism in _PREFERRED_MECHANISMS:
                credential = self._lookup(user, mechanism)
                if credential is not None:
                    assert credential.mechanism == mechanism, "lookup returned another mechanism"
                    return credential
        except SecurityError as exc:
            log.warning("PLAIN credential lookup failed error=%s", exc)
            raise AuthenticationFailed(
                "Authentication failed: the broker cannot read its credential store"
            ) from exc
        return None
