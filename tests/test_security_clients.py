"""TLS, SASL and ACLs with every other client the suite drives: kafka-python, aiokafka, kcat
(librdkafka 2.0.2), kafkajs, sarama 1.22 and Apache Kafka 4.4's Java client.

For each client, over its own error reporting:

- a round trip over SASL_SSL with SCRAM-SHA-512 (the server certificate checked against the
  development CA) and over SSL with a client certificate against a broker that requires one;
- refusals: a wrong password, an unknown user, a server certificate the client does not trust
  (its trust store holds another CA), an expired client certificate and one from another CA;
- a producer without ACLs on a broker with the authorizer on is refused with the client's
  topic-authorization error; once a super user has granted WRITE and DESCRIBE on the topic
  (confluent-kafka's AdminClient, CreateAcls), the same user produces and the records are there.

confluent-kafka is covered by tests/test_broker_security.py and test_broker_authorization.py.

``ssl_client_auth`` is one setting for every TLS listener of a broker, so module-scoped brokers
share one certificate bundle: one with a SASL_SSL listener (no client certificates), one with
an SSL listener that requires them, and one with a SASL_SSL listener and the authorizer on.

The Go, node and Java helpers read their scenarios from stdin and answer each with a JSON
line, so each starts once for all of its scenarios (and the test grants the ACL between two).
sarama 1.22 has no SCRAM implementation of its own: it takes one from the caller
(``Net.SASL.SCRAMClientGeneratorFunc``), so tests/go/secure/main.go brings a small RFC 5802
client built on Go's standard library. The Java program (interop/jvm/source-launch) runs with
Java's source-file launcher on the cached Kafka jars, so headwater-interop.jar is unchanged.

Where a client hides the reason of a refusal, the test also checks the reason in its log:
kafka-python 3.0 and aiokafka 0.14 report a bootstrap timeout or connection error, sarama
says "run out of available brokers". A client certificate the broker refuses (expired, or from
another CA) ends the handshake with OpenSSL's fatal alert (certificate_expired, unknown_ca) on
the way to the client, as Kafka's broker sends one; the reasons below are how each client
reports that alert (aiokafka cannot: see its table).
"""

from __future__ import annotations

import datetime
import gc
import json
import logging
import os
import queue
import shutil
import subprocess
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kafka
import kafka.errors
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.errors import TopicAuthorizationFailedError as AioTopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from headwater.broker import BrokerThread
from headwater.security._certs import CertifiedKey, create_client_certificate, write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker, java_missing
from headwater.testing._java import java_command

HERE = Path(__file__).resolve().parent
USER = "alice"
PASSWORD = "alice-secret"
WRONG = "not-the-password"
ADMIN = "admin"
EXPECTED = ["record-0", "record-1", "record-2"]
SASL_SSL = "SASL_SSL"
SSL = "SSL"
ROUND_TRIPS = ["sasl-ssl", "mtls"]
REFUSALS = [
    "wrong-password",
    "unknown-user",
    "untrusted-server",
    "expired-client-cert",
    "other-ca-client-cert",
]
CLIENTS = ["kp", "aio", "kcat", "js", "go", "java"]


def new_topic(client: str) -> str:
    return f"sec-{client}-{uuid.uuid4().hex[:8]}"


def acl_user(client: str) -> str:
    """The user ``client`` produces as on the authorizing broker: no ACL until granted."""
    return f"noacl-{client}"


# -- brokers and certificates ----------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle (CA, server, alice), plus ``other-ca.pem`` and ``other-eve.*`` from another
    CA and ``late.*``, a certificate of the bundle's CA that expired weeks ago."""
    out = tmp_path_factory.mktemp("certs")
    write_bundle(out, hosts=["localhost", "127.0.0.1"], clients=[USER], days=30)
    other = tmp_path_factory.mktemp("other-ca")
    write_bundle(other, hosts=["localhost", "127.0.0.1"], clients=["eve"], days=30)
    for name in ("ca.pem", "eve.pem", "eve.key", "eve.keystore.pem"):
        (out / f"other-{name}").write_bytes((other / name).read_bytes())
    ca = CertifiedKey(
        serialization.load_pem_private_key((out / "ca.key").read_bytes(), None),
        x509.load_pem_x509_certificate((out / "ca.pem").read_bytes()),
    )
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    late = create_client_certificate(ca, "late", days=1, not_valid_before=long_ago)
    (out / "late.pem").write_bytes(late.certificate_pem())
    (out / "late.key").write_bytes(late.key_pem())
    (out / "late.keystore.pem").write_bytes(late.key_pem() + late.certificate_pem())
    return out


