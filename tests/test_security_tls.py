"""Broker-side TLS over real loopback sockets, client principals, and Kafka's mapping rules."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from headwater.security._certs import (
    CertBundle,
    CertifiedKey,
    create_ca,
    create_client_certificate,
    create_server_certificate,
    write_bundle,
)
from headwater.security._tls import (
    NoMatchingRuleError,
    PrincipalMapper,
    ServerTls,
    TlsSettings,
    distinguished_name,
    peer_principal,
)

# -- helpers ----------------------------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pki:
    bundle: CertBundle
    root: Path

    def settings(self, client_auth: str = "none") -> TlsSettings:
        return TlsSettings(
            certfile=self.bundle.server_certfile,
            keyfile=self.bundle.server_keyfile,
            cafile=self.bundle.ca_certfile,
            client_auth=client_auth,
        )

    def client_context(self, issued: CertifiedKey | None = None, name: str = "c") -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.bundle.ca_certfile))
        if issued is not None:
            certfile, keyfile = self.root / f"{name}.pem", self.root / f"{name}.key"
            certfile.write_bytes(issued.certificate_pem())
            keyfile.write_bytes(issued.key_pem())
            context.load_cert_chain(certfile, keyfile)
        return context

    def alice_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.bundle.ca_certfile))
        alice = self.bundle.clients[0]
        context.load_cert_chain(alice.certfile, alice.keyfile)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    bundle = write_bundle(tmp_path / "certs", hosts=["localhost", "127.0.0.1"], clients=["alice"])
    return Pki(bundle, tmp_path)


def ca_of(bundle: CertBundle) -> CertifiedKey:
    key = serialization.load_pem_private_key(bundle.ca_keyfile.read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate(bundle.ca_certfile.read_bytes())
    return CertifiedKey(key, certificate)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serve(
    context: ssl.SSLContext, mapper: Callable[[str], str] | None = None
) -> AsyncIterator[int]:
    """A TLS echo of the client's principal ('-' for none), as the broker would see it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(4)
            principal = peer_principal(writer.get_extra_info("ssl_object"), mapper)
            writer.write(f"{principal or '-'}\n".encode())
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Reply:
    principal: str | None
    server_cn: str | None
    error: BaseException | None


async def call(port: int, context: ssl.SSLContext, server_hostname: str = "localhost") -> Reply:
    """Handshake, send a request, read the answer; in TLS 1.3 a refused client certificate
    only shows on that first read, so a handshake alone proves nothing."""
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=server_hostname
            )
            try:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                server_cn = (
                    x509.load_der_x509_certificate(der)
                    .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
                    .value
                )
                writer.write(b"ping")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        return Reply(None, None, exc)
    if not line.endswith(b"\n"):
        return Reply(None, str(server_cn), ConnectionError("closed without an answer"))
    return Reply(line.decode().strip(), str(server_cn), None)


def expired_alice(pki: Pki) -> CertifiedKey:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    return create_client_certificate(ca_of(pki.bundle), "alice", days=1, not_valid_before=past)


# -- handshakes -------------------------------------------------------------------------------


async def test_handshake_with_development_ca(pki: Pki) -> None:
    tls = ServerTls(pki.settings())
    async with serve(tls.context()) as port:
        for hostname in ("localhost", "127.0.0.1"):  # a DNS and an IP subjectAltName
            reply = await call(port, pki.client_context(), server_hostname=hostname)
            assert reply.error is None and reply.principal == "-"
            assert reply.server_cn == "localhost"
        wrong_name = await call(port, pki.client_context(), server_hostname="example.com")
        assert isinstance(wrong_name.error, ssl.SSLCertVerificationError)
    assert tls.context().minimum_version == ssl.TLSVersion.TLSv1_2
    assert tls.context().verify_mode == ssl.CERT_NONE


