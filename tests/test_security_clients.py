"""TLS and SASL with every other client the suite drives: kafka-python, aiokafka, kcat
(librdkafka 2.0.2), kafkajs, sarama 1.22 and Apache Kafka 4.4's Java client.

For each client: a round trip over SASL_SSL with SCRAM-SHA-512 (the server certificate checked
against the development CA), a round trip over SSL with a client certificate against a broker
that requires one (mutual TLS), and a wrong password refused with the client's own
authentication error. confluent-kafka is covered by tests/test_broker_security.py.

``ssl_client_auth`` is one setting for every TLS listener of a broker, so two module-scoped
brokers share one certificate bundle: one with a SASL_SSL listener (no client certificates)
and one with an SSL listener that requires them.

sarama 1.22 has no SCRAM implementation of its own: it takes one from the caller
(``Net.SASL.SCRAMClientGeneratorFunc``), so tests/go/secure/main.go brings a small RFC 5802
client built on Go's standard library. The Java program (interop/jvm/source-launch) runs with
Java's source-file launcher on the cached Kafka jars, so headwater-interop.jar is unchanged.

kafka-python 3.0 and aiokafka 0.14 do not raise the broker's SASL_AUTHENTICATION_FAILED to
the caller (they report a bootstrap timeout or connection error); their tests check the
error they log. sarama logs it too (its caller sees "run out of available brokers").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kafka
import kafka.errors
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer

from headwater.broker import BrokerThread
from headwater.security._certs import write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker, java_missing
from headwater.testing._java import java_command

HERE = Path(__file__).resolve().parent
USER = "alice"
PASSWORD = "alice-secret"
WRONG = "not-the-password"
EXPECTED = ["record-0", "record-1", "record-2"]
SASL_SSL = "SASL_SSL"
SSL = "SSL"


def new_topic(client: str) -> str:
    return f"sec-{client}-{uuid.uuid4().hex[:8]}"


# -- brokers and certificates ----------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    write_bundle(out, hosts=["localhost", "127.0.0.1"], clients=[USER], days=30)
    return out


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    """SASL_SSL only; alice has SCRAM-SHA-256 and SCRAM-SHA-512 credentials (PLAIN uses them)."""
    data = tmp_path_factory.mktemp("sasl-broker")
    store = CredentialStore(credentials_path(data))
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        store.upsert(USER, ScramCredential.from_password(mechanism, PASSWORD, 4096))
    with embedded_broker(
        data,
        listeners="SASL_SSL://127.0.0.1:0",
        ssl_certfile=certs / "server.pem",
        ssl_keyfile=certs / "server.key",
        ssl_cafile=certs / "ca.pem",
        connection_failed_authentication_delay_ms=10,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    """SSL only, with ``ssl_client_auth="required"``: no round trip without alice's certificate."""
    with embedded_broker(
        tmp_path_factory.mktemp("mtls-broker"),
        listeners="SSL://127.0.0.1:0",
        ssl_certfile=certs / "server.pem",
        ssl_keyfile=certs / "server.key",
        ssl_cafile=certs / "ca.pem",
        ssl_client_auth="required",
    ) as running:
        yield running