def add_users(data_dir: Path, *users: str) -> None:
    """SCRAM-SHA-256 and SCRAM-SHA-512 credentials (PLAIN checks them too), password PASSWORD."""
    store = CredentialStore(credentials_path(data_dir))
    for user in users:
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            store.upsert(user, ScramCredential.from_password(mechanism, PASSWORD, 4096))


def tls_settings(certs: Path) -> dict[str, Any]:
    return {
        "ssl_certfile": certs / "server.pem",
        "ssl_keyfile": certs / "server.key",
        "ssl_cafile": certs / "ca.pem",
    }


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    """SASL_SSL only, with alice as its one user."""
    data = tmp_path_factory.mktemp("sasl-broker")
    add_users(data, USER)
    with embedded_broker(
        data,
        listeners="SASL_SSL://127.0.0.1:0",
        connection_failed_authentication_delay_ms=10,
        **tls_settings(certs),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    """SSL only, with ``ssl_client_auth="required"``: no round trip without alice's certificate."""
    with embedded_broker(
        tmp_path_factory.mktemp("mtls-broker"),
        listeners="SSL://127.0.0.1:0",
        ssl_client_auth="required",
        **tls_settings(certs),
    ) as running:
        yield running


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    """SASL_SSL with the authorizer on: ``User:admin`` is a super user, each client's
    ``noacl-<client>`` user has no ACL until its test grants one."""
    data = tmp_path_factory.mktemp("acl-broker")
    add_users(data, ADMIN, *(acl_user(client) for client in CLIENTS))
    with embedded_broker(
        data,
        listeners="SASL_SSL://127.0.0.1:0",
        authorizer_enabled=True,
        super_users=[f"User:{ADMIN}"],
        connection_failed_authentication_delay_ms=10,
        **tls_settings(certs),
    ) as running:
        yield running


@dataclass(frozen=True)
class Access:
    """How a client reaches a broker: listener, trust store, SASL user or client certificate."""

    bootstrap: str
    listener: str
    ca: Path
    user: str = USER
    password: str = PASSWORD
    cert: Path | None = None

    @property
    def key(self) -> Path | None:
        return None if self.cert is None else self.cert.with_suffix(".key")

    @property
    def keystore(self) -> Path | None:
        """Key and certificate in one file, for Java's ``ssl.keystore.type=PEM``."""
        return None if self.cert is None else self.cert.with_suffix(".keystore.pem")


@pytest.fixture(scope="module")
def scenarios(
    sasl_broker: BrokerThread, mtls_broker: BrokerThread, certs: Path
) -> dict[str, Access]:
    """The round trips and the refusals, by name."""
    sasl = Access(sasl_broker.bootstrap_for(SASL_SSL), SASL_SSL, certs / "ca.pem")
    mtls = Access(mtls_broker.bootstrap_for(SSL), SSL, certs / "ca.pem", cert=certs / "alice.pem")
    return {
        "sasl-ssl": sasl,
        "mtls": mtls,
        "wrong-password": replace(sasl, password=WRONG),
        "unknown-user": replace(sasl, user="nobody"),
        "untrusted-server": replace(sasl, ca=certs / "other-ca.pem"),
        "expired-client-cert": replace(mtls, cert=certs / "late.pem"),
        "other-ca-client-cert": replace(mtls, cert=certs / "other-eve.pem"),
    }


def acl_access(acl_broker: BrokerThread, certs: Path, user: str) -> Access:
    return Access(acl_broker.bootstrap_for(SASL_SSL), SASL_SSL, certs / "ca.pem", user=user)


def confluent_config(access: Access) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": access.bootstrap,
        "security.protocol": access.listener,
        "ssl.ca.location": str(access.ca),
    }
    if access.listener == SASL_SSL:
        config.update(
            {
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": access.user,
                "sasl.password": access.password,
            }
        )
    if access.cert is not None:
        config.update(
            {"ssl.certificate.location": str(access.cert), "ssl.key.location": str(access.key)}
        )
    return config