async def test_client_auth_required_refuses_missing_foreign_and_expired(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    tls = ServerTls(pki.settings("required"))
    assert tls.context().verify_mode == ssl.CERT_REQUIRED
    foreign = create_client_certificate(create_ca("Someone else's CA"), "alice")
    refusals = {
        "peer did not return a certificate": pki.client_context(),
        "unable to get local issuer certificate": pki.client_context(foreign, "foreign"),
        "certificate has expired": pki.client_context(expired_alice(pki), "expired"),
    }
    # asyncio closes a failed handshake without sending the alert, so the client sees only
    # EOF; the reason is in asyncio's debug log.
    asyncio.get_running_loop().set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        async with serve(tls.context()) as port:
            good = await call(port, pki.alice_context())
            assert good.error is None and good.principal == "CN=alice"
            for reason, context in refusals.items():
                caplog.clear()
                refused = await call(port, context)
                assert refused.principal is None and refused.error is not None
                logged = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
                assert any(reason in message for message in logged), (reason, logged)


async def test_client_auth_requested_accepts_with_and_without(pki: Pki) -> None:
    tls = ServerTls(pki.settings("requested"))
    assert tls.context().verify_mode == ssl.CERT_OPTIONAL
    async with serve(tls.context()) as port:
        assert (await call(port, pki.alice_context())).principal == "CN=alice"
        assert (await call(port, pki.client_context())).principal == "-"
        # Optional still means verified: a certificate from another CA is refused.
        foreign = create_client_certificate(create_ca("Other"), "mallory")
        assert (await call(port, pki.client_context(foreign, "foreign"))).principal is None


async def test_peer_principal_in_rfc2253_order_and_mapped(pki: Pki) -> None:
    bob = create_client_certificate(
        ca_of(pki.bundle), "bob", organizational_unit="eng", organization="Example"
    )
    mapper = PrincipalMapper("RULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/U,DEFAULT")
    tls = ServerTls(pki.settings("required"))
    async with serve(tls.context()) as port:
        assert (
            await call(port, pki.client_context(bob, "bob"))
        ).principal == "CN=bob,OU=eng,O=Example"
    async with serve(tls.context(), mapper) as port:
        assert (await call(port, pki.client_context(bob, "bob"))).principal == "BOB@ENG"
        assert (await call(port, pki.alice_context())).principal == "CN=alice"
    assert peer_principal(None, mapper) is None


def test_distinguished_name_as_java_prints_it() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#eng+ops "),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
            x509.NameAttribute(NameOID.COMMON_NAME, 'a=b;"c"<d>\\'),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "alice@example.com"),
        ]
    )
    assert distinguished_name(name) == (
        # Java prints attributes without an RFC 2253 keyword as OID=#<DER hex>.
        "1.2.840.113549.1.9.1=#1611616c696365406578616d706c652e636f6d,"
        'CN=a\\=b\\;\\"c\\"\\<d\\>\\\\,DC=example,OU=\\#eng\\+ops\\ ,'
        "O=Example\\, Inc.,L=San Francisco,ST=CA,C=US"
    )
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
                    x509.NameAttribute(NameOID.USER_ID, "a1"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
        ]
    )
    assert distinguished_name(multi) in ("C=US,CN=alice+UID=a1", "C=US,UID=a1+CN=alice")


# -- settings and loading ---------------------------------------------------------------------


