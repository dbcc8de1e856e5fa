"""The SASL core: SCRAM and PLAIN exchanges and the credential store, without sockets.

The SCRAM client here is written from RFC 5802 with hashlib and hmac, apart from the server
code, so the two cannot share a mistake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.security._credentials import (
    USER_NAME_CHARS_MAX,
    CredentialStore,
    credentials_path,
)
from headwater.security._errors import (
    AuthenticationFailed,
    SecurityError,
    UnacceptableCredential,
    UnsupportedMechanism,
)
from headwater.security._plain import PlainServer, parse_plain
from headwater.security._scram import (
    ITERATIONS_MAX,
    ITERATIONS_MIN,
    MESSAGE_BYTES_MAX,
    SCRAM_MECHANISMS,
    ScramCredential,
    ScramServer,
    mechanism_code,
    mechanism_name,
)

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
Lookup = Callable[[str, str], ScramCredential | None]


def invalid_credentials(mechanism: str) -> str:
    return (
        "Authentication failed during authentication due to invalid credentials with SASL "
        f"mechanism {mechanism}"
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def lookup_of(users: dict[str, str], iterations: int = 4096) -> Lookup:
    """A lookup with a credential per (user, mechanism) made from each user's password."""
    credentials = {
        (user, mechanism): ScramCredential.from_password(mechanism, password, iterations)
        for user, password in users.items()
        for mechanism in SCRAM_MECHANISMS
    }
    return lambda user, mechanism: credentials.get((user, mechanism))


ALICE = lookup_of({"alice": "pw"})


