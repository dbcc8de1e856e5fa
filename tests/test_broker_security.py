"""Listeners, TLS and SASL on a real broker, driven by confluent-kafka over loopback sockets.

One broker with four listeners (PLAINTEXT, SSL with optional client certificates,
SASL_PLAINTEXT, SASL_SSL); users are made in its credential store before it starts, as
``headwater users add --data-dir`` does. Each refusal a user can meet has its test: a wrong
password, an unknown user, an untrusted server or client certificate, an expired client
certificate, a request before authentication, an oversized frame before authentication.
"""

from __future__ import annotations

import datetime
import logging
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from headwater.broker import BrokerConfig, BrokerThread
from headwater.security._certs import CertifiedKey, create_client_certificate, write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker
from rawkafka import encode_request

PASSWORD = "alice-secret"
LISTENERS = (
    "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    write_bundle(out, hosts=["localhost", "127.0.0.1"], clients=["alice", "mallory"], days=30)
    other = tmp_path_factory.mktemp("other-ca")
    write_bundle(other, hosts=["localhost", "127.0.0.1"], clients=["eve"], days=30)
    for name in ("ca.pem", "eve.pem", "eve.key"):
        (out / f"other-{name}").write_bytes((other / name).read_bytes())
    return out


def add_user(data_dir: Path, user: str, password: str) -> None:
    store = CredentialStore(credentials_path(data_dir))
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        store.upsert(user, ScramCredential.from_password(mechanism, password, 4096))


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[BrokerThread]:
    data = tmp_path_factory.mktemp("secure-broker")
    add_user(data, "alice", PASSWORD)
    with embedded_broker(
        data,
        listeners=LISTENERS,
        ssl_certfile=certs / "server.pem",
        ssl_keyfile=certs / "server.key",
        ssl_cafile=certs / "ca.pem",
        ssl_client_auth="requested",
        connection_failed_authentication_delay_ms=10,
    ) as running:
        yield running


def client_config(broker: BrokerThread, listener: str, certs: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": broker.bootstrap_for(listener),
        "security.protocol": listener,
    }
    if "SSL" in listener:
        config["ssl.ca.location"] = str(certs / "ca.pem")
    if "SASL" in listener:
        config.update(
            {
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "alice",
                "sasl.password": PASSWORD,
            }
        )
    config.update(extra)
    return config


def round_trip(config: dict[str, Any]) -> list[bytes]:
    """Produce three records and consume them back over the given settings."""
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    producer = Producer({**config, "acks": "all"})
    for i in range(3):
        producer.produce(topic, f"record-{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(values) < 3 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value())
    consumer.close()
    return values


def first_error(config: dict[str, Any], seconds: float = 15) -> KafkaError:
    """The first error a producer meets with these settings (it never gets connected)."""
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "retries": 0})
    producer.produce("never", b"x")
    deadline = time.monotonic() + seconds
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    producer.purge()
    producer.flush(1)
    assert errors, "the client was never refused"
    return errors[0]


EXPECTED = [b"record-0", b"record-1", b"record-2"]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_sasl_ssl_round_trip(secure: BrokerThread, certs: Path, mechanism: str) -> None:
    config = client_config(secure, "SASL_SSL", certs, **{"sasl.mechanism": mechanism})
    assert round_trip(config) == EXPECTED


def test_sasl_plaintext_round_trip(secure: BrokerThread, certs: Path) -> None:
    assert round_trip(client_config(secure, "SASL_PLAINTEXT", certs)) == EXPECTED


def test_ssl_round_trip_with_and_without_a_client_certificate(
    secure: BrokerThread, certs: Path
) -> None:
    assert round_trip(client_config(secure, "SSL", certs)) == EXPECTED
    mutual = client_config(
        secure,
        "SSL",
        certs,
        **{
            "ssl.certificate.location": str(certs / "alice.pem"),
            "ssl.key.location": str(certs / "alice.key"),
        },
    )
    assert round_trip(mutual) == EXPECTED


def test_each_listener_advertises_itself(secure: BrokerThread, certs: Path) -> None:
    ports = set()
    for listener in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        admin = AdminClient(client_config(secure, listener, certs))
        metadata = admin.list_topics(timeout=20)
        (broker,) = metadata.brokers.values()
        assert f"{broker.host}:{broker.port}" == secure.bootstrap_for(listener)
        ports.add(broker.port)
    assert len(ports) == 4