def read_back(access: Access, topic: str) -> list[str]:
    """The values on ``topic`` as confluent-kafka reads them."""
    consumer = Consumer(
        {
            **confluent_config(access),
            "group.id": f"check-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[str] = []
    try:
        while len(values) < len(EXPECTED):
            message = consumer.poll(30)
            assert message is not None, f"only {values} arrived on {topic}"
            value = message.value()
            if message.error() is None and value is not None:
                values.append(value.decode())
    finally:
        consumer.close()
    return values


# -- ACLs ------------------------------------------------------------------------------------


class AclCase:
    """One client's ACL scenario: a topic made by the super user, a user with no ACL on it."""

    def __init__(self, broker: BrokerThread, certs: Path, client: str) -> None:
        self.admin_access = acl_access(broker, certs, ADMIN)
        self.access = acl_access(broker, certs, acl_user(client))
        self.topic = new_topic(f"{client}-acl")
        self.admin = AdminClient(confluent_config(self.admin_access))
        for future in self.admin.create_topics([NewTopic(self.topic, 1, 1)]).values():
            future.result(timeout=15)

    def grant_produce(self) -> None:
        """WRITE and DESCRIBE on the topic for the user, through CreateAcls."""
        bindings = [
            AclBinding(
                ResourceType.TOPIC,
                self.topic,
                ResourcePatternType.LITERAL,
                f"User:{self.access.user}",
                "*",
                operation,
                AclPermissionType.ALLOW,
            )
            for operation in (AclOperation.WRITE, AclOperation.DESCRIBE)
        ]
        for future in self.admin.create_acls(bindings).values():
            future.result(timeout=15)

    def produced(self) -> list[str]:
        """What the super user reads back from the topic."""
        return read_back(self.admin_access, self.topic)


# -- helper processes (Go, node, Java) -------------------------------------------------------


class Helper:
    """A helper process that takes one scenario per stdin line and answers each with one JSON
    line on stdout; its stderr goes to a file."""

    def __init__(self, command: list[str], work: Path, env: dict[str, str] | None = None) -> None:
        self.stderr_path = work / "stderr.log"
        self._stderr = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=work,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _trouble(self, what: str) -> str:
        return f"{what}; stderr: {self.stderr_path.read_text()[-6000:]}"

    def play(self, request: str, timeout: float = 120) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(self._trouble(f"no answer to {request}")) from None
            if line is None:
                code = self.process.wait()
                raise AssertionError(self._trouble(f"exited with {code} on {request}"))
            if line.startswith("{"):
                answer: dict[str, Any] = json.loads(line)
                return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


Play = Callable[[str, Access, str, bool], dict[str, Any]]


def play_matrix(
    play: Play, scenarios: dict[str, Access], acl: AclCase
) -> dict[str, dict[str, Any]]:
    """Every scenario through ``play(name, access, topic, produce_only)``; the ACL ones last:
    refused, then (after the grant) accepted, then read back by the super user."""
    results = {
        name: play(name, scenarios[name], new_topic(name), False)
        for name in [*ROUND_TRIPS, *REFUSALS]
    }
    results["acl-denied"] = play("acl-denied", acl.access, acl.topic, True)
    acl.grant_produce()
    results["acl-granted"] = play("acl-granted", acl.access, acl.topic, True)
    if results["acl-granted"].get("values") == EXPECTED:
        results["acl-granted"]["read_back"] = acl.produced()
    return results


def check_acl_granted(result: dict[str, Any]) -> None:
    assert result.get("values") == EXPECTED, result
    assert result.get("read_back") == EXPECTED, result


# -- kafka-python ----------------------------------------------------------------------------


def kafka_python_settings(access: Access) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": access.bootstrap,
        "security_protocol": access.listener,
        "ssl_cafile": str(access.ca),
    }
    if access.listener == SASL_SSL:
        settings.update(
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=access.user,
            sasl_plain_password=access.password,
        )
    if access.cert is not None:
        settings.update(ssl_certfile=str(access.cert), ssl_keyfile=str(access.key))
    return settings


def kafka_python_round_trip(settings: dict[str, Any], topic: str) -> list[str]:
    producer = kafka.KafkaProducer(acks="all", **settings)
    try:
        for value in EXPECTED:
            producer.send(topic, value=value.encode()).get(timeout=30)
    finally:
        producer.close()
    consumer = kafka.KafkaConsumer(
        topic, auto_offset_reset="earliest", consumer_timeout_ms=10_000, **settings
    )
    try:
        return [message.value.decode() for _, message in zip(EXPECTED, consumer, strict=False)]
    finally:
        consumer.close()


@pytest.mark.parametrize("scenario", ROUND_TRIPS)
def test_kafka_python_round_trip(scenarios: dict[str, Access], scenario: str) -> None:
    settings = kafka_python_settings(scenarios[scenario])
    assert kafka_python_round_trip(settings, new_topic("kp")) == EXPECTED


# What kafka-python logs about each refusal (the caller only sees a KafkaTimeoutError).
KAFKA_PYTHON_REASONS = {
    "wrong-password": "SaslAuthenticationFailedError",
    "unknown-user": "SaslAuthenticationFailedError",
    "untrusted-server": "CERTIFICATE_VERIFY_FAILED",
    "expired-client-cert": "CERTIFICATE_EXPIRED",
    "other-ca-client-cert": "UNKNOWN_CA",
}


@pytest.mark.parametrize("scenario", REFUSALS)
def test_kafka_python_refused(
    scenarios: dict[str, Access], caplog: pytest.LogCaptureFixture, scenario: str
) -> None:
    """kafka-python 3.0 keeps retrying a refused connection until its deadline: the caller
    gets a ``KafkaTimeoutError`` and the reason is in its log. (Its TLS transport drops a
    response that arrives with the connection's end in one read, so some attempts log only
    "socket disconnected"; quick reconnects make the refusal show.)"""
    producer = kafka.KafkaProducer(
        api_version=(2, 8),  # no bootstrap in the constructor, so close() below cleans up
        max_block_ms=5_000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=200,
        **kafka_python_settings(scenarios[scenario]),
    )
    try:
        with (
            caplog.at_level(logging.INFO, logger="kafka"),
            pytest.raises(kafka.errors.KafkaTimeoutError),
        ):
            producer.send(new_topic("kp-refused"), value=b"x").get(timeout=10)
    finally:
        producer.close()
        # kafka-python drops (without closing) the TLS sockets of connections the broker ended
        # during the handshake; collect them here rather than in a later test's teardown.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("kafka.")]
    assert any(KAFKA_PYTHON_REASONS[scenario] in m for m in logged), logged


def test_kafka_python_acl(acl_broker: BrokerThread, certs: Path) -> None:
    acl = AclCase(acl_broker, certs, "kp")
    settings = kafka_python_settings(acl.access)

    def produce() -> None:
        producer = kafka.KafkaProducer(acks="all", max_block_ms=10_000, **settings)
        try:
            for value in EXPECTED:
                producer.send(acl.topic, value=value.encode()).get(timeout=30)
        finally:
            producer.close()

    with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
        produce()
    acl.grant_produce()
    produce()
    assert acl.produced() == EXPECTED


# -- aiokafka --------------------------------------------------------------------------------


def aiokafka_settings(access: Access) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": access.bootstrap,
        "security_protocol": access.listener,
        "ssl_context": create_ssl_context(
            cafile=str(access.ca),
            certfile=None if access.cert is None else str(access.cert),
            keyfile=None if access.key is None else str(access.key),
        ),
    }
    if access.listener == SASL_SSL:
        settings.update(
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=access.user,
            sasl_plain_password=access.password,
        )
    return settings