class Client:
    """A SCRAM client straight from RFC 5802 section 3."""

    def __init__(
        self, mechanism: str, user: str, password: str, nonce: str = "fyko+d2lbbFgONRv9qkxdawL"
    ) -> None:
        self.hash = HASHES[mechanism]
        self.password = password
        self.gs2 = "n,,"
        self.bare = f"n={escape(user)},r={nonce}"
        self.server_first = ""
        self.without_proof = ""
        self.salted = b""

    def first(self) -> bytes:
        return (self.gs2 + self.bare).encode()

    def final(self, server_first: bytes, *, nonce_suffix: str = "") -> bytes:
        self.server_first = server_first.decode()
        attrs = dict(part.split("=", 1) for part in self.server_first.split(","))
        salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
        self.salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(), salt, iterations)
        client_key = hmac.new(self.salted, b"Client Key", self.hash).digest()
        stored_key = hashlib.new(self.hash, client_key).digest()
        self.without_proof = f"c={b64(self.gs2.encode())},r={attrs['r']}{nonce_suffix}"
        signature = hmac.new(stored_key, self.auth_message(), self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{self.without_proof},p={b64(proof)}".encode()

    def auth_message(self) -> bytes:
        return f"{self.bare},{self.server_first},{self.without_proof}".encode()

    def expected_server_final(self) -> bytes:
        server_key = hmac.new(self.salted, b"Server Key", self.hash).digest()
        return b"v=" + b64(hmac.new(server_key, self.auth_message(), self.hash).digest()).encode()


# -- SCRAM: exchanges that succeed ----------------------------------------------------------


def test_rfc7677_scram_sha_256_test_vector() -> None:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    credential = ScramCredential.from_password("SCRAM-SHA-256", "pencil", 4096, salt)
    server = ScramServer(
        "SCRAM-SHA-256",
        lambda user, mechanism: credential if user == "user" else None,
        nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    )
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    server_first = server.first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert server_first == f"r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
    assert not server.done
    client_final = f"c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    assert server.final(client_final.encode()) == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.done
    assert server.username == "user"


def test_the_test_client_reproduces_the_rfc7677_proof() -> None:
    client = Client("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    client.first()
    server_first = (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert client.final(server_first).endswith(b",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
@pytest.mark.parametrize("user", ["alice", "a,b=c", "zoë", "x" * USER_NAME_CHARS_MAX])
def test_full_exchange(mechanism: str, user: str) -> None:
    server = ScramServer(mechanism, lookup_of({user: "s3cret"}, iterations=8192))
    client = Client(mechanism, user, "s3cret")
    server_first = server.first(client.first())
    assert server_first.startswith(b"r=fyko+d2lbbFgONRv9qkxdawL")
    assert server_first.endswith(b",i=8192")
    assert server.final(client.final(server_first)) == client.expected_server_final()
    assert server.done
    assert server.username == user


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_kafka_python_scram_client(mechanism: str) -> None:
    scram = pytest.importorskip("kafka.net.sasl.scram")
    client = scram.ScramClient("alice", "pw", mechanism)
    server = ScramServer(mechanism, ALICE)
    client.process_server_first_message(server.first(client.first_message()))
    client.process_server_final_message(server.final(client.final_message()))
    assert server.username == "alice"


def test_server_nonces_differ_between_exchanges() -> None:
    lookup = lookup_of({"alice": "pw"})
    firsts = {ScramServer("SCRAM-SHA-256", lookup).first(b"n,,n=alice,r=abc") for _ in range(5)}
    assert len(firsts) == 5


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_authzid_equal_to_the_user_is_accepted(mechanism: str) -> None:
    server = ScramServer(mechanism, lookup_of({"alice": "pw"}))
    client = Client(mechanism, "alice", "pw")
    client.gs2 = "n,a=alice,"
    server_first = server.first(client.first())
    assert server.final(client.final(server_first)) == client.expected_server_final()
    assert server.username == "alice"


def test_authzid_different_from_the_user_is_refused() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw", "bob": "pw"}))
    with pytest.raises(AuthenticationFailed, match="authorization id"):
        server.first(b"n,a=bob,n=alice,r=abc")


def test_unknown_optional_extensions_are_ignored() -> None:
    server = ScramServer("SCRAM-SHA-512", lookup_of({"alice": "pw"}))
    client = Client("SCRAM-SHA-512", "alice", "pw")
    client.bare += ",tokenauth=false,foo=bar"
    server_first = server.first(client.first())
    assert server.final(client.final(server_first)) == client.expected_server_final()


# -- SCRAM: exchanges that fail -------------------------------------------------------------


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_wrong_password(mechanism: str) -> None:
    server = ScramServer(mechanism, lookup_of({"alice": "right"}))
    client = Client(mechanism, "alice", "wrong")
    server_first = server.first(client.first())
    with pytest.raises(AuthenticationFailed) as failed:
        server.final(client.final(server_first))
    assert str(failed.value) == invalid_credentials(mechanism)
    assert not server.done
    with pytest.raises(RuntimeError):
        _ = server.username


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_unknown_user_fails_late_with_the_wrong_password_text(mechanism: str) -> None:
    lookup = lookup_of({"alice": "pw"})
    server = ScramServer(mechanism, lookup)
    client = Client(mechanism, "mallory", "pw")
    server_first = server.first(client.first())
    attrs = dict(part.split("=", 1) for part in server_first.decode().split(","))
    assert set(attrs) == {"r", "s", "i"}
    assert attrs["i"] == "4096"
    assert len(base64.b64decode(attrs["s"])) == 32  # as long as a real default salt
    with pytest.raises(AuthenticationFailed) as failed:
        server.final(client.final(server_first))
    assert str(failed.value) == invalid_credentials(mechanism)
    # The decoy salt is stable per name, so asking twice does not tell it apart from a user.
    again = ScramServer(mechanism, lookup, nonce="n").first(client.first()).decode()
    assert again.split(",")[1:] == server_first.decode().split(",")[1:]
    other = ScramServer(mechanism, lookup).first(b"n,,n=trudy,r=abc").decode()
    assert other.split(",")[1] != server_first.decode().split(",")[1]


def test_tampered_nonce() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    client = Client("SCRAM-SHA-256", "alice", "pw")
    server_first = server.first(client.first())
    with pytest.raises(AuthenticationFailed, match="nonce"):
        server.final(client.final(server_first, nonce_suffix="x"))


def test_tampered_proof() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    client = Client("SCRAM-SHA-256", "alice", "pw")
    final = client.final(server.first(client.first()))
    head, proof = final.rsplit(b",p=", 1)
    flipped = bytearray(base64.b64decode(proof))
    flipped[0] ^= 1
    with pytest.raises(AuthenticationFailed, match="invalid credentials"):
        server.final(head + b",p=" + base64.b64encode(bytes(flipped)))


@pytest.mark.parametrize(
    "client_first",
    [b"y,,n=alice,r=abc", b"p=tls-unique,,n=alice,r=abc", b"p=tls-server-end-point,,n=alice,r=abc"],
)
def test_channel_binding_is_refused(client_first: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    with pytest.raises(AuthenticationFailed, match="channel binding"):
        server.first(client_first)


def test_channel_binding_data_must_match_the_gs2_header() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    client = Client("SCRAM-SHA-256", "alice", "pw")
    server_first = server.first(client.first())
    client.gs2 = "y,,"  # the client-final now claims another header than client-first sent
    with pytest.raises(AuthenticationFailed, match="channel binding"):
        server.final(client.final(server_first))


@pytest.mark.parametrize("value", ["true", "TRUE"])
def test_tokenauth_is_refused(value: str) -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    with pytest.raises(AuthenticationFailed, match="tokenauth"):
        server.first(f"n,,n=alice,r=abc,tokenauth={value}".encode())


@pytest.mark.parametrize(
    "client_first",
    [
        b"",
        b"n",
        b"n,",
        b"n,,",
        b"n,,n=alice",
        b"n,,n=alice,",
        b"n,,n=alice,r=",
        b"n,,n=,r=abc",
        b"n,,r=abc,n=alice",
        b"n,,n=al=ice,r=abc",
        b"n,,n=al=2Xice,r=abc",
        b"n,,n=alice,r=a b",
        b"n,,n=alice,r=abc,=x",
        b"n,,n=alice,r=abc,ext",
        b"n,,n=alice,r=abc,r=def",
        b"n,,n=alice,r=abc,x=1,x=2",
        b"n,,m=ext,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"n,a=,n=alice,r=abc",
        b"x,,n=alice,r=abc",
        b"n,,n=al\x00ice,r=abc",
        b"n,,n=\xff\xfe,r=abc",
        b"\x00\x01\x02",
    ],
)
def test_malformed_client_first(client_first: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    with pytest.raises(AuthenticationFailed):
        server.first(client_first)
    with pytest.raises(AuthenticationFailed, match="out of order"):
        server.first(b"n,,n=alice,r=abc")  # a failed exchange stays failed


def _ready(nonce: str = "srv") -> ScramServer:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}), nonce=nonce)
    server.first(b"n,,n=alice,r=abc")
    return server


@pytest.mark.parametrize(
    "client_final",
    [
        b"",
        b"c=biws",
        b"c=biws,r=abcsrv",
        b"c=biws,r=abcsrv,p=",
        b"c=biws,r=abcsrv,p=!!!!",
        b"c=biws,r=abcsrv,p=AAAA",
        b"c=biws,p=AAAA,r=abcsrv",
        b"r=abcsrv,c=biws,p=AAAA",
        b"c=bi,r=abcsrv,p=AAAA",
        b"c=biws,r=abcsrv,e=1,p=AAAA",
        b"c=biws,r=abcsrv,bad,p=AAAA",
        b"c=biws,r=abc,p=" + base64.b64encode(bytes(32)),
        b"c=biws,r=abcsrv,p=" + base64.b64encode(bytes(32)),
        b"c=biws,r=abcsrv,p=" + base64.b64encode(bytes(31)),
        b"c=biws,r=abcsrv,p=" + base64.b64encode(bytes(64)),
        b"\xc3\x28",
    ],
)
def test_malformed_or_wrong_client_final(client_final: bytes) -> None:
    server = _ready()
    with pytest.raises(AuthenticationFailed):
        server.final(client_final)
    assert not server.done


def test_final_before_first() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    with pytest.raises(AuthenticationFailed, match="out of order"):
        server.final(b"c=biws,r=abc,p=AAAA")
    with pytest.raises(AuthenticationFailed, match="out of order"):
        server.first(b"n,,n=alice,r=abc")


def test_first_twice_and_final_after_success() -> None:
    server = _ready()
    with pytest.raises(AuthenticationFailed, match="out of order"):
        server.first(b"n,,n=alice,r=abc")

    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    client = Client("SCRAM-SHA-256", "alice", "pw")
    client_final = client.final(server.first(client.first()))
    server.final(client_final)
    with pytest.raises(AuthenticationFailed, match="out of order"):
        server.final(client_final)


def test_oversize_messages() -> None:
    server = ScramServer("SCRAM-SHA-256", lookup_of({"alice": "pw"}))
    with pytest.raises(AuthenticationFailed, match="longer than"):
        server.first(b"n,,n=alice,r=" + b"a" * MESSAGE_BYTES_MAX)
    server = _ready()
    with pytest.raises(AuthenticationFailed, match="longer than"):
        server.final(b"c=biws,r=abcsrv,p=" + b"A" * MESSAGE_BYTES_MAX)


def test_a_failing_lookup_fails_the_exchange_without_details() -> None:
    def broken(user: str, mechanism: str) -> ScramCredential | None:
        raise SecurityError("The SCRAM credential file /secret/path is corrupt")

    server = ScramServer("SCRAM-SHA-256", broken)
    with pytest.raises(AuthenticationFailed) as failed:
        server.first(b"n,,n=alice,r=abc")
    assert "/secret/path" not in str(failed.value)


def test_failure_messages_hold_no_secrets() -> None:
    credential = ScramCredential.from_password("SCRAM-SHA-256", "hunter2hunter2")
    server = ScramServer("SCRAM-SHA-256", lambda user, mechanism: credential)
    client = Client("SCRAM-SHA-256", "alice", "hunter2hunter2-not")
    with pytest.raises(AuthenticationFailed) as failed:
        server.final(client.final(server.first(client.first())))
    text = str(failed.value)
    assert "hunter2" not in text
    for secret in (credential.stored_key, credential.server_key):
        assert b64(secret) not in text
        assert b64(secret) not in repr(credential)
        assert secret.hex() not in repr(credential)


def test_unknown_mechanism_and_bad_server_nonce() -> None:
    with pytest.raises(UnsupportedMechanism):
        ScramServer("SCRAM-SHA-1", lookup_of({}))
    with pytest.raises(ValueError, match="nonce"):
        ScramServer("SCRAM-SHA-256", lookup_of({}), nonce="a,b")


# -- SCRAM credentials ----------------------------------------------------------------------


def test_mechanism_codes() -> None:
    assert mechanism_code("SCRAM-SHA-256") == 1
    assert mechanism_code("SCRAM-SHA-512") == 2
    assert mechanism_name(1) == "SCRAM-SHA-256"
    assert mechanism_name(2) == "SCRAM-SHA-512"
    assert mechanism_name(0) is None
    assert mechanism_name(3) is None
    with pytest.raises(UnsupportedMechanism):
        mechanism_code("PLAIN")


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_from_salted_password_matches_from_password(mechanism: str) -> None:
    salt = os.urandom(32)
    from_password = ScramCredential.from_password(mechanism, "pw", 8192, salt)
    salted = hashlib.pbkdf2_hmac(HASHES[mechanism], b"pw", salt, 8192)
    assert ScramCredential.from_salted_password(mechanism, salt, salted, 8192) == from_password
    assert len(from_password.stored_key) == hashlib.new(HASHES[mechanism]).digest_size


def test_default_salt_is_random_and_32_bytes() -> None:
    first = ScramCredential.from_password("SCRAM-SHA-256", "pw")
    second = ScramCredential.from_password("SCRAM-SHA-256", "pw")
    assert len(first.salt) == 32
    assert first.salt != second.salt
    assert first.iterations == 4096


@pytest.mark.parametrize("mechanism", SCRAM_MECHANISMS)
def test_verify_password(mechanism: str) -> None:
    credential = ScramCredential.from_password(mechanism, "pässword")
    assert credential.verify_password("pässword")
    assert not credential.verify_password("password")
    assert not credential.verify_password("")
    assert not credential.verify_password("\udcff")


@pytest.mark.parametrize("iterations", [ITERATIONS_MIN - 1, ITERATIONS_MAX + 1, 0, -1, 10**9])
def test_iterations_out_of_bounds(iterations: int) -> None:
    with pytest.raises(UnacceptableCredential, match="iterations"):
        ScramCredential.from_password("SCRAM-SHA-256", "pw", iterations)
    with pytest.raises(UnacceptableCredential, match="iterations"):
        ScramCredential.from_salted_password("SCRAM-SHA-256", b"salt", bytes(32), iterations)


def test_iterations_at_the_bounds() -> None:
    for iterations in (ITERATIONS_MIN, ITERATIONS_MAX):
        assert ScramCredential.from_password("SCRAM-SHA-512", "pw", iterations).iterations == (
            iterations
        )


def test_unacceptable_credentials() -> None:
    with pytest.raises(UnacceptableCredential, match="salt"):
        ScramCredential.from_salted_password("SCRAM-SHA-256", b"", bytes(32), 4096)
    with pytest.raises(UnacceptableCredential, match="32 bytes"):
        ScramCredential.from_salted_password("SCRAM-SHA-256", b"salt", bytes(64), 4096)
    with pytest.raises(UnacceptableCredential, match="password"):
        ScramCredential.from_password("SCRAM-SHA-256", "")
    with pytest.raises(UnsupportedMechanism):
        ScramCredential.from_password("SCRAM-SHA-1", "pw")
    with pytest.raises(UnacceptableCredential, match="keys"):
        ScramCredential("SCRAM-SHA-512", b"salt", bytes(32), bytes(32), 4096)


# -- PLAIN ----------------------------------------------------------------------------------


def plain_lookup() -> Lookup:
    credentials = {
        ("alice", "SCRAM-SHA-512"): ScramCredential.from_password("SCRAM-SHA-512", "pw512"),
        ("alice", "SCRAM-SHA-256"): ScramCredential.from_password("SCRAM-SHA-256", "pw256"),
        ("bob", "SCRAM-SHA-256"): ScramCredential.from_password("SCRAM-SHA-256", "bobpw"),
    }
    return lambda user, mechanism: credentials.get((user, mechanism))


def test_plain_good() -> None:
    server = PlainServer(plain_lookup())
    assert server.authenticate(b"\x00alice\x00pw512") == "alice"
    assert server.authenticate(b"alice\x00alice\x00pw512") == "alice"
    assert server.authenticate(b"\x00bob\x00bobpw") == "bob"  # only a SCRAM-SHA-256 credential


def test_plain_prefers_scram_sha_512() -> None:
    with pytest.raises(AuthenticationFailed):
        PlainServer(plain_lookup()).authenticate(b"\x00alice\x00pw256")


@pytest.mark.parametrize("token", [b"\x00alice\x00wrong", b"\x00nobody\x00pw512"])
def test_plain_wrong_password_and_unknown_user_read_the_same(token: bytes) -> None:
    with pytest.raises(AuthenticationFailed) as failed:
        PlainServer(plain_lookup()).authenticate(token)
    assert str(failed.value) == "Authentication failed: Invalid username or password"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (b"alicepw512", "expected 3 tokens, got 1"),
        (b"", "expected 3 tokens, got 1"),
        (b"alice\x00pw512", "expected 3 tokens, got 2"),
        (b"\x00alice\x00pw512\x00", "expected 3 tokens, got 4"),
        (b"\x00alice\x00", "password not specified"),
        (b"\x00\x00pw512", "username not specified"),
        (b"\x00al\xffice\x00pw512", "not UTF-8"),
        (b"bob\x00alice\x00pw512", "authorization id that is different"),
        (b"\x00alice\x00" + b"p" * 5000, "longer than"),
    ],
)
def test_plain_malformed(token: bytes, reason: str) -> None:
    with pytest.raises(AuthenticationFailed, match=reason):
        parse_plain(token)
    with pytest.raises(AuthenticationFailed, match=reason):
        PlainServer(plain_lookup()).authenticate(token)


def test_parse_plain() -> None:
    assert parse_plain(b"\x00zo\xc3\xab\x00p w") == ("", "zoë", "p w")
    assert parse_plain(b"u\x00u\x00p") == ("u", "u", "p")


# -- CredentialStore ------------------------------------------------------------------------


def test_store_upsert_get_delete_describe(tmp_path: Path) -> None:
    path = credentials_path(tmp_path / "data")
    assert path == tmp_path / "data" / "__meta" / "scram-credentials.json"
    store = CredentialStore(path)
    assert store.users() == []
    assert store.get("alice", "SCRAM-SHA-256") is None
    cred256 = ScramCredential.from_password("SCRAM-SHA-256", "pw", 4096)
    cred512 = ScramCredential.from_password("SCRAM-SHA-512", "pw", 8192)
    store.upsert("alice", cred256)
    store.upsert("alice", cred512)
    store.upsert("bob", cred256)
    assert store.get("alice", "SCRAM-SHA-256") == cred256
    assert store.get("alice", "SCRAM-SHA-512") == cred512
    assert store.get("alice", "PLAIN") is None
    assert store.describe() == {
        "alice": [("SCRAM-SHA-256", 4096), ("SCRAM-SHA-512", 8192)],
        "bob": [("SCRAM-SHA-256", 4096)],
    }
    assert store.users() == ["alice", "bob"]

    replaced = ScramCredential.from_password("SCRAM-SHA-256", "new", 16384)
    store.upsert("alice", replaced)
    assert store.get("alice", "SCRAM-SHA-256") == replaced

    assert store.delete("bob", "SCRAM-SHA-256")
    assert not store.delete("bob", "SCRAM-SHA-256")
    assert not store.delete("carol", "SCRAM-SHA-512")
    assert store.users() == ["alice"]

    reopened = CredentialStore(path)
    assert reopened.describe() == {"alice": [("SCRAM-SHA-256", 16384), ("SCRAM-SHA-512", 8192)]}
    assert reopened.get("alice", "SCRAM-SHA-512") == cred512


def test_store_file_is_private_and_holds_no_password(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    store = CredentialStore(path)
    store.upsert("alice", ScramCredential.from_password("SCRAM-SHA-512", "correct-horse-battery"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "correct-horse-battery" not in text
    assert b64(b"correct-horse-battery") not in text
    entry = json.loads(text)["alice"]["SCRAM-SHA-512"]
    assert set(entry) == {"salt", "stored_key", "server_key", "iterations"}


def test_store_reloads_after_an_external_rewrite(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    live = CredentialStore(path)  # the broker's store, opened before any user exists
    assert live.get("alice", "SCRAM-SHA-256") is None
    cli = CredentialStore(path)
    credential = ScramCredential.from_password("SCRAM-SHA-256", "pw")
    cli.upsert("alice", credential)
    assert live.get("alice", "SCRAM-SHA-256") == credential
    cli.delete("alice", "SCRAM-SHA-256")
    assert live.get("alice", "SCRAM-SHA-256") is None
    cli.upsert("bob", credential)
    path.unlink()
    assert live.users() == []


def test_store_lookup_drives_scram_and_plain(tmp_path: Path) -> None:
    store = CredentialStore(credentials_path(tmp_path))
    for mechanism in SCRAM_MECHANISMS:
        store.upsert("alice", ScramCredential.from_password(mechanism, "pw"))
    server = ScramServer("SCRAM-SHA-512", store.get)
    client = Client("SCRAM-SHA-512", "alice", "pw")
    assert server.final(client.final(server.first(client.first()))) == (
        client.expected_server_final()
    )
    assert PlainServer(store.get).authenticate(b"\x00alice\x00pw") == "alice"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"alice": []}',
        b'{"alice": {"SCRAM-SHA-1": {}}}',
        b'{"alice": {"SCRAM-SHA-256": {"salt": "AAAA"}}}',
        b'{"": {}}',
        b'{"alice": {"SCRAM-SHA-256": {"salt": "!!", "stored_key": "AAAA", '
        b'"server_key": "AAAA", "iterations": 4096}}}',
        b'{"alice": {"SCRAM-SHA-256": {"salt": "AAAA", "stored_key": "AAAA", '
        b'"server_key": "AAAA", "iterations": 4096}}}',
    ],
)
def test_store_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = credentials_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(SecurityError, match="corrupt") as failed:
        CredentialStore(path)
    assert str(path) in str(failed.value)
    assert "headwater users add" in str(failed.value)


def test_store_corrupted_under_a_live_store(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    store = CredentialStore(path)
    store.upsert("alice", ScramCredential.from_password("SCRAM-SHA-256", "pw"))
    path.write_bytes(b"garbage, and longer than before")
    with pytest.raises(SecurityError, match="corrupt"):
        store.get("alice", "SCRAM-SHA-256")
    server = ScramServer("SCRAM-SHA-256", store.get)
    with pytest.raises(AuthenticationFailed):
        server.first(b"n,,n=alice,r=abc")


@pytest.mark.parametrize("user", ["", "x" * (USER_NAME_CHARS_MAX + 1), "a\x00b", "\udcff"])
def test_store_refuses_bad_user_names(tmp_path: Path, user: str) -> None:
    store = CredentialStore(credentials_path(tmp_path))
    with pytest.raises(UnacceptableCredential):
        store.upsert(user, ScramCredential.from_password("SCRAM-SHA-256", "pw"))
    assert store.users() == []


# -- Hostile input --------------------------------------------------------------------------


@given(
    st.binary(max_size=MESSAGE_BYTES_MAX + 16)
    | st.text(max_size=200).map(lambda t: ("n,,n=" + t).encode())
    | st.text(max_size=200).map(lambda t: ("n,,n=alice,r=abc" + t).encode())
)
def test_random_client_first_only_fails_cleanly(data: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", ALICE)
    try:
        server.first(data)
    except AuthenticationFailed:
        assert not server.done


@given(st.binary(max_size=512) | st.text(max_size=200).map(lambda t: ("c=biws,r=" + t).encode()))
def test_random_client_final_only_fails_cleanly(data: bytes) -> None:
    server = ScramServer("SCRAM-SHA-256", ALICE, nonce="srv")
    server.first(b"n,,n=alice,r=abc")
    with pytest.raises(AuthenticationFailed):
        server.final(data)


@given(
    st.binary(max_size=300)
    | st.lists(st.text(max_size=20), min_size=1, max_size=5).map(lambda p: "\x00".join(p).encode())
)
def test_random_plain_tokens_only_fail_cleanly(data: bytes) -> None:
    try:
        authzid, authcid, password = parse_plain(data)
    except AuthenticationFailed:
        return
    assert authcid and password and authzid in ("", authcid)