def test_wrong_password_is_refused(secure: BrokerThread, certs: Path) -> None:
    config = client_config(secure, "SASL_SSL", certs, **{"sasl.password": "wrong"})
    error = first_error(config)
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "invalid credentials" in error.str().lower() or "authentication" in error.str().lower()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_unknown_user_is_refused(secure: BrokerThread, certs: Path, mechanism: str) -> None:
    config = client_config(
        secure,
        "SASL_PLAINTEXT",
        certs,
        **{"sasl.username": "nobody", "sasl.mechanism": mechanism},
    )
    assert first_error(config).code() == KafkaError._AUTHENTICATION


def test_a_mechanism_the_broker_does_not_offer_is_refused(
    secure: BrokerThread, certs: Path
) -> None:
    config = client_config(
        secure,
        "SASL_PLAINTEXT",
        certs,
        **{
            "sasl.mechanism": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice",
        },
    )
    error = first_error(config)
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "SCRAM-SHA-512" in error.str(), error  # the broker lists what it offers


def test_a_server_certificate_from_another_ca_is_refused(secure: BrokerThread, certs: Path) -> None:
    config = client_config(secure, "SSL", certs, **{"ssl.ca.location": str(certs / "other-ca.pem")})
    error = first_error(config)
    assert error.code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._AUTHENTICATION)
    assert "certificate verify failed" in error.str().lower(), error


def test_authentication_failures_are_counted(secure: BrokerThread, certs: Path) -> None:
    first_error(client_config(secure, "SASL_PLAINTEXT", certs, **{"sasl.password": "bad"}))
    metric = secure.broker.metrics.authentications
    assert metric.labels("SASL_PLAINTEXT", "SCRAM-SHA-512", "failure")._value.get() >= 1


def raw_connection(broker: BrokerThread, listener: str) -> socket.socket:
    host, port = broker.bootstrap_for(listener).rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_a_request_before_authentication_closes_the_connection(secure: BrokerThread) -> None:
    with raw_connection(secure, "SASL_PLAINTEXT") as sock:
        sock.sendall(encode_request(3, 12, {"topics": None}))
        assert closed_by_peer(sock)


def test_apiversions_is_answered_before_authentication(secure: BrokerThread) -> None:
    with raw_connection(secure, "SASL_PLAINTEXT") as sock:
        sock.sendall(encode_request(18, 3, {}))
        (size,) = struct.unpack(">i", sock.recv(4))
        assert size > 8


def test_a_large_frame_before_authentication_closes_the_connection(
    secure: BrokerThread,
) -> None:
    limit = secure.config.sasl_server_max_receive_size
    with raw_connection(secure, "SASL_PLAINTEXT") as sock:
        sock.sendall(struct.pack(">i", limit + 1) + b"\x00" * 64)
        assert closed_by_peer(sock)


def test_client_certificates_required(
    tmp_path: Path, certs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ssl_client_auth=required: no certificate, another CA's, or an expired one: refused,
    with the TLS alert that tells the client why, and the reason in the broker's log."""
    ca = CertifiedKey(
        serialization.load_pem_private_key((certs / "ca.key").read_bytes(), None),
        x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes()),
    )
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = create_client_certificate(ca, "late", days=1, not_valid_before=long_ago)
    (tmp_path / "late.pem").write_bytes(expired.certificate_pem())
    (tmp_path / "late.key").write_bytes(expired.key_pem())
    with embedded_broker(
        tmp_path / "data",
        listeners="SSL://127.0.0.1:0",
        ssl_certfile=certs / "server.pem",
        ssl_keyfile=certs / "server.key",
        ssl_cafile=certs / "ca.pem",
        ssl_client_auth="required",
    ) as running:
        base = client_config(running, "SSL", certs)
        good = {
            **base,
            "ssl.certificate.location": str(certs / "alice.pem"),
            "ssl.key.location": str(certs / "alice.key"),
        }
        assert round_trip(good) == EXPECTED
        for cert, key, alert, reason in (
            (None, None, "certificate required", "peer did not return a certificate"),
            (
                certs / "other-eve.pem",
                certs / "other-eve.key",
                "unknown ca",
                "unable to get local issuer certificate",
            ),
            (tmp_path / "late.pem", tmp_path / "late.key", "certificate expired", "expired"),
        ):
            config = dict(base)
            if cert is not None:
                config["ssl.certificate.location"] = str(cert)
                config["ssl.key.location"] = str(key)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="headwater"):
                error = first_error(config)
            assert error.code() in (
                KafkaError._SSL,
                KafkaError._TRANSPORT,
                KafkaError._ALL_BROKERS_DOWN,
            ), error
            assert alert in error.str().lower(), error  # the client learns why
            logged = [r.getMessage() for r in caplog.records]
            assert any("TLS handshake refused" in m and reason in m for m in logged), logged


