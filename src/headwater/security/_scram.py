"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as Kafka's broker does it.

Sans-IO: the caller hands in each client message and a credential lookup, and sends back what
comes out. Kafka's rules, where they narrow the RFC: no channel binding (only the ``n`` gs2
flag), an authzid only if it names the authenticating user, iterations in [4096, 16384], the
password used as its UTF-8 bytes (Kafka does no SASLprep), and the ``tokenauth`` extension
(delegation tokens) refused because headwater has none.

An unknown user is not refused at the first message: the server answers with a decoy salt
derived from the name and fails at the final message with the same text as a wrong password,
so neither the answer nor the failure tells a stranger which users exist.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from headwater.security._errors import (
    AuthenticationFailed,
    SecurityError,
    UnacceptableCredential,
    UnsupportedMechanism,
)

log = logging.getLogger(__name__)

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# Kafka's ScramMechanism type codes, as DescribeUserScramCredentials and
# AlterUserScramCredentials carry them (0 is UNKNOWN).
_CODES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}

# Kafka's bounds: below 4096 a stolen StoredKey is too cheap to attack, above 16384 every
# login costs the broker too much CPU.
ITERATIONS_MIN = 4096
ITERATIONS_MAX = 16384
ITERATIONS_DEFAULT = 4096
SALT_BYTES_DEFAULT = 32
# A salt is echoed in every server-first message; AlterUserScramCredentials could send any size.
SALT_BYTES_MAX = 1024
# Client messages come from unauthenticated peers. A 256-character name escaped three times
# over, a nonce, a proof and a few extensions fit well within this.
MESSAGE_BYTES_MAX = 4096

CredentialLookup = Callable[[str, str], "ScramCredential | None"]
"""``lookup(user, mechanism)``: the user's credential for that mechanism, or None.

``CredentialStore.get`` has this shape. It may raise SecurityError (a store it cannot read);
the exchange then fails without telling the client why.
"""

_SASLNAME = re.compile(r"(?:[^\x00=,]|=2C|=3D)+")
_SASLNAME_ESCAPE = re.compile(r"=(2C|3D)")
_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
_EXTENSION = re.compile(r"([A-Za-z]+)=([^\x00,]+)")
# Attribute names with a meaning of their own in SCRAM messages: never valid as extensions.
_RESERVED_ATTRIBUTES = frozenset("acemnprsiv")
_DECOY_KEY = secrets.token_bytes(32)  # per process, so decoy salts cannot be precomputed


def mechanism_code(mechanism: str) -> int:
    """Kafka's type code for ``mechanism`` (SCRAM-SHA-256 is 1, SCRAM-SHA-512 is 2)."""
    try:
        return _CODES[mechanism]
    except KeyError:
        raise UnsupportedMechanism(f"Unknown SCRAM mechanism {mechanism!r}") from None


def mechanism_name(code: int) -> str | None:
    """The mechanism for Kafka's type ``code``, or None for 0 (UNKNOWN) and unknown codes."""
    return next((name for name, known in _CODES.items() if known == code), None)


def _check_mechanism(mechanism: str) -> str:
    if mechanism not in _HASHES:
        raise UnsupportedMechanism(
            f"Unsupported SASL mechanism {mechanism!r}: use one of {', '.join(SCRAM_MECHANISMS)}"
        )
    return _HASHES[mechanism]


def _digest_bytes(mechanism: str) -> int:
    return hashlib.new(_check_mechanism(mechanism)).digest_size