@pytest.mark.parametrize("scenario", ROUND_TRIPS)
async def test_aiokafka_round_trip(scenarios: dict[str, Access], scenario: str) -> None:
    settings = aiokafka_settings(scenarios[scenario])
    topic = new_topic("aio")
    producer = AIOKafkaProducer(acks="all", **settings)
    await producer.start()
    try:
        for value in EXPECTED:
            await producer.send_and_wait(topic, value.encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **settings)
    await consumer.start()
    values: list[str] = []
    try:
        for _ in range(60):
            batches = await consumer.getmany(timeout_ms=500)
            values.extend(r.value.decode() for rs in batches.values() for r in rs if r.value)
            if len(values) >= len(EXPECTED):
                break
    finally:
        await consumer.stop()
    assert values == EXPECTED


# What aiokafka logs about each refusal (the caller sees "Unable to bootstrap").
AIOKAFKA_REASONS = {
    "wrong-password": "[Error 58] SaslAuthenticationFailed",
    "unknown-user": "[Error 58] SaslAuthenticationFailed",
    "untrusted-server": "CERTIFICATE_VERIFY_FAILED",
    # asyncio's TLS client ends a TLS 1.3 handshake before the broker's verdict arrives and
    # reports the alert that follows only as a closed connection (the broker's log has the
    # reason: tests/test_broker_security.py); the broker counts the refused handshake.
    "expired-client-cert": "closed",
    "other-ca-client-cert": "closed",
}