def test_an_exposed_listener_without_authentication_is_refused(tmp_path: Path) -> None:
    for listeners in ("PLAINTEXT://0.0.0.0:0", "SSL://0.0.0.0:0"):
        config = BrokerConfig(
            data_dir=tmp_path,
            listeners=listeners,
            ssl_certfile=tmp_path / "c",
            ssl_keyfile=tmp_path / "k",
        )
        with pytest.raises(ValueError, match="allow-anonymous"):
            config.validate()
    BrokerConfig(
        data_dir=tmp_path, listeners="PLAINTEXT://0.0.0.0:0", allow_anonymous=True
    ).validate()
    BrokerConfig(data_dir=tmp_path, listeners="SASL_PLAINTEXT://0.0.0.0:0").validate()


def test_scram_users_are_managed_over_the_admin_api(secure: BrokerThread, certs: Path) -> None:
    from headwater.client import ScramUsers

    admin = ScramUsers(
        secure.bootstrap_for("SASL_SSL"),
        {
            k: v
            for k, v in client_config(secure, "SASL_SSL", certs).items()
            if k != "bootstrap.servers"
        },
    )
    admin.upsert("bob", "bob-secret", ["SCRAM-SHA-256"], 4096)
    assert admin.describe(["bob"]) == {"bob": [("SCRAM-SHA-256", 4096)]}
    bob = client_config(
        secure,
        "SASL_PLAINTEXT",
        certs,
        **{
            "sasl.username": "bob",
            "sasl.password": "bob-secret",
            "sasl.mechanism": "SCRAM-SHA-256",
        },
    )
    assert round_trip(bob) == EXPECTED
    admin.delete("bob", ["SCRAM-SHA-256"])
    assert "bob" not in admin.describe()
    assert first_error(bob).code() == KafkaError._AUTHENTICATION
    assert "alice" in admin.describe()


def test_sessions_are_reauthenticated(tmp_path: Path, certs: Path) -> None:
    """KIP-368: with a 1 s session lifetime, a client that keeps working re-authenticates."""
    add_user(tmp_path / "data", "alice", PASSWORD)
    with embedded_broker(
        tmp_path / "data",
        listeners="SASL_PLAINTEXT://127.0.0.1:0",
        connections_max_reauth_ms=1000,
    ) as running:
        config = client_config(running, "SASL_PLAINTEXT", certs)
        topic = "reauth"
        producer = Producer({**config, "acks": "all", "linger.ms": 0})
        deadline = time.monotonic() + 4
        sent = 0
        while time.monotonic() < deadline:
            producer.produce(topic, b"x")
            producer.poll(0.1)
            sent += 1
        assert producer.flush(30) == 0
        metric = running.broker.metrics.authentications
        successes = metric.labels("SASL_PLAINTEXT", "SCRAM-SHA-512", "success")._value.get()
        assert successes >= 3  # the first login, then at least two re-authentications
        assert sent > 0


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exactly(sock, 4))
    return recv_exactly(sock, size)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


@pytest.mark.parametrize(("password", "accepted"), [(PASSWORD, True), ("wrong", False)])
def test_sasl_handshake_v0_takes_bare_tokens(
    secure: BrokerThread, password: str, accepted: bool
) -> None:
    """SaslHandshake v0 (older clients): the tokens follow as bare size-prefixed frames."""
    with raw_connection(secure, "SASL_PLAINTEXT") as sock:
        sock.sendall(encode_request(17, 0, {"mechanism": "PLAIN"}))
        answer = read_frame(sock)
        assert struct.unpack_from(">h", answer, 4)[0] == 0  # after the correlation id
        token = f"\0alice\0{password}".encode()
        sock.sendall(struct.pack(">i", len(token)) + token)
        if not accepted:
            assert closed_by_peer(sock)
            return
        assert read_frame(sock) == b""  # PLAIN's server token is empty
        sock.sendall(encode_request(3, 12, {"topics": None}))
        assert len(read_frame(sock)) > 8  # authenticated: Metadata is answered


def test_a_connection_that_never_starts_tls_is_closed(tmp_path: Path, certs: Path) -> None:
    """ssl_handshake_timeout_ms: a client that connects and sends nothing loses its socket,
    and the listener keeps serving others meanwhile."""
    with embedded_broker(
        tmp_path / "data",
        listeners="SSL://127.0.0.1:0",
        ssl_certfile=certs / "server.pem",
        ssl_keyfile=certs / "server.key",
        ssl_handshake_timeout_ms=300,
    ) as running:
        silent = [raw_connection(running, "SSL") for _ in range(20)]
        assert round_trip(client_config(running, "SSL", certs)) == EXPECTED
        for sock in silent:
            with sock:
                sock.settimeout(30)
                assert closed_by_peer(sock)