def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def _keys(hash_name: str, salted_password: bytes) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) from SaltedPassword, RFC 5802 section 3."""
    client_key = _hmac(hash_name, salted_password, b"Client Key")
    stored_key = hashlib.new(hash_name, client_key).digest()
    return stored_key, _hmac(hash_name, salted_password, b"Server Key")


def _password_bytes(password: str) -> bytes:
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise UnacceptableCredential("The password is not valid Unicode text") from None


def _check_iterations(mechanism: str, iterations: object) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise UnacceptableCredential("Iterations must be an integer")
    if iterations < ITERATIONS_MIN:
        raise UnacceptableCredential(
            f"Too few iterations: {iterations} is below the minimum of {ITERATIONS_MIN} "
            f"for {mechanism}"
        )
    if iterations > ITERATIONS_MAX:
        raise UnacceptableCredential(
            f"Too many iterations: {iterations} is above the maximum of {ITERATIONS_MAX} "
            f"for {mechanism}"
        )


def decoy_salt(mechanism: str, user: str) -> bytes:
    """The salt shown for a user that does not exist: stable per name, unpredictable to peers."""
    message = f"{mechanism}\x00{user}".encode("utf-8", "surrogatepass")
    return _hmac("sha256", _DECOY_KEY, message)


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """What the broker keeps of a SCRAM password: the salt and two keys, never the password.

    StoredKey checks a client's proof; ServerKey proves the broker to the client. Both are
    left out of ``repr`` so that logging a credential leaks nothing an attacker can replay.
    """

    mechanism: str
    salt: bytes
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)
    iterations: int

    def __post_init__(self) -> None:
        digest_bytes = _digest_bytes(self.mechanism)
        _check_iterations(self.mechanism, self.iterations)
        if not self.salt:
            raise UnacceptableCredential("The salt must not be empty")
        if len(self.salt) > SALT_BYTES_MAX:
            raise UnacceptableCredential(f"The salt is longer than {SALT_BYTES_MAX} bytes")
        if len(self.stored_key) != digest_bytes or len(self.server_key) != digest_bytes:
            raise UnacceptableCredential(f"{self.mechanism} keys must be {digest_bytes} bytes")

    @classmethod
    def from_password(
        cls,
        mechanism: str,
        password: str,
        iterations: int = ITERATIONS_DEFAULT,
        salt: bytes | None = None,
    ) -> ScramCredential:
        """Salt and hash ``password``; the salt is 32 random bytes unless given."""
        hash_name = _check_mechanism(mechanism)
        if not password:
            raise UnacceptableCredential("The password must not be empty")
        if salt is None:
            salt = secrets.token_bytes(SALT_BYTES_DEFAULT)
        # Before the PBKDF2 work: 10**9 iterations would hold the caller for minutes.
        _check_iterations(mechanism, iterations)
        salted = hashlib.pbkdf2_hmac(hash_name, _password_bytes(password), salt, iterations)
        return cls.from_salted_password(mechanism, salt, salted, iterations)

    @classmethod
    def from_salted_password(
        cls, mechanism: str, salt: bytes, salted_password: bytes, iterations: int
    ) -> ScramCredential:
        """The credential from SaltedPassword, which AlterUserScramCredentials carries."""
        hash_name = _check_mechanism(mechanism)
        digest_bytes = hashlib.new(hash_name).digest_size
        if len(salted_password) != digest_bytes:
            raise UnacceptableCredential(
                f"A {mechanism} salted password must be {digest_bytes} bytes, "
                f"not {len(salted_password)}"
            )
        stored_key, server_key = _keys(hash_name, salted_password)
        return cls(mechanism, salt, stored_key, server_key, iterations)

    def verify_password(self, password: str) -> bool:
        """Whether ``password`` made this credential (SASL/PLAIN against a SCRAM user)."""
        hash_name = _HASHES[self.mechanism]
        try:
            secret = password.encode("utf-8")
        except UnicodeEncodeError:
            return False
        salted = hashlib.pbkdf2_hmac(hash_name, secret, self.salt, self.iterations)
        stored_key, server_key = _keys(hash_name, salted)
        return hmac.compare_digest(stored_key + server_key, self.stored_key + self.server_key)


class _State(enum.Enum):
    FIRST = "first"
    FINAL = "final"
    DONE = "done"
    FAILED = "failed"


def _fail(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"Authentication failed: {reason}")


def _decode(message: bytes, what: str) -> str:
    if len(message) > MESSAGE_BYTES_MAX:
        raise _fail(f"the SCRAM {what} message is longer than {MESSAGE_BYTES_MAX} bytes")
    try:
        text = bytes(message).decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(f"the SCRAM {what} message is not UTF-8") from None
    if not text or "\x00" in text:
        raise _fail(f"malformed SCRAM {what} message")
    return text


def _saslname(value: str, what: str) -> str:
    if not _SASLNAME.fullmatch(value):
        raise _fail(f"malformed {what} in the SCRAM client-first message")
    return _SASLNAME_ESCAPE.sub(lambda m: "," if m.group(1) == "2C" else "=", value)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(f"{what} is not valid base64") from None


def _extensions(parts: list[str], what: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in parts:
        match = _EXTENSION.fullmatch(part)
        if match is None or match.group(1) in _RESERVED_ATTRIBUTES or match.group(1) in found:
            raise _fail(f"malformed extension in the SCRAM {what} message")
        found[match.group(1)] = match.group(2)
    return found


@dataclass(frozen=True, slots=True)
class _ClientFirst:
    gs2_header: str
    authzid: str | None
    bare: str
    user: str
    nonce: str
    extensions: dict[str, str]


def _parse_client_first(text: str) -> _ClientFirst:
    if text.startswith(("y,", "p=")):
        raise _fail("channel binding is not supported")
    if not text.startswith("n,"):
        raise _fail("malformed gs2 header in the SCRAM client-first message")
    end = text.find(",", 2)
    if end < 0:
        raise _fail("malformed gs2 header in the SCRAM client-first message")
    authz = text[2:end]
    authzid: str | None = None
    if authz:
        if not authz.startswith("a="):
            raise _fail("malformed gs2 header in the SCRAM client-first message")
        authzid = _saslname(authz[2:], "authorization id")
    bare = text[end + 1 :]
    parts = bare.split(",")
    if parts[0].startswith("m="):
        raise _fail("mandatory SCRAM extensions are not supported")
    if len(parts) < 2 or not parts[0].startswith("n=") or not parts[1].startswith("r="):
        raise _fail("malformed SCRAM client-first message")
    nonce = parts[1][2:]
    if not _PRINTABLE.fullmatch(nonce):
        raise _fail("malformed nonce in the SCRAM client-first message")
    return _ClientFirst(
        gs2_header=text[: end + 1],
        authzid=authzid,
        bare=bare,
        user=_saslname(parts[0][2:], "user name"),
        nonce=nonce,
        extensions=_extensions(parts[2:], "client-first"),
    )


class ScramServer:
    """One SCRAM exchange on the broker side: ``first``, then ``final``, then ``username``.

    Any failure raises AuthenticationFailed, whose text is safe to return to the client, and
    leaves the exchange failed: a new attempt needs a new ScramServer.
    """

    def __init__(self, mechanism: str, lookup: CredentialLookup, nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self._hash = _check_mechanism(mechanism)
        self._lookup = lookup
        if nonce is None:
            nonce = secrets.token_urlsafe(24)
        if not _PRINTABLE.fullmatch(nonce):
            raise ValueError("a SCRAM server nonce is printable ASCII without commas")
        self._server_nonce = nonce
        self._state = _State.FIRST
        self._first: _ClientFirst | None = None
        self._server_first = ""
        self._credential: ScramCredential | None = None
        self._known = False
        self._user: str | None = None

    @property
    def done(self) -> bool:
        """Whether the client proved it knows the password."""
        return self._state is _State.DONE

    @property
    def username(self) -> str:
        """The authenticated user; only once ``done``."""
        if self._state is not _State.DONE or self._user is None:
            raise RuntimeError("the SCRAM exchange has not succeeded")
        return self._user

    def first(self, client_first: bytes) -> bytes:
        """The server-first message ``r=nonce,s=salt,i=iterations`` for a client-first."""
        if self._state is not _State.FIRST:
            self._state = _State.FAILED
            raise _fail("SCRAM client-first message out of order")
        self._state = _State.FAILED  # until this step succeeds
        parsed = _parse_client_first(_decode(client_first, "client-first"))
        if parsed.extensions.get("tokenauth", "").lower() == "true":
            raise _fail("delegation tokens (tokenauth) are not supported")
        if parsed.authzid is not None and parsed.authzid != parsed.user:
            raise _fail("Client requested an authorization id that is different from username")
        credential = self._find(parsed.user)
        self._known = credential is not None
        if credential is None:
            credential = self._decoy(parsed.user)
        assert credential.mechanism == self.mechanism, "lookup returned another mechanism"
        self._first = parsed
        self._credential = credential
        salt = base64.b64encode(credential.salt).decode("ascii")
        self._server_first = (
            f"r={parsed.nonce}{self._server_nonce},s={salt},i={credential.iterations}"
        )
        self._state = _State.FINAL
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """The server-final message ``v=ServerSignature`` once the client's proof checks out."""
        if self._state is not _State.FINAL:
            self._state = _State.FAILED
            raise _fail("SCRAM client-final message out of order")
        self._state = _State.FAILED
        first, credential = self._first, self._credential
        assert first is not None and credential is not None
        self._credential = None  # keys are not kept past the exchange, whatever its outcome
        text = _decode(client_final, "client-final")
        parts = text.split(",")
        if len(parts) < 3 or not parts[0].startswith("c=") or not parts[1].startswith("r="):
            raise _fail("malformed SCRAM client-final message")
        if not parts[-1].startswith("p="):
            raise _fail("malformed SCRAM client-final message")
        _extensions(parts[2:-1], "client-final")
        if _b64decode(parts[0][2:], "the channel binding") != first.gs2_header.encode():
            raise _fail("invalid channel binding in the SCRAM client-final message")
        if parts[1][2:] != first.nonce + self._server_nonce:
            raise _fail("Invalid client nonce in the final client message.")
        proof = _b64decode(parts[-1][2:], "the client proof")
        without_proof = text[: -len(parts[-1]) - 1]
        auth_message = f"{first.bare},{self._server_first},{without_proof}".encode()
        # The same work for unknown users as for known ones, against decoy keys.
        signature = _hmac(self._hash, credential.stored_key, auth_message)
        matches = len(proof) == len(signature) and hmac.compare_digest(
            hashlib.new(self._hash, _xor(proof, signature)).digest(), credential.stored_key
        )
        if not (matches and self._known):
            raise AuthenticationFailed(
                "Authentication failed during authentication due to invalid credentials with "
                f"SASL mechanism {self.mechanism}"
            )
        server_signature = _hmac(self._hash, credential.server_key, auth_message)
        self._user = first.user
        self._state = _State.DONE
        return b"v=" + base64.b64encode(server_signature)

    def _find(self, user: str) -> ScramCredential | None:
        try:
            return self._lookup(user, self.mechanism)
        except SecurityError as exc:
            log.warning("SCRAM credential lookup failed mechanism=%s error=%s", self.mechanism, exc)
            raise _fail("the broker cannot read its credential store") from exc

    def _decoy(self, user: str) -> ScramCredential:
        key = hashlib.new(self._hash, _DECOY_KEY + b"decoy keys").digest()
        salt = decoy_salt(self.mechanism, user)
        return ScramCredential(self.mechanism, salt, key, key, ITERATIONS_DEFAULT)