@pytest.mark.parametrize("scenario", REFUSALS)
async def test_aiokafka_refused(
    scenarios: dict[str, Access],
    mtls_broker: BrokerThread,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    refused_handshakes = mtls_broker.broker.metrics.connections_closed.labels("tls_handshake")
    before = refused_handshakes._value.get()
    producer = AIOKafkaProducer(**aiokafka_settings(scenarios[scenario]))
    with caplog.at_level(logging.INFO, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")]
    assert any(AIOKAFKA_REASONS[scenario] in m for m in logged), logged
    if scenario.endswith("client-cert"):
        assert refused_handshakes._value.get() > before


async def test_aiokafka_acl(acl_broker: BrokerThread, certs: Path) -> None:
    acl = AclCase(acl_broker, certs, "aio")

    async def produce() -> None:
        producer = AIOKafkaProducer(acks="all", **aiokafka_settings(acl.access))
        await producer.start()
        try:
            for value in EXPECTED:
                await producer.send_and_wait(acl.topic, value.encode())
        finally:
            await producer.stop()

    with pytest.raises(AioTopicAuthorizationFailedError):
        await produce()
    acl.grant_produce()
    await produce()
    assert acl.produced() == EXPECTED


# -- kcat (librdkafka 2.0.2) ------------------------------------------------------------------

KCAT = shutil.which("kcat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat missing: run scripts/install-test-tools")


def kcat_settings(access: Access, mechanism: str = "PLAIN") -> list[str]:
    """kcat's settings; PLAIN by default, since its SCRAM is refused (see below)."""
    props = {"security.protocol": access.listener, "ssl.ca.location": str(access.ca)}
    if access.listener == SASL_SSL:
        props.update(
            {
                "sasl.mechanisms": mechanism,
                "sasl.username": access.user,
                "sasl.password": access.password,
            }
        )
    if access.cert is not None:
        props.update(
            {"ssl.certificate.location": str(access.cert), "ssl.key.location": str(access.key)}
        )
    args = ["-b", access.bootstrap]
    for key, value in props.items():
        args += ["-X", f"{key}={value}"]
    return args


def kcat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KCAT is not None
    return subprocess.run(
        [KCAT, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def kcat_produce(access: Access, topic: str) -> subprocess.CompletedProcess[str]:
    return kcat(
        *kcat_settings(access), "-P", "-t", topic, "-p", "0", stdin="\n".join(EXPECTED) + "\n"
    )


@needs_kcat
@pytest.mark.parametrize("scenario", ROUND_TRIPS)
def test_kcat_round_trip(scenarios: dict[str, Access], scenario: str) -> None:
    """librdkafka 2.0.2 turns SASL on only when ApiVersions lists SaslHandshake v0 (the
    broker lists 0..1, as Kafka 4.4 does); over SASL_SSL it logs in with PLAIN."""
    access = scenarios[scenario]
    topic = new_topic("kcat")
    produced = kcat_produce(access, topic)
    assert produced.returncode == 0, produced.stderr
    consumed = kcat(*kcat_settings(access), "-C", "-t", topic, "-o", "beginning", "-e", "-c", "3")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == EXPECTED


KCAT_REASONS = {
    "wrong-password": "Authentication failed",
    "unknown-user": "Authentication failed",
    "untrusted-server": "certificate verify failed",
    "expired-client-cert": "certificate expired",
    "other-ca-client-cert": "unknown ca",
}


@needs_kcat
@pytest.mark.parametrize("scenario", REFUSALS)
def test_kcat_refused(scenarios: dict[str, Access], scenario: str) -> None:
    refused = kcat(*kcat_settings(scenarios[scenario]), "-L", "-m", "5")
    assert refused.returncode != 0, refused.stdout
    assert KCAT_REASONS[scenario] in refused.stderr, refused.stderr


@needs_kcat
def test_kcat_scram_is_refused_as_kafka_4_refuses_it(scenarios: dict[str, Access]) -> None:
    """librdkafka before 2.6.1 repeats its own nonce in the SCRAM client-final message.
    RFC 5802 requires the exact nonce the server sent, and Kafka 4.x checks it strictly again
    (the fix of CVE-2024-56128), so the broker refuses it the same way, with Kafka's words."""
    settings = kcat_settings(scenarios["sasl-ssl"], mechanism="SCRAM-SHA-512")
    refused = kcat(*settings, "-L", "-m", "5")
    assert refused.returncode != 0, refused.stdout
    assert "Invalid client nonce in the final client message" in refused.stderr, refused.stderr


@needs_kcat
def test_kcat_acl(acl_broker: BrokerThread, certs: Path) -> None:
    acl = AclCase(acl_broker, certs, "kcat")
    refused = kcat_produce(acl.access, acl.topic)
    assert refused.returncode != 0, refused.stderr
    assert "Topic authorization failed" in refused.stderr, refused.stderr
    acl.grant_produce()
    produced = kcat_produce(acl.access, acl.topic)
    assert produced.returncode == 0, produced.stderr
    assert acl.produced() == EXPECTED


# -- kafkajs ---------------------------------------------------------------------------------

JS_DIR = HERE / "js"
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def kafkajs_results(
    tmp_path_factory: pytest.TempPathFactory,
    scenarios: dict[str, Access],
    acl_broker: BrokerThread,
    certs: Path,
) -> dict[str, dict[str, Any]]:
    """One node process plays every scenario."""
    if NODE is None:
        pytest.skip("node missing: run scripts/install-test-tools")
    if not (JS_DIR / "node_modules" / "kafkajs").exists():
        pytest.skip("kafkajs missing (tests/js/node_modules): run scripts/install-test-tools")
    helper = Helper([NODE, str(JS_DIR / "secure.js")], tmp_path_factory.mktemp("js-secure"))

    def play(name: str, access: Access, topic: str, produce_only: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "scenario": name,
            "bootstrap": access.bootstrap,
            "topic": topic,
            "count": len(EXPECTED),
            "produce_only": produce_only,
            "ca": str(access.ca),
        }
        if access.listener == SASL_SSL:
            request["sasl"] = {
                "mechanism": "scram-sha-512",
                "username": access.user,
                "password": access.password,
            }
        if access.cert is not None:
            request.update(cert=str(access.cert), key=str(access.key))
        return helper.play(json.dumps(request))

    try:
        return play_matrix(play, scenarios, AclCase(acl_broker, certs, "js"))
    finally:
        helper.close()


@pytest.mark.parametrize("scenario", ROUND_TRIPS)
def test_kafkajs_round_trip(kafkajs_results: dict[str, dict[str, Any]], scenario: str) -> None:
    assert kafkajs_results[scenario].get("values") == EXPECTED, kafkajs_results[scenario]


# The error kafkajs throws, and a text its chain of causes carries.
KAFKAJS_REASONS = {
    "wrong-password": ("KafkaJSSASLAuthenticationError", "SASL SCRAM SHA512 authentication"),
    "unknown-user": ("KafkaJSSASLAuthenticationError", "SASL SCRAM SHA512 authentication"),
    "untrusted-server": ("KafkaJSConnectionError", "self-signed certificate"),
    "expired-client-cert": ("KafkaJSConnectionError", "certificate expired"),
    "other-ca-client-cert": ("KafkaJSConnectionError", "unknown ca"),
}


@pytest.mark.parametrize("scenario", REFUSALS)
def test_kafkajs_refused(kafkajs_results: dict[str, dict[str, Any]], scenario: str) -> None:
    result = kafkajs_results[scenario]
    assert "error" in result, result
    error, reason = KAFKAJS_REASONS[scenario]
    assert error in [c["name"] for c in result.get("causes", [])], result
    assert any(reason in c["message"] for c in result["causes"]), result


def test_kafkajs_acl(kafkajs_results: dict[str, dict[str, Any]]) -> None:
    denied = kafkajs_results["acl-denied"]
    assert {"name": "KafkaJSProtocolError", "type": "TOPIC_AUTHORIZATION_FAILED"}.items() <= (
        next((c for c in denied.get("causes", []) if c["name"] == "KafkaJSProtocolError"), {})
    ).items(), denied
    check_acl_granted(kafkajs_results["acl-granted"])


# -- sarama 1.22 -----------------------------------------------------------------------------

GOPATH = "/usr/share/gocode"
SARAMA_TOPIC_AUTHORIZATION_FAILED = 29  # sarama.ErrTopicAuthorizationFailed


@pytest.fixture(scope="module")
def sarama_results(
    tmp_path_factory: pytest.TempPathFactory,
    scenarios: dict[str, Access],
    acl_broker: BrokerThread,
    certs: Path,
) -> dict[str, dict[str, Any]]:
    """One Go process plays every scenario."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go missing: run scripts/install-test-tools")
    if not Path(GOPATH, "src/github.com/Shopify/sarama").exists():
        pytest.skip(f"sarama missing (under {GOPATH}): run scripts/install-test-tools")
    work = tmp_path_factory.mktemp("go-secure")
    out = work / "secureclient"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        # Go's own build cache (safe to share): sarama compiles once, not on every run.
        "GOCACHE": os.environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build"),
        "GOFLAGS": "",
        "CGO_CFLAGS": "-Wno-deprecated-declarations",
    }
    subprocess.run(
        [go, "build", "-o", str(out), str(HERE / "go" / "secure" / "main.go")],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    helper = Helper([str(out)], work)

    def play(name: str, access: Access, topic: str, produce_only: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "scenario": name,
            "bootstrap": access.bootstrap,
            "topic": topic,
            "count": len(EXPECTED),
            "produce_only": produce_only,
            "ca": str(access.ca),
        }
        if access.listener == SASL_SSL:
            request.update(mechanism="SCRAM-SHA-512", user=access.user, password=access.password)
        if access.cert is not None:
            request.update(cert=str(access.cert), key=str(access.key))
        result = helper.play(json.dumps(request))
        if name in ROUND_TRIPS and result.get("values") == EXPECTED:
            result["read_back"] = read_back(access, topic)
        return result

    try:
        return play_matrix(play, scenarios, AclCase(acl_broker, certs, "go"))
    finally:
        helper.close()


@pytest.mark.parametrize("scenario", ROUND_TRIPS)
def test_sarama_round_trip(sarama_results: dict[str, dict[str, Any]], scenario: str) -> None:
    result = sarama_results[scenario]
    assert result.get("values") == EXPECTED, result
    assert result.get("read_back") == EXPECTED, result


SARAMA_SASL_FAILED = 58  # sarama.ErrSASLAuthenticationFailed
SARAMA_NO_BROKERS = "client has run out of available brokers"
# The error sarama returns, and the reason in its log (a TLS refusal is only there).
SARAMA_REASONS = {
    "wrong-password": ("SASL Authentication failed", "failed SASL authentication"),
    "unknown-user": ("SASL Authentication failed", "failed SASL authentication"),
    "untrusted-server": (SARAMA_NO_BROKERS, "x509: certificate signed by unknown authority"),
    "expired-client-cert": (SARAMA_NO_BROKERS, "remote error: tls: expired certificate"),
    "other-ca-client-cert": (SARAMA_NO_BROKERS, "remote error: tls: unknown certificate authority"),
}


@pytest.mark.parametrize("scenario", REFUSALS)
def test_sarama_refused(sarama_results: dict[str, dict[str, Any]], scenario: str) -> None:
    result = sarama_results[scenario]
    error, reason = SARAMA_REASONS[scenario]
    assert error in result.get("error", ""), result
    if error != SARAMA_NO_BROKERS:
        assert result["kerror"] == SARAMA_SASL_FAILED, result
    assert reason in result["log"], result["log"]


def test_sarama_acl(sarama_results: dict[str, dict[str, Any]]) -> None:
    denied = sarama_results["acl-denied"]
    assert denied.get("kerror") == SARAMA_TOPIC_AUTHORIZATION_FAILED, denied
    check_acl_granted(sarama_results["acl-granted"])


# -- Apache Kafka's Java client (kafka-clients 4.4) -------------------------------------------

_JAVA_MISSING = java_missing()
JAVA_SOURCE = HERE.parent / "interop" / "jvm" / "source-launch" / "SecureClients.java"


@pytest.fixture(scope="module")
def java_results(
    tmp_path_factory: pytest.TempPathFactory,
    scenarios: dict[str, Access],
    acl_broker: BrokerThread,
    certs: Path,
) -> dict[str, dict[str, Any]]:
    """One JVM plays every scenario (a JVM start costs seconds of CPU here)."""
    if _JAVA_MISSING is not None:
        pytest.skip(_JAVA_MISSING)
    work = tmp_path_factory.mktemp("java-secure")
    helper = Helper(java_command(str(JAVA_SOURCE)), work)

    def play(name: str, access: Access, topic: str, produce_only: bool) -> dict[str, Any]:
        props = {
            "topic": topic,
            "produce.only": str(produce_only).lower(),
            "bootstrap.servers": access.bootstrap,
            "security.protocol": access.listener,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(access.ca),
        }
        if access.listener == SASL_SSL:
            props["sasl.mechanism"] = "SCRAM-SHA-512"
            props["sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{access.user}" password="{access.password}";'
            )
        if access.keystore is not None:
            props.update(
                {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(access.keystore)}
            )
        if name in REFUSALS:
            props["max.block.ms"] = "10000"
        path = work / f"{name}.properties"
        lines = [f"{k}={v}" for k, v in props.items()]
        path.write_text("\n".join(line.replace("\\", "\\\\") for line in lines) + "\n")
        return helper.play(f"{name}={path}", timeout=180)

    try:
        return play_matrix(play, scenarios, AclCase(acl_broker, certs, "java"))
    finally:
        helper.close()


@pytest.mark.parametrize("scenario", ROUND_TRIPS)
def test_java_round_trip(java_results: dict[str, dict[str, Any]], scenario: str) -> None:
    assert java_results[scenario].get("values") == EXPECTED, java_results[scenario]


# The exception the Java client throws (in its chain of causes), and its root cause's message.
JAVA_REASONS: dict[str, tuple[str, str | None]] = {
    "wrong-password": ("org.apache.kafka.common.errors.SaslAuthenticationException", None),
    "unknown-user": ("org.apache.kafka.common.errors.SaslAuthenticationException", None),
    "untrusted-server": (
        "org.apache.kafka.common.errors.SslAuthenticationException",
        "java.security.cert.CertPathValidatorException",
    ),
    "expired-client-cert": (
        "org.apache.kafka.common.errors.SslAuthenticationException",
        "certificate_expired",
    ),
    "other-ca-client-cert": (
        "org.apache.kafka.common.errors.SslAuthenticationException",
        "unknown_ca",
    ),
}


@pytest.mark.parametrize("scenario", REFUSALS)
def test_java_refused(java_results: dict[str, dict[str, Any]], scenario: str) -> None:
    refused = java_results[scenario]
    assert "error" in refused, refused
    error, reason = JAVA_REASONS[scenario]
    assert error in refused.get("causes", []), refused
    if reason is not None:
        assert reason in refused["message"] or reason in refused["causes"], refused


def test_java_acl(java_results: dict[str, dict[str, Any]]) -> None:
    denied = java_results["acl-denied"]
    assert "org.apache.kafka.common.errors.TopicAuthorizationException" in denied.get(
        "causes", []
    ), denied
    check_acl_granted(java_results["acl-granted"])
