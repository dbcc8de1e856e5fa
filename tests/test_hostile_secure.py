"""A broker process with SASL and TLS listeners under attack keeps serving a logged-in client.

Before authentication only ApiVersions and the SASL requests are accepted, frames are capped
at sasl_server_max_receive_size, and TLS handshakes are bounded in time: mutated requests,
a frame announcing 2 GB, connections that never start TLS and 10,000 connections sending
garbage to a TLS port are each closed, and a normal client that logs in keeps working, with
bounded memory.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from headwater.security._certs import write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import BrokerProcess

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

from hostile import load_seeds, run_hostile

PASSWORD = "hostile-secret"
RSS_GROWTH_MB_MAX = 64
ROUNDS = 4
FRAMES_PER_ROUND = 300
GARBAGE_CONNECTIONS = 10_000
AT_ONCE = 500


class Secured:
    def __init__(self, process: BrokerProcess, certs: Path) -> None:
        self.process = process
        self.certs = certs
        found = re.search(r"listener SASL_SSL on ([\d.]+):(\d+)", "".join(process.log))
        assert found, process.log
        self.tls_port = int(found.group(2))

    def client(self, listener: str) -> dict[str, Any]:
        port = self.process.port if listener == "SASL_PLAINTEXT" else self.tls_port
        config: dict[str, Any] = {
            "bootstrap.servers": f"127.0.0.1:{port}",
            "security.protocol": listener,
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "alice",
            "sasl.password": PASSWORD,
        }
        if listener == "SASL_SSL":
            config["ssl.ca.location"] = str(self.certs / "ca.pem")
        return config


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("hostile-secure")
    write_bundle(root / "certs", hosts=["127.0.0.1"], clients=[], days=30)
    store = CredentialStore(credentials_path(root / "data"))
    store.upsert("alice", ScramCredential.from_password("SCRAM-SHA-512", PASSWORD))
    env = {"HEADWATER_SSL_HANDSHAKE_TIMEOUT_MS": "1000"}
    args = (
        "--listeners",
        "SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "--ssl-certfile",
        str(root / "certs" / "server.pem"),
        "--ssl-keyfile",
        str(root / "certs" / "server.key"),
        "--metrics-port",
        "0",
    )
    with BrokerProcess(root / "data", *args, env=env) as running:
        yield Secured(running, root / "certs")


def rss_mb(broker: BrokerProcess) -> float:
    assert broker.process is not None
    for line in Path(f"/proc/{broker.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def metric(broker: BrokerProcess, name: str) -> float:
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def logged_in_round(config: dict[str, Any]) -> None:
    """Log in, produce ten records and consume exactly them back."""
    topic = f"steady-{uuid.uuid4().hex[:6]}"
    producer = Producer({**config, "acks": "all"})
    for i in range(10):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": "none", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < 10 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
        assert values == [f"v{i}".encode() for i in range(10)]
    finally:
        consumer.close()


def wait_for(predicate: Any, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_mutated_frames_before_authentication(secured: Secured) -> None:
    broker = secured.process
    logged_in_round(secured.client("SASL_PLAINTEXT"))
    baseline = rss_mb(broker)
    seeds = load_seeds()
    for round_no in range(1, ROUNDS + 1):
        outcome = asyncio.run(
            run_hostile("127.0.0.1", broker.port, FRAMES_PER_ROUND, seed=round_no, seeds=seeds)
        )
        assert broker.process is not None and broker.process.poll() is None, broker.log[-20:]
        assert outcome.total == FRAMES_PER_ROUND and outcome.refused == 0
        logged_in_round(secured.client("SASL_PLAINTEXT"))
    # Nothing got past the session rules into a handler it should not reach, nor raised.
    assert metric(broker, "headwater_broker_requests_rejected_total{api") > 0
    handler_errors = 'headwater_broker_connections_closed_total{reason="handler_error"}'
    assert metric(broker, handler_errors) == 0, "".join(broker.log[-40:])
    assert wait_for(lambda: metric(broker, "headwater_broker_connections_active") == 0)
    assert rss_mb(broker) < baseline + RSS_GROWTH_MB_MAX


def test_a_two_gigabyte_frame_before_authentication_is_refused_at_once(
    secured: Secured,
) -> None:
    with socket.create_connection(("127.0.0.1", secured.process.port), timeout=30) as sock:
        sock.sendall(struct.pack(">i", 2**31 - 1) + b"\x00\x11\x00\x01")
        assert sock.recv(4) == b""


def test_connections_that_never_start_tls_are_closed(secured: Secured) -> None:
    silent = [
        socket.create_connection(("127.0.0.1", secured.tls_port), timeout=30) for _ in range(200)
    ]
    logged_in_round(secured.client("SASL_SSL"))  # served meanwhile
    for sock in silent:
        with sock:
            assert sock.recv(4) == b""  # closed by the broker once the handshake timed out


def test_ten_thousand_garbage_connections_to_a_tls_port(secured: Secured) -> None:
    broker = secured.process
    baseline = rss_mb(broker)

    async def flood() -> int:
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(i: int) -> bool:
            async with gate:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", secured.tls_port)
                except OSError:
                    return True  # refused at the door counts as refused
                writer.write(bytes((i + j) % 256 for j in range(64)))
                try:
                    data = await asyncio.wait_for(reader.read(4096), 30)
                    while data:  # an alert may come before the end of the stream
                        data = await asyncio.wait_for(reader.read(4096), 30)
                except (ConnectionError, TimeoutError):
                    pass
                writer.close()
                return True

        results = await asyncio.gather(*(one(i) for i in range(GARBAGE_CONNECTIONS)))
        return sum(results)

    assert asyncio.run(flood()) == GARBAGE_CONNECTIONS
    assert broker.process is not None and broker.process.poll() is None, broker.log[-20:]
    logged_in_round(secured.client("SASL_SSL"))
    refused = 'headwater_broker_connections_closed_total{reason="tls_handshake"}'
    assert metric(broker, refused) >= GARBAGE_CONNECTIONS * 0.9
    assert wait_for(lambda: metric(broker, "headwater_broker_connections_active") == 0)
    assert rss_mb(broker) < baseline + RSS_GROWTH_MB_MAX
