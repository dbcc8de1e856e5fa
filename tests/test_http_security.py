"""The HTTP services behind HTTPS and HTTP Basic: registry, console and broker metrics, with
real servers on loopback and real clients (httpx, confluent-kafka's SchemaRegistryClient),
plus the Basic parser and authenticator on their own."""

from __future__ import annotations

import base64
import json
import logging
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from headwater.broker._metrics import BrokerMetrics, MetricsServer
from headwater.client._registry_access import RegistryAccess
from headwater.client._schema_serde import registry_client
from headwater.console import ConsoleServer
from headwater.registry import RegistryServer
from headwater.security._certs import CertBundle, write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._errors import AuthenticationFailed
from headwater.security._http_auth import (
    AUTHORIZATION_BYTES_MAX,
    READ_WRITE,
    BasicAuth,
    parse_basic,
)
from headwater.security._scram import ScramCredential

WRITER, WRITER_PW = "alice", "alice-secret"
READER, READER_PW = "bob", "bob:secret"  # a colon in the password: split at the first one
SCHEMA = json.dumps({"type": "record", "name": "U", "fields": [{"name": "id", "type": "long"}]})
CT = "application/vnd.schemaregistry.v1+json"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return write_bundle(tmp_path_factory.mktemp("certs"), hosts=["127.0.0.1"], clients=[], days=30)


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    store = CredentialStore(credentials_path(tmp_path / "data"))
    store.upsert(WRITER, ScramCredential.from_password("SCRAM-SHA-512", WRITER_PW))
    # SCRAM-SHA-256 only: Basic falls back to it when there is no SHA-512 credential.
    store.upsert(READER, ScramCredential.from_password("SCRAM-SHA-256", READER_PW))
    return store


@pytest.fixture
def auth(store: CredentialStore) -> BasicAuth:
    return BasicAuth(store, {WRITER: READ_WRITE})


def https(certs: CertBundle, **kwargs: Any) -> httpx.Client:
    verify = ssl.create_default_context(cafile=certs.ca_certfile)
    return httpx.Client(verify=verify, timeout=30, **kwargs)


# -- BasicAuth without sockets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"alice:x").decode()[:-1],  # padding cut: not canonical
        "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b":pw").decode(),  # empty user
        "Basic " + base64.b64encode(b"alice:").decode(),  # empty password
        "Basic " + base64.b64encode(b"al\x00ice:pw").decode(),
        "Basic é",
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(AuthenticationFailed):
        parse_basic(header)


def test_parse_splits_at_the_first_colon_and_ignores_scheme_case() -> None:
    assert parse_basic("basic " + base64.b64encode(b"bob:a:b").decode()) == ("bob", "a:b")
    assert parse_basic(basic("zoë", "pässword").encode()) == ("zoë", "pässword")


def test_oversize_header_is_refused_before_decoding(auth: BasicAuth) -> None:
    header = basic(WRITER, "x" * AUTHORIZATION_BYTES_MAX)
    with pytest.raises(AuthenticationFailed, match="longer than"):
        auth.authenticate(header)


def test_unknown_user_and_wrong_password_fail_alike(auth: BasicAuth) -> None:
    with pytest.raises(AuthenticationFailed) as unknown:
        auth.authenticate(basic("mallory", WRITER_PW))
    with pytest.raises(AuthenticationFailed) as wrong:
        auth.authenticate(basic(WRITER, "guess"))
    assert str(unknown.value) == str(wrong.value)


def test_users_roles_and_sha256_fallback(auth: BasicAuth) -> None:
    assert auth.authenticate(basic(WRITER, WRITER_PW)) == WRITER
    assert auth.authenticate(basic(READER, READER_PW)) == READER
    assert auth.can_write(WRITER)
    assert not auth.can_write(READER)
    assert auth.role("someone-else") == "read-only"
    with pytest.raises(ValueError, match="role"):
        BasicAuth(auth.store, {WRITER: "admin"})