def test_settings_say_which_setting_is_wrong(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ssl_client_auth='maybe'.*none, requested, required"):
        TlsSettings(
            pki.bundle.server_certfile, pki.bundle.server_keyfile, client_auth="maybe"
        ).validate()
    for mode in ("required", "requested"):
        with pytest.raises(ValueError, match=f"ssl_client_auth={mode} needs ssl_cafile"):
            TlsSettings(
                pki.bundle.server_certfile, pki.bundle.server_keyfile, client_auth=mode
            ).validate()
    with pytest.raises(ValueError, match=r"ssl_keyfile=.*missing.key: no such file"):
        TlsSettings(pki.bundle.server_certfile, tmp_path / "missing.key").validate()
    with pytest.raises(ValueError, match=r"ssl_cafile=.*no such file"):
        ServerTls(
            TlsSettings(pki.bundle.server_certfile, pki.bundle.server_keyfile, tmp_path / "x")
        )
    assert "secret" not in repr(
        TlsSettings(pki.bundle.server_certfile, pki.bundle.server_keyfile, key_password="secret")
    )


def test_first_load_failure_is_a_clear_error(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"cannot load TLS certificate ssl_certfile=.*garbage.pem"):
        ServerTls(TlsSettings(garbage, pki.bundle.server_keyfile))
    # A key that belongs to another certificate.
    with pytest.raises(ValueError, match="key belongs to the certificate"):
        ServerTls(TlsSettings(pki.bundle.server_certfile, pki.bundle.clients[0].keyfile))
    with pytest.raises(ValueError, match="ssl_cafile="):
        ServerTls(TlsSettings(pki.bundle.server_certfile, pki.bundle.server_keyfile, garbage))


def test_encrypted_key_needs_password_and_never_prompts(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.bundle.server_keyfile.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    with pytest.raises(ValueError, match="set ssl_key_password"):
        ServerTls(TlsSettings(pki.bundle.server_certfile, encrypted))
    with pytest.raises(ValueError, match="cannot load"):
        ServerTls(TlsSettings(pki.bundle.server_certfile, encrypted, key_password="wrong"))
    ServerTls(TlsSettings(pki.bundle.server_certfile, encrypted, key_password="s3cret"))
    # The keystore file holds key and certificate, so it can serve as both.
    keystore = pki.bundle.server_keystore
    ServerTls(TlsSettings(keystore, keystore))


# -- reloading --------------------------------------------------------------------------------


def loop_factories() -> list[object]:
    factories: list[object] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:
        return factories
    return [*factories, pytest.param(uvloop.new_event_loop, id="uvloop")]


def replace_server_certificate(pki: Pki, common_name: str) -> None:
    issued = create_server_certificate(
        ca_of(pki.bundle), ["localhost", "127.0.0.1"], common_name=common_name
    )
    for path, data in (
        (pki.bundle.server_certfile, issued.certificate_pem()),
        (pki.bundle.server_keyfile, issued.key_pem()),
    ):
        before = path.stat().st_mtime_ns
        path.write_bytes(data)
        # Coarse file-system clocks could leave the mtime unchanged within one tick.
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.mark.parametrize("new_loop", loop_factories())
def test_renewed_certificate_serves_new_connections(
    pki: Pki, new_loop: Callable[[], asyncio.AbstractEventLoop], caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    tls = ServerTls(pki.settings("requested"), clock=clock)
    context = tls.context()

    async def scenario() -> None:
        # The context goes to start_server once, as the broker does; reloads change it in place.
        async with serve(context) as port:
            assert (await call(port, pki.client_context())).server_cn == "localhost"

            replace_server_certificate(pki, "renewed.localhost")
            assert tls.refresh() is False  # checked less than a second ago
            clock.now += 1.0
            assert tls.refresh() is True
            assert tls.context() is context
            renewed = await call(port, pki.alice_context())
            assert renewed.server_cn == "renewed.localhost" and renewed.principal == "CN=alice"

            pki.bundle.server_certfile.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage")
            os.utime(pki.bundle.server_certfile, ns=(1, 1))
            with caplog.at_level(logging.WARNING, logger="headwater.security._tls"):
                for _ in range(3):
                    clock.now += 1.0
                    assert tls.refresh() is False
            warnings = [r for r in caplog.records if "tls reload failed" in r.getMessage()]
            assert len(warnings) == 1  # once per broken version, not once per check
            kept = await call(port, pki.client_context())
            assert kept.error is None and kept.server_cn == "renewed.localhost"

            # A key from the next renewal written before its certificate: also kept out.
            replace_server_certificate(pki, "third.localhost")
            pki.bundle.server_keyfile.write_bytes(pki.bundle.clients[0].keyfile.read_bytes())
            os.utime(pki.bundle.server_keyfile, ns=(2, 2))
            clock.now += 1.0
            assert tls.refresh() is False
            assert (await call(port, pki.client_context())).server_cn == "renewed.localhost"

            replace_server_certificate(pki, "third.localhost")
            clock.now += 1.0
            assert tls.context() is context
            assert (await call(port, pki.client_context())).server_cn == "third.localhost"

    loop = new_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_reload_of_a_removed_file_keeps_serving(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    tls = ServerTls(pki.settings(), clock=clock)
    pki.bundle.ca_certfile.unlink()
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="headwater.security._tls"):
        assert tls.refresh() is False
    assert "tls reload failed" in caplog.text


# -- ssl.principal.mapping.rules --------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        "DEFAULT",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L",
        "RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U",
        "RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/",
        "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    ],
)
def test_valid_rules(rules: str) -> None:
    PrincipalMapper(rules)


@pytest.mark.parametrize(
    "rules",
    [
        "default",
        "DEFAUL",
        "DEFAULT/L",
        "DEFAULT/U",
        "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
        "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
        "RULE:^CN=(.*/$1/",  # not a regex
        "RULE:^CN=.*$/$1/",  # a reference, but no groups
        "RULE:^CN=(.*)$/$x/",  # '$' must start a reference
        "RULE:^CN=(.*)$/${nope}/",
        "RULE:^CN=(.*)$/$1\\/",  # the last slash is escaped, so the rule never ends
    ],
)
def test_invalid_rules_name_the_rule(rules: str) -> None:
    with pytest.raises(ValueError, match=r"invalid ssl.principal.mapping.rules rule") as raised:
        PrincipalMapper(rules)
    # Kafka's splitter may cut the offending rule short at a comma; its start is always named.
    assert repr(rules)[:8] in str(raised.value)


def test_kafka_mapping_examples() -> None:
    mapper = PrincipalMapper(
        ", ".join(
            [
                "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L",
                "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
                "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
                "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
                "DEFAULT",
            ]
        )
    )
    assert mapper.map("CN=Duke,OU=ServiceUsers,O=Org,C=US") == "duke"
    assert mapper.map("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US") == "duke@sme"
    assert mapper.map("cn=duke,ou=sme,dc=mycp,dc=com") == "DUKE@SME"
    assert mapper.map("cN=duke,OU=JavaSoft,O=Sun Microsystems") == "DUKE"
    assert mapper("OU=JavaSoft,O=Sun Microsystems,C=US") == "OU=JavaSoft,O=Sun Microsystems,C=US"


def test_brief_example_and_escaped_commas() -> None:
    mapper = PrincipalMapper(
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,"
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT"
    )
    assert mapper.map("CN=Alice,OU=Eng,O=Example,L=SF,ST=CA,C=US") == "alice@eng"
    assert mapper.map("CN=Bob.Smith,OU=Eng,O=Example") == "bob.smith"
    assert mapper.map("OU=Eng,O=Example") == "OU=Eng,O=Example"
    escaped = PrincipalMapper("RULE:^CN=((\\\\, *|\\w)+)(,.*|$)/$1/,DEFAULT")
    assert escaped.map("CN=Tkac\\, Adam,OU=ITZ,DC=geodis,DC=cz") == "Tkac\\, Adam"


def test_no_matching_rule_is_an_error() -> None:
    mapper = PrincipalMapper("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/")
    with pytest.raises(NoMatchingRuleError, match=r"CN=alice,OU=eng.*end the rules with DEFAULT"):
        mapper.map("CN=alice,OU=eng")
    with pytest.raises(NoMatchingRuleError):
        PrincipalMapper("").map("CN=alice")


def test_replacement_references_as_java_and_kafka() -> None:
    # Past the last group a reference is literal text (Kafka); digits extend a reference only
    # while it still names a group (Java); ${name} and \$ work as in Java.
    assert PrincipalMapper("RULE:^CN=(.*),OU=(.*),O=(.*)$/$1@$4/").map("CN=a,OU=b,O=c") == "a@$4"
    assert PrincipalMapper("RULE:^CN=(.*),OU=(.*),O=(.*)$/$34/").map("CN=a,OU=b,O=c") == "c4"
    assert PrincipalMapper("RULE:^CN=(.*)$/$0:\\$1/").map("CN=a") == "CN=a:$1"
    named = PrincipalMapper("RULE:^CN=(?<user>[^,]*).*$/${user}/U")
    assert named.map("CN=al,O=x") == "AL"
    assert named.rules == ("RULE:^CN=(?<user>[^,]*).*$/${user}/U",)
    assert PrincipalMapper("RULE:^CN=([^,]*)(,OU=([^,]*))?$/$1-$3/").map("CN=al") == "al-"
    assert PrincipalMapper("RULE:^CN=([^,]*)\\/x$/$1/").map("CN=al/x") == "al"


def test_rules_split_as_kafka_splits_them() -> None:
    cases = {
        "": [],
        "RULE://,DEFAULT": ["RULE:/", "DEFAULT"],
        "  RULE:   /     / ,  DEFAULT  ": ["RULE:   /     ", "DEFAULT"],
        "  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ": [
            "RULE:([A-Z]*)/$1/U",
            "RULE:([a-z]+)/$1",
            "DEFAULT",
        ],
        ",,RULE://,,,DEFAULT,,": ["RULE:/", "DEFAULT"],
        "RULE:\\**\\/+/*/L,RULE:\\/*\\**/**/": ["RULE:\\**\\/+/*/L", "RULE:\\/*\\**/**"],
        "RULE:,RULE:,/,RULE:,\\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, DEFAULT, "
        "/DEFAULT/,DEFAULT": [
            "RULE:,RULE:,/,RULE:,\\//U",
            "RULE:,/RULE:,",
            "RULE:,RULE:,/L,RULE:,/L",
            "RULE:, DEFAULT, /DEFAULT",
            "DEFAULT",
        ],
    }
    for rules, expected in cases.items():
        assert list(PrincipalMapper(rules).rules) == expected, rules