def read_back(broker: BrokerThread, listener: str, certs: Path, topic: str) -> list[str]:
    """The values on ``topic`` as confluent-kafka reads them (over the same listener)."""
    config: dict[str, Any] = {
        "bootstrap.servers": broker.bootstrap_for(listener),
        "security.protocol": listener,
        "ssl.ca.location": str(certs / "ca.pem"),
        "group.id": f"check-{topic}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if listener == SASL_SSL:
        config.update(
            {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD}
        )
    else:
        config.update(
            {
                "ssl.certificate.location": str(certs / f"{USER}.pem"),
                "ssl.key.location": str(certs / f"{USER}.key"),
            }
        )
    consumer = Consumer(config)
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


# -- kafka-python ----------------------------------------------------------------------------


def kafka_python_settings(
    broker: BrokerThread, listener: str, certs: Path, password: str = PASSWORD
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_for(listener),
        "security_protocol": listener,
        "ssl_cafile": str(certs / "ca.pem"),
    }
    if listener == SASL_SSL:
        settings.update(
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=USER, sasl_plain_password=password
        )
    else:
        settings.update(
            ssl_certfile=str(certs / f"{USER}.pem"), ssl_keyfile=str(certs / f"{USER}.key")
        )
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


@pytest.mark.parametrize("listener", [SASL_SSL, SSL])
def test_kafka_python_round_trip(
    sasl_broker: BrokerThread, mtls_broker: BrokerThread, certs: Path, listener: str
) -> None:
    broker = sasl_broker if listener == SASL_SSL else mtls_broker
    topic = new_topic("kp")
    assert kafka_python_round_trip(kafka_python_settings(broker, listener, certs), topic) == (
        EXPECTED
    )


def test_kafka_python_wrong_password(
    sasl_broker: BrokerThread, certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """kafka-python 3.0 keeps retrying a refused login until its deadline: the caller gets a
    ``KafkaTimeoutError`` and the ``SaslAuthenticationFailedError`` is in its log. (Its TLS
    transport drops a response that arrives with the connection's end in one read, so some
    attempts log only "socket disconnected"; quick reconnects make the refusal show.)"""
    settings = kafka_python_settings(sasl_broker, SASL_SSL, certs, password=WRONG)
    producer = kafka.KafkaProducer(
        api_version=(2, 8),  # no bootstrap in the constructor, so close() below cleans up
        max_block_ms=5_000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=200,
        **settings,
    )
    try:
        with (
            caplog.at_level(logging.ERROR, logger="kafka"),
            pytest.raises(kafka.errors.KafkaTimeoutError),
        ):
            producer.send(new_topic("kp-refused"), value=b"x").get(timeout=10)
    finally:
        producer.close()
    refusals = [
        r
        for r in caplog.records
        if r.name.startswith("kafka.") and "SaslAuthenticationFailedError" in r.getMessage()
    ]
    assert refusals, [r.getMessage() for r in caplog.records]


# -- aiokafka --------------------------------------------------------------------------------


def aiokafka_settings(
    broker: BrokerThread, listener: str, certs: Path, password: str = PASSWORD
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_for(listener),
        "security_protocol": listener,
    }
    if listener == SASL_SSL:
        settings.update(
            ssl_context=create_ssl_context(cafile=str(certs / "ca.pem")),
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=USER,
            sasl_plain_password=password,
        )
    else:
        settings["ssl_context"] = create_ssl_context(
            cafile=str(certs / "ca.pem"),
            certfile=str(certs / f"{USER}.pem"),
            keyfile=str(certs / f"{USER}.key"),
        )
    return settings


@pytest.mark.parametrize("listener", [SASL_SSL, SSL])
async def test_aiokafka_round_trip(
    sasl_broker: BrokerThread, mtls_broker: BrokerThread, certs: Path, listener: str
) -> None:
    broker = sasl_broker if listener == SASL_SSL else mtls_broker
    settings = aiokafka_settings(broker, listener, certs)
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


async def test_aiokafka_wrong_password(
    sasl_broker: BrokerThread, certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka logs the broker's SaslAuthenticationFailed and raises "Unable to bootstrap"."""
    producer = AIOKafkaProducer(**aiokafka_settings(sasl_broker, SASL_SSL, certs, WRONG))
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        try:
            await producer.start()
        finally:
            await producer.stop()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")]
    assert any("[Error 58] SaslAuthenticationFailed" in m for m in logged), logged


# -- kcat (librdkafka 2.0.2) ------------------------------------------------------------------

KCAT = shutil.which("kcat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat missing: run scripts/install-test-tools")


def kcat_settings(
    broker: BrokerThread,
    listener: str,
    certs: Path,
    password: str = PASSWORD,
    mechanism: str = "PLAIN",
) -> list[str]:
    """kcat's settings; PLAIN by default, since its SCRAM is refused (see below)."""
    props = {"security.protocol": listener, "ssl.ca.location": str(certs / "ca.pem")}
    if listener == SASL_SSL:
        props.update(
            {"sasl.mechanisms": mechanism, "sasl.username": USER, "sasl.password": password}
        )
    else:
        props.update(
            {
                "ssl.certificate.location": str(certs / f"{USER}.pem"),
                "ssl.key.location": str(certs / f"{USER}.key"),
            }
        )
    args = ["-b", broker.bootstrap_for(listener)]
    for key, value in props.items():
        args += ["-X", f"{key}={value}"]
    return args


def kcat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KCAT is not None
    return subprocess.run(
        [KCAT, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@needs_kcat
@pytest.mark.parametrize("listener", [SASL_SSL, SSL])
def test_kcat_round_trip(
    sasl_broker: BrokerThread, mtls_broker: BrokerThread, certs: Path, listener: str
) -> None:
    """librdkafka 2.0.2 turns SASL on only when ApiVersions lists SaslHandshake v0 (the
    broker lists 0..1, as Kafka 4.4 does); over SASL_SSL it logs in with PLAIN."""
    broker = sasl_broker if listener == SASL_SSL else mtls_broker
    settings = kcat_settings(broker, listener, certs)
    topic = new_topic("kcat")
    produced = kcat(*settings, "-P", "-t", topic, "-p", "0", stdin="\n".join(EXPECTED) + "\n")
    assert produced.returncode == 0, produced.stderr
    consumed = kcat(*settings, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "3")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == EXPECTED


@needs_kcat
def test_kcat_wrong_password(sasl_broker: BrokerThread, certs: Path) -> None:
    refused = kcat(*kcat_settings(sasl_broker, SASL_SSL, certs, WRONG), "-L", "-m", "5")
    assert refused.returncode != 0, refused.stdout
    assert "Authentication failed" in refused.stderr, refused.stderr


@needs_kcat
def test_kcat_scram_is_refused_as_kafka_4_refuses_it(
    sasl_broker: BrokerThread, certs: Path
) -> None:
    """librdkafka before 2.6.1 repeats its own nonce in the SCRAM client-final message.
    RFC 5802 requires the exact nonce the server sent, and Kafka 4.x checks it strictly again
    (the fix of CVE-2024-56128), so the broker refuses it the same way, with Kafka's words."""
    refused = kcat(
        *kcat_settings(sasl_broker, SASL_SSL, certs, mechanism="SCRAM-SHA-512"), "-L", "-m", "5"
    )
    assert refused.returncode != 0, refused.stdout
    assert "Invalid client nonce in the final client message" in refused.stderr, refused.stderr


# -- kafkajs ---------------------------------------------------------------------------------

JS_DIR = HERE / "js"
NODE = shutil.which("node")
needs_kafkajs = pytest.mark.skipif(
    NODE is None or not (JS_DIR / "node_modules" / "kafkajs").exists(),
    reason="node or kafkajs missing: run scripts/install-test-tools",
)


def kafkajs(
    broker: BrokerThread, listener: str, certs: Path, password: str = PASSWORD
) -> dict[str, Any]:
    assert NODE is not None
    settings: dict[str, Any] = {"ca": str(certs / "ca.pem")}
    if listener == SASL_SSL:
        settings["sasl"] = {"mechanism": "scram-sha-512", "username": USER, "password": password}
    else:
        settings.update(cert=str(certs / f"{USER}.pem"), key=str(certs / f"{USER}.key"))
    result = subprocess.run(
        [
            NODE,
            str(JS_DIR / "secure.js"),
            broker.bootstrap_for(listener),
            new_topic("js"),
            str(len(EXPECTED)),
            json.dumps(settings),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, f"kafkajs printed nothing (exit {result.returncode}): {result.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    assert ("error" in summary) == (result.returncode != 0), result
    return summary


@needs_kafkajs
@pytest.mark.parametrize("listener", [SASL_SSL, SSL])
def test_kafkajs_round_trip(
    sasl_broker: BrokerThread, mtls_broker: BrokerThread, certs: Path, listener: str
) -> None:
    broker = sasl_broker if listener == SASL_SSL else mtls_broker
    summary = kafkajs(broker, listener, certs)
    assert summary.get("values") == EXPECTED, summary


@needs_kafkajs
def test_kafkajs_wrong_password(sasl_broker: BrokerThread, certs: Path) -> None:
    summary = kafkajs(sasl_broker, SASL_SSL, certs, WRONG)
    assert summary.get("error") == "KafkaJSSASLAuthenticationError", summary


# -- sarama 1.22 -----------------------------------------------------------------------------

GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def secure_goclient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/github.com/Shopify/sarama").exists():
        pytest.skip("go or sarama missing: run scripts/install-test-tools")
    out = tmp_path_factory.mktemp("go-secure") / "secureclient"
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
    return out


def sarama(
    goclient: Path,
    broker: BrokerThread,
    listener: str,
    certs: Path,
    topic: str,
    password: str = PASSWORD,
) -> subprocess.CompletedProcess[str]:
    args = [
        f"-bootstrap={broker.bootstrap_for(listener)}",
        f"-topic={topic}",
        f"-count={len(EXPECTED)}",
        f"-ca={certs / 'ca.pem'}",
    ]
    if listener == SASL_SSL:
        args += ["-mechanism=SCRAM-SHA-512", f"-user={USER}", f"-password={password}"]
    else:
        args += [f"-cert={certs / f'{USER}.pem'}", f"-key={certs / f'{USER}.key'}"]
    return subprocess.run(
        [str(goclient), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("listener", [SASL_SSL, SSL])
def test_sarama_round_trip(
    secure_goclient: Path,
    sasl_broker: BrokerThread,
    mtls_broker: BrokerThread,
    certs: Path,
    listener: str,
) -> None:
    broker = sasl_broker if listener == SASL_SSL else mtls_broker
    topic = new_topic("go")
    result = sarama(secure_goclient, broker, listener, certs, topic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"produced=3 consumed=3 values={','.join(EXPECTED)}" in result.stdout
    assert read_back(broker, listener, certs, topic) == EXPECTED


def test_sarama_wrong_password(
    secure_goclient: Path, sasl_broker: BrokerThread, certs: Path
) -> None:
    result = sarama(secure_goclient, sasl_broker, SASL_SSL, certs, new_topic("go"), WRONG)
    assert result.returncode != 0, result.stdout
    # sarama reports "run out of available brokers"; the reason is in its log (stderr).
    assert "SASL Authentication failed" in result.stderr, result.stdout + result.stderr


# -- Apache Kafka's Java client (kafka-clients 4.4) -------------------------------------------

_JAVA_MISSING = java_missing()
JAVA_SOURCE = HERE.parent / "interop" / "jvm" / "source-launch" / "SecureClients.java"


@pytest.fixture(scope="module")
def java_results(
    tmp_path_factory: pytest.TempPathFactory,
    sasl_broker: BrokerThread,
    mtls_broker: BrokerThread,
    certs: Path,
) -> dict[str, dict[str, Any]]:
    """One JVM plays the three scenarios (a JVM start costs seconds of CPU here)."""
    if _JAVA_MISSING is not None:
        pytest.skip(_JAVA_MISSING)
    work = tmp_path_factory.mktemp("java-secure")
    ca = str(certs / "ca.pem")

    def sasl(password: str) -> dict[str, str]:
        return {
            "bootstrap.servers": sasl_broker.bootstrap_for(SASL_SSL),
            "security.protocol": SASL_SSL,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": ca,
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{USER}" password="{password}";'
            ),
        }

    scenarios = {
        "sasl-ssl": sasl(PASSWORD),
        "mtls": {
            "bootstrap.servers": mtls_broker.bootstrap_for(SSL),
            "security.protocol": SSL,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": ca,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certs / f"{USER}.keystore.pem"),
        },
        "wrong-password": sasl(WRONG),
    }
    args = []
    for name, props in scenarios.items():
        path = work / f"{name}.properties"
        lines = [f"topic={new_topic('java')}", *(f"{k}={v}" for k, v in props.items())]
        path.write_text("\n".join(line.replace("\\", "\\\\") for line in lines) + "\n")
        args.append(f"{name}={path}")
    command = java_command(str(JAVA_SOURCE), *args)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, cwd=work, check=False
    )
    found: dict[str, dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            found[parsed["scenario"]] = parsed
    assert result.returncode == 0 and len(found) == len(scenarios), (
        result.stdout + result.stderr[-6000:]
    )
    return found


@pytest.mark.parametrize("scenario", ["sasl-ssl", "mtls"])
def test_java_round_trip(java_results: dict[str, dict[str, Any]], scenario: str) -> None:
    assert java_results[scenario].get("values") == EXPECTED, java_results[scenario]


def test_java_wrong_password(java_results: dict[str, dict[str, Any]]) -> None:
    refused = java_results["wrong-password"]
    assert "org.apache.kafka.common.errors.SaslAuthenticationException" in refused.get(
        "causes", []
    ), refused