def test_a_changed_password_ends_a_remembered_login(
    auth: BasicAuth, store: CredentialStore
) -> None:
    assert auth.authenticate(basic(WRITER, WRITER_PW)) == WRITER  # now remembered
    store.upsert(WRITER, ScramCredential.from_password("SCRAM-SHA-512", "new-password"))
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(basic(WRITER, WRITER_PW))
    assert auth.authenticate(basic(WRITER, "new-password")) == WRITER
    store.delete(WRITER, "SCRAM-SHA-512")
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(basic(WRITER, "new-password"))


def test_failures_are_logged_rate_limited_without_the_password(
    store: CredentialStore, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    auth = BasicAuth(store, clock=lambda: now[0], failure_log_interval_s=10)
    with caplog.at_level(logging.WARNING, logger="headwater.security._http_auth"):
        for _ in range(5):
            with pytest.raises(AuthenticationFailed):
                auth.authenticate(basic(WRITER, "hunter2"))
        now[0] = 11.0
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(basic(WRITER, "hunter2"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "suppressed=4" in lines[1]
    assert all("hunter2" not in line for line in lines)


# -- the registry ---------------------------------------------------------------------------------


@pytest.fixture
def registry(bootstrap: str, certs: CertBundle, auth: BasicAuth) -> Iterator[RegistryServer]:
    server = RegistryServer(
        bootstrap,
        port=0,
        ssl_certfile=certs.server_certfile,
        ssl_keyfile=certs.server_keyfile,
        auth=auth,
    )
    with server:
        yield server


def test_registry_requires_credentials(registry: RegistryServer, certs: CertBundle) -> None:
    assert registry.url.startswith("https://")
    with https(certs) as http:
        answer = http.get(f"{registry.url}/subjects")
        assert answer.status_code == 401
        assert answer.json()["error_code"] == 40101
        assert isinstance(answer.json()["message"], str)
        assert answer.headers["www-authenticate"].startswith('Basic realm="headwater"')
        wrong = http.get(f"{registry.url}/subjects", auth=(WRITER, "wrong"))
        assert wrong.status_code == 401
        assert wrong.json()["error_code"] == 40101


def test_registry_roles(registry: RegistryServer, certs: CertBundle) -> None:
    body = {"schema": SCHEMA}
    with https(certs, auth=(READER, READER_PW)) as reader:
        assert reader.get(f"{registry.url}/subjects").json() == []
        refused = reader.post(f"{registry.url}/subjects/u-value/versions", json=body)
        assert refused.status_code == 403
        assert refused.json()["error_code"] == 40301
    with https(certs, auth=(WRITER, WRITER_PW)) as writer:
        registered = writer.post(
            f"{registry.url}/subjects/u-value/versions", json=body, headers={"Content-Type": CT}
        )
        assert registered.status_code == 200, registered.text
        assert registered.json()["id"] == 1
    with https(certs, auth=(READER, READER_PW)) as reader:
        assert reader.get(f"{registry.url}/subjects").json() == ["u-value"]


def test_confluent_client_with_basic_auth_and_ca(
    registry: RegistryServer, certs: CertBundle
) -> None:
    client = SchemaRegistryClient(
        {
            "url": registry.url,
            "basic.auth.user.info": f"{WRITER}:{WRITER_PW}",
            "ssl.ca.location": str(certs.ca_certfile),
        }
    )
    try:
        schema_id = client.register_schema("c-value", Schema(SCHEMA, "AVRO"))
        assert json.loads(client.get_schema(schema_id).schema_str) == json.loads(SCHEMA)
        assert client.get_latest_version("c-value").schema_id == schema_id
    finally:
        client.close()


def test_package_registry_client_reads_the_environment(
    registry: RegistryServer, certs: CertBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_REGISTRY_AUTH", f"{READER}:{READER_PW}")
    monkeypatch.setenv("HEADWATER_REGISTRY_CA", str(certs.ca_certfile))
    client = registry_client(registry.url)
    try:
        assert client.get_subjects() == []
    finally:
        client.close()
    assert "secret" not in repr(RegistryAccess.resolve())


def test_plain_http_against_the_https_port_fails(registry: RegistryServer) -> None:
    plain = registry.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/subjects", auth=(WRITER, WRITER_PW), timeout=10)


def test_https_without_the_ca_fails(registry: RegistryServer) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{registry.url}/subjects", auth=(WRITER, WRITER_PW), timeout=10)


def test_registry_command_with_https_and_users(
    bootstrap: str, certs: CertBundle, store: CredentialStore
) -> None:
    command = [
        *(sys.executable, "-m", "headwater", "registry", "--port", "0", "-b", bootstrap),
        *("--ssl-certfile", str(certs.server_certfile)),
        *("--ssl-keyfile", str(certs.server_keyfile)),
        *("--users-file", str(store.path), "--read-write-user", WRITER),
    ]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"ready on (https://127\.0\.0\.1:\d+)", line)
        assert found, line
        url = found.group(1)
        with https(certs) as http:
            assert http.get(f"{url}/subjects").status_code == 401
            body = {"schema": SCHEMA}
            answer = http.post(f"{url}/subjects/s/versions", json=body, auth=(READER, READER_PW))
            assert answer.status_code == 403
            answer = http.post(f"{url}/subjects/s/versions", json=body, auth=(WRITER, WRITER_PW))
            assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        if proc.stderr is not None:
            proc.stderr.close()


# -- the console ----------------------------------------------------------------------------------


class _Source:
    def snapshot(self) -> dict[str, Any]:
        return {"time_ms": 1, "uptime_s": 0.0}


def test_console_over_https_with_basic(certs: CertBundle, auth: BasicAuth) -> None:
    server = ConsoleServer(
        _Source(), ssl_certfile=certs.server_certfile, ssl_keyfile=certs.server_keyfile, auth=auth
    )
    with server, https(certs) as http:
        assert server.url.startswith("https://")
        refused = http.get(f"{server.url}/api/metrics")
        assert refused.status_code == 401
        assert "www-authenticate" in refused.headers
        assert http.get(f"{server.url}/api/health").status_code == 200  # for load balancers
        for user, password in ((READER, READER_PW), (WRITER, WRITER_PW)):
            answer = http.get(f"{server.url}/api/metrics", auth=(user, password))
            assert answer.status_code == 200
            assert answer.json()["time_ms"] == 1
        assert http.get(f"{server.url}/", auth=(READER, READER_PW)).status_code == 200


# -- the broker's metrics endpoint ----------------------------------------------------------------


def test_metrics_over_https_with_basic(certs: CertBundle, auth: BasicAuth) -> None:
    metrics = BrokerMetrics()
    metrics.connections_accepted.inc()
    server = MetricsServer(
        metrics.registry,
        "127.0.0.1",
        0,
        certfile=certs.server_certfile,
        keyfile=certs.server_keyfile,
        auth=auth,
    )
    try:
        assert server.url.startswith("https://")
        with https(certs) as http:
            refused = http.get(server.url)
            assert refused.status_code == 401
            assert refused.json()["error_code"] == 40101
            assert http.get(server.url, auth=(READER, "wrong")).status_code == 401
            answer = http.get(server.url, auth=(READER, READER_PW))
            assert answer.status_code == 200
            assert "headwater_broker_connections_accepted_total 1.0" in answer.text
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https://", "http://"), timeout=10)
        # A failed handshake costs one worker thread, not the server: it still answers.
        with https(certs) as http:
            assert http.get(server.url, auth=(WRITER, WRITER_PW)).status_code == 200
    finally:
        server.close()


def test_metrics_defaults_are_plain_http_without_auth() -> None:
    server = MetricsServer(BrokerMetrics().registry, "127.0.0.1", 0)
    try:
        assert server.url.startswith("http://")
        assert httpx.get(server.url, timeout=10).status_code == 200
    finally:
        server.close()


def test_broker_serves_its_metrics_over_https_to_its_users(
    tmp_path: Path, certs: CertBundle, store: CredentialStore
) -> None:
    from headwater.testing import embedded_broker

    with embedded_broker(
        tmp_path / "data",
        metrics_port=0,
        metrics_ssl_certfile=certs.server_certfile,
        metrics_ssl_keyfile=certs.server_keyfile,
        metrics_basic_auth=True,
    ) as running:
        server = running.broker.metrics_server
        assert server is not None
        with https(certs) as http:
            assert http.get(server.url).status_code == 401
            answer = http.get(server.url, auth=(WRITER, WRITER_PW))
            assert answer.status_code == 200
            assert "headwater_broker_connections_active" in answer.text
