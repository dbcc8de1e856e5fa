"""The client security profile: one properties file secures every client the package makes.

``HEADWATER_CLIENT_CONFIG`` names a Kafka-style properties file; the CLI's client commands,
the client layer's producers, consumers and admin clients, and so the streams runtime and the
sinks, all connect with it. Tested end to end against a SASL_SSL-only broker.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.broker import BrokerThread
from headwater.client import (
    Admin,
    ClientConfigError,
    client_security,
    new_consumer,
    new_producer,
    set_client_security,
    with_security,
)
from headwater.security._certs import write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerThread, Path]]:
    root = tmp_path_factory.mktemp("client-security")
    write_bundle(root / "certs", hosts=["127.0.0.1"], clients=[], days=30)
    store = CredentialStore(credentials_path(root / "data"))
    store.upsert("app", ScramCredential.from_password("SCRAM-SHA-512", "app-secret", 4096))
    properties = root / "client.properties"
    properties.write_text(
        "# what every client needs for this cluster\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.username=app\n"
        "sasl.password=app-secret\n"
        f"ssl.ca.location={root / 'certs' / 'ca.pem'}\n"
    )
    with embedded_broker(
        root / "data",
        listeners="SASL_SSL://127.0.0.1:0",
        ssl_certfile=root / "certs" / "server.pem",
        ssl_keyfile=root / "certs" / "server.key",
    ) as running:
        yield running, properties


def headwater(properties: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEADWATER_CLIENT_CONFIG": str(properties)}
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_cli_commands_use_the_profile(secured: tuple[BrokerThread, Path]) -> None:
    broker, properties = secured
    bootstrap = broker.bootstrap_for("SASL_SSL")
    made = headwater(properties, "topics", "create", "profiled", "-b", bootstrap)
    assert made.returncode == 0, made.stderr
    sent = headwater(properties, "produce", "profiled", "-b", bootstrap, stdin="one\ntwo\n")
    assert sent.returncode == 0, sent.stderr
    read = headwater(
        properties, "consume", "profiled", "-b", bootstrap, "--from-beginning", "-n", "2"
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["one", "two"]
    users = headwater(properties, "users", "list", "-b", bootstrap)
    assert users.returncode == 0, users.stderr
    assert "app" in users.stdout and "SCRAM-SHA-512" in users.stdout


def test_without_the_profile_the_broker_refuses(secured: tuple[BrokerThread, Path]) -> None:
    broker, _ = secured
    empty = secured[1].with_name("empty.properties")
    empty.write_text("")
    listed = headwater(empty, "topics", "list", "-b", broker.bootstrap_for("SASL_SSL"))
    assert listed.returncode != 0


def test_library_clients_use_the_profile(
    secured: tuple[BrokerThread, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, properties = secured
    bootstrap = broker.bootstrap_for("SASL_SSL")
    monkeypatch.setenv("HEADWATER_CLIENT_CONFIG", str(properties))
    Admin(bootstrap).create_topic("library", 1, {})
    producer = new_producer(bootstrap)
    producer.produce("library", b"hello")
    assert producer.flush(30) == 0
    consumer = new_consumer(bootstrap, "library-readers", {"auto.offset.reset": "earliest"})
    consumer.subscribe(["library"])
    message = None
    for _ in range(60):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            break
    consumer.close()
    assert message is not None and message.value() == b"hello"


def test_explicit_settings_win_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.properties"
    path.write_text("security.protocol=SSL\nssl.ca.location=/a\n")
    monkeypatch.setenv("HEADWATER_CLIENT_CONFIG", str(path))
    assert client_security() == {"security.protocol": "SSL", "ssl.ca.location": "/a"}
    set_client_security({"ssl.ca.location": "/b"})
    try:
        assert client_security()["ssl.ca.location"] == "/b"
        config = with_security({"bootstrap.servers": "x:1", "security.protocol": "SASL_SSL"})
        assert config["security.protocol"] == "SASL_SSL"  # one client's own setting wins
    finally:
        set_client_security(None)
    path.write_text("not a property line\n")
    with pytest.raises(ClientConfigError, match="is not key=value"):
        client_security()


def test_protocol_level_commands_log_in_with_the_profile(
    secured: tuple[BrokerThread, Path],
) -> None:
    """``headwater transactions`` and ``headwater quotas`` speak the protocol themselves: TLS
    and a SCRAM login from the same profile."""
    broker, properties = secured
    bootstrap = broker.bootstrap_for("SASL_SSL")
    listed = headwater(properties, "transactions", "list", "-b", bootstrap)
    assert listed.returncode == 0, listed.stderr
    made = headwater(
        properties,
        "quotas",
        "set",
        "--user",
        "app",
        "--producer-byte-rate",
        "1048576",
        "-b",
        bootstrap,
    )
    assert made.returncode == 0, made.stderr
    quotas = headwater(properties, "quotas", "list", "-b", bootstrap)
    assert quotas.returncode == 0, quotas.stderr
    assert "1048576" in quotas.stdout.replace(",", "")
    wrong = properties.with_name("wrong.properties")
    wrong.write_text(properties.read_text().replace("app-secret", "not-it"))
    refused = headwater(wrong, "transactions", "list", "-b", bootstrap)
    assert refused.returncode != 0
    assert "login" in refused.stderr and "failed" in refused.stderr, refused.stderr


def test_the_scram_client_logs_in_to_the_scram_server() -> None:
    from headwater.security._errors import AuthenticationFailed
    from headwater.security._scram import ScramServer
    from headwater.security._scram_client import ScramClient

    credential = ScramCredential.from_password("SCRAM-SHA-256", "pw", 4096)

    def lookup(user: str, mechanism: str) -> ScramCredential | None:
        return credential if user == "u" and mechanism == "SCRAM-SHA-256" else None

    client, server = ScramClient("SCRAM-SHA-256", "u", "pw"), ScramServer("SCRAM-SHA-256", lookup)
    client.verify(server.final(client.final(server.first(client.first()))))
    assert server.done and server.username == "u"
    # A server that does not hold the credential cannot sign the exchange.
    client = ScramClient("SCRAM-SHA-256", "u", "pw")
    client.final(ScramServer("SCRAM-SHA-256", lookup).first(client.first()))
    with pytest.raises(AuthenticationFailed, match="signature"):
        client.verify(b"v=" + base64.b64encode(bytes(32)))
