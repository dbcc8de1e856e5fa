"""What TLS and SASL cost: throughput over PLAINTEXT, SSL and SASL_SSL, and logins per second.

    .venv/bin/python bench/security.py [--records 1000000] [--handshake-seconds 5]
                                       [--handshake-clients 8]

One headwater broker child process (default fsync policy, acks=all answered after fsync) with
four listeners on 127.0.0.1: PLAINTEXT, SSL, SASL_SSL and SASL_PLAINTEXT (the last only for
the login figures), a development CA and server certificate from ``headwater certs``' code, and
one SCRAM-SHA-512 user (4096 iterations) written into its credential store before it starts.

Throughput: bench/broker.py's own produce (acks=all, 100-byte records, linger.ms=5, lz4) and
consume-through-a-group functions, run once per listener with the listener's security
settings added to their confluent-kafka configuration, each on its own topic of one partition.

Logins: a small asyncio client opens fresh connections from several concurrent tasks for a
fixed time and counts those that complete, per row: PLAINTEXT and SSL (TCP or TLS handshake
plus ApiVersions), SASL_PLAINTEXT and SASL_SSL (ApiVersions, SaslHandshake and two
SaslAuthenticate round trips of SCRAM-SHA-512 per RFC 5802). The client caches SaltedPassword
per salt and iteration count (RFC 5802 section 5.1 allows it), so the figure is the broker's;
one row pays the client's PBKDF2 on every login, as librdkafka does. Broker CPU is read from
/proc for every step. Prints the tables and whether TLS and SASL_SSL reach 0.7 of plaintext.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil
import ssl
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from confluent_kafka import Consumer, Producer

sys.path.insert(0, str(Path(__file__).parent))
import broker as base  # bench/broker.py: produce, consume, create_topic
from headwater.security._certs import write_bundle
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import BrokerProcess

USER, PASSWORD = "bench", "bench-secret"
MECHANISM, ITERATIONS = "SCRAM-SHA-512", 4096
LISTENERS = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT")
THROUGHPUT_LISTENERS = ("PLAINTEXT", "SSL", "SASL_SSL")
TARGET = 0.7
_LISTENER_LINE = re.compile(r"listener (\S+) on (\S+):(\d+)")
_READY_LINE = re.compile(r"ready on (\S+):(\d+)")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class SecureBroker:
    process: BrokerProcess
    ports: dict[str, int]
    certs: Path
    data: Path

    def bootstrap(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def client_settings(self, listener: str) -> dict[str, Any]:
        """The confluent-kafka settings that differ between listeners."""
        settings: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap(listener),
            "security.protocol": listener,
        }
        if "SSL" in listener:
            settings["ssl.ca.location"] = str(self.certs / "ca.pem")
        if "SASL" in listener:
            settings.update(
                {"sasl.mechanism": MECHANISM, "sasl.username": USER, "sasl.password": PASSWORD}
            )
        return settings

    def cpu_s(self) -> float:
        """User plus system CPU seconds the broker process has used so far."""
        assert self.process.process is not None
        stat = Path(f"/proc/{self.process.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def start_secure_broker(work: Path) -> Iterator[SecureBroker]:
    certs = work / "certs"
    write_bundle(certs, hosts=["localhost", "127.0.0.1"], days=2)
    data = work / "data"
    CredentialStore(credentials_path(data)).upsert(
        USER, ScramCredential.from_password(MECHANISM, PASSWORD, ITERATIONS)
    )
    process = BrokerProcess(
        data,
        "--listeners",
        ",".join(f"{name}://127.0.0.1:0" for name in LISTENERS),
        "--ssl-certfile",
        str(certs / "server.pem"),
        "--ssl-keyfile",
        str(certs / "server.key"),
        "--ssl-cafile",
        str(certs / "ca.pem"),
        # The broker as a plain install runs it (no Hypothesis), as bench/broker.py starts it.
        launcher=(sys.executable, str(Path(__file__).parent / "_plain_broker.py")),
    )
    with process:
        ports: dict[str, int] = {}
        for line in process.log:
            if found := _LISTENER_LINE.search(line):
                ports[found.group(1)] = int(found.group(3))
            elif found := _READY_LINE.search(line):
                ports[LISTENERS[0]] = int(found.group(2))
        missing = set(LISTENERS) - set(ports)
        if missing:
            raise RuntimeError(f"listeners {missing} not announced:\n{''.join(process.log)}")
        yield SecureBroker(process, ports, certs, data)


@contextlib.contextmanager
def secured(settings: dict[str, Any]) -> Iterator[None]:
    """bench/broker.py's clients, with ``settings`` laid over the configuration they build.

    Its produce() and consume() make their Producer and Consumer from module globals; swapping
    those keeps every other setting and the timing code exactly as that benchmark has them.
    """

    def producer(config: dict[str, Any]) -> Producer:
        return Producer({**config, **settings})

    def consumer(config: dict[str, Any]) -> Consumer:
        return Consumer({**config, **settings})

    with (
        mock.patch.object(base, "Producer", producer),
        mock.patch.object(base, "Consumer", consumer),
    ):
        yield


def measured(broker: SecureBroker, run: Callable[[], float]) -> tuple[float, float]:
    """(what ``run`` returns, broker CPU seconds it took)."""
    before = broker.cpu_s()
    value = run()
    return value, broker.cpu_s() - before


def run_throughput(
    broker: SecureBroker, listener: str, records: int
) -> dict[str, tuple[float, float]]:
    """bench/broker.py's acks=all produce and group consume over ``listener``, with broker CPU."""
    topic, bootstrap = f"bench-{listener.lower()}", broker.bootstrap(listener)
    base.create_topic(broker.bootstrap("PLAINTEXT"), topic, 1)
    with secured(broker.client_settings(listener)):
        progress(f"{listener}: producing {records:,} records (acks=all)")
        produced = measured(broker, lambda: base.produce(bootstrap, topic, records, "all"))
        progress(f"{listener}:   {produced[0]:,.0f} rec/s; consuming them through a group")
        consumed = measured(broker, lambda: base.consume(bootstrap, topic, records))
        progress(f"{listener}:   {consumed[0]:,.0f} rec/s")
    stored = sum(f.stat().st_size for f in (broker.data / f"{topic}-0").rglob("*.log"))
    return {"produce": produced, "consume": consumed, "log MB": (stored / 1e6, 0.0)}


# --- A raw login client: Kafka framing, and SCRAM's client side (RFC 5802). ---


def _request(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    client_id = b"bench-security"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


async def _call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes, correlation_id: int
) -> bytes:
    writer.write(frame)
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    response = await reader.readexactly(size)
    if struct.unpack(">i", response[:4])[0] != correlation_id:
        raise RuntimeError("response out of order")
    return response[4:]


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _sasl_bytes(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def _authenticate_answer(body: bytes) -> bytes:
    """The auth_bytes of a SaslAuthenticate v1 response; raises on its error code."""
    error, message_len = struct.unpack(">hh", body[:4])
    at = 4 + max(message_len, 0)
    if error:
        raise RuntimeError(f"SaslAuthenticate error {error}: {body[4:at].decode()}")
    (size,) = struct.unpack(">i", body[at : at + 4])
    return body[at + 4 : at + 4 + size]


_SALTED: dict[tuple[bytes, int], bytes] = {}


def _salted_password(salt: bytes, iterations: int, cache: bool) -> bytes:
    key = (salt, iterations)
    if cache and key in _SALTED:
        return _SALTED[key]
    salted = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, iterations)
    _SALTED[key] = salted
    return salted


def _hmac512(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, "sha512").digest()


async def _scram_login(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cache: bool
) -> None:
    body = await _call(reader, writer, _request(17, 1, 2, _string(MECHANISM)), 2)
    if struct.unpack(">h", body[:2])[0]:
        raise RuntimeError(f"SaslHandshake refused {MECHANISM}")
    client_nonce = secrets.token_urlsafe(18)
    first_bare = f"n={USER},r={client_nonce}"  # the name has no ',' or '=' to escape
    first = _request(36, 1, 3, _sasl_bytes(b"n,," + first_bare.encode()))
    answer = _authenticate_answer(await _call(reader, writer, first, 3))
    server_first = answer.decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
    if not nonce.startswith(client_nonce):
        raise RuntimeError("the server's nonce does not extend ours")
    salted = _salted_password(salt, iterations, cache)
    client_key = _hmac512(salted, b"Client Key")
    without_proof = f"c={base64.b64encode(b'n,,').decode()},r={nonce}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = _hmac512(hashlib.sha512(client_key).digest(), auth_message)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    answer = _authenticate_answer(
        await _call(reader, writer, _request(36, 1, 4, _sasl_bytes(final)), 4)
    )
    expected = _hmac512(_hmac512(salted, b"Server Key"), auth_message)
    if not hmac.compare_digest(answer, b"v=" + base64.b64encode(expected)):
        raise RuntimeError("the server's signature does not verify")


async def _connect_once(port: int, tls: ssl.SSLContext | None, sasl: bool, cache: bool) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
    )
    try:
        body = await _call(reader, writer, _request(18, 0, 1, b""), 1)  # ApiVersions v0
        if struct.unpack(">h", body[:2])[0]:
            raise RuntimeError("ApiVersions refused")
        if sasl:
            await _scram_login(reader, writer, cache)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1)


@dataclass
class Logins:
    completed: int
    failed: int
    seconds: float
    mean_ms: float
    broker_cpu_s: float
    first_error: str = ""

    @property
    def per_s(self) -> float:
        return self.completed / self.seconds

    @property
    def broker_cpu_ms_each(self) -> float:
        return self.broker_cpu_s * 1000 / max(self.completed, 1)


async def _logins(
    port: int, tls: ssl.SSLContext | None, sasl: bool, cache: bool, clients: int, seconds: float
) -> tuple[int, int, float, float, str]:
    completed = failed = 0
    took: list[float] = []
    first_error = ""
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        nonlocal completed, failed, first_error
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                await asyncio.wait_for(_connect_once(port, tls, sasl, cache), 10)
            except Exception as exc:
                failed += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)
                continue
            took.append(time.perf_counter() - began)
            completed += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    mean_ms = sum(took) * 1000 / max(len(took), 1)
    return completed, failed, elapsed, mean_ms, first_error


def logins(
    broker: SecureBroker, listener: str, cache: bool, clients: int, seconds: float
) -> Logins:
    tls: ssl.SSLContext | None = None
    if "SSL" in listener:
        tls = ssl.create_default_context(cafile=str(broker.certs / "ca.pem"))
    before = broker.cpu_s()
    completed, failed, elapsed, mean_ms, error = asyncio.run(
        _logins(broker.ports[listener], tls, "SASL" in listener, cache, clients, seconds)
    )
    return Logins(completed, failed, elapsed, mean_ms, broker.cpu_s() - before, error)


def client_pbkdf2_ms() -> float:
    salt = secrets.token_bytes(32)
    started = time.perf_counter()
    for _ in range(20):
        hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, ITERATIONS)
    return (time.perf_counter() - started) * 1000 / 20


LOGIN_ROWS = (
    # (label, listener, cache SaltedPassword on the client)
    ("PLAINTEXT: TCP + ApiVersions", "PLAINTEXT", True),
    ("SSL: TLS handshake + ApiVersions", "SSL", True),
    ("SASL_PLAINTEXT: SCRAM-SHA-512", "SASL_PLAINTEXT", True),
    ("SASL_SSL: TLS + SCRAM-SHA-512", "SASL_SSL", True),
    ("SASL_SSL, client salts each login", "SASL_SSL", False),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records",
        type=int,
        default=1_000_000,
        help="records per produce run and per listener (default 1,000,000; quicker: 200000)",
    )
    parser.add_argument(
        "--handshake-seconds",
        type=float,
        default=5.0,
        help="how long each login-rate row runs (default 5)",
    )
    parser.add_argument(
        "--handshake-clients",
        type=int,
        default=8,
        help="concurrent connecting clients in the login-rate rows (default 8)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headwater-bench-security-"))
    throughput: dict[str, dict[str, tuple[float, float]]] = {}
    login_results: list[tuple[str, Logins]] = []
    try:
        with start_secure_broker(work) as broker:
            progress(f"broker up: {broker.ports}")
            # The first run on a fresh broker and fresh clients is the slowest: warm up first.
            warm_up = min(args.records, 100_000)
            progress(f"warm-up: {warm_up:,} records over PLAINTEXT")
            base.create_topic(broker.bootstrap("PLAINTEXT"), "bench-warm-up", 1)
            base.produce(broker.bootstrap("PLAINTEXT"), "bench-warm-up", warm_up, "all")
            for listener in THROUGHPUT_LISTENERS:
                throughput[listener] = run_throughput(broker, listener, args.records)
            for label, listener, cache in LOGIN_ROWS:
                progress(f"logins for {args.handshake_seconds:g} s: {label}")
                result = logins(
                    broker, listener, cache, args.handshake_clients, args.handshake_seconds
                )
                progress(f"  {result.per_s:,.0f}/s, {result.failed} failed")
                login_results.append((label, result))
            pbkdf2_ms = client_pbkdf2_ms()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain = throughput["PLAINTEXT"]
    print(f"\nThroughput, {args.records:,} records of 100 bytes, one partition")
    print(
        f"{'workload':<30}{'PLAINTEXT':>12}{'SSL':>12}{'SASL_SSL':>12}"
        f"{'SSL/PT':>9}{'SASL_SSL/PT':>13}"
    )
    met = True
    for what, title in (
        ("produce", "produce acks=all (rec/s)"),
        ("consume", "consume group (rec/s)"),
    ):
        values = [throughput[name][what][0] for name in THROUGHPUT_LISTENERS]
        ratios = [value / plain[what][0] for value in values[1:]]
        met = met and all(ratio >= TARGET for ratio in ratios)
        print(
            f"{title:<30}{values[0]:>12,.0f}{values[1]:>12,.0f}{values[2]:>12,.0f}"
            f"{ratios[0]:>9.2f}{ratios[1]:>13.2f}"
        )
        cpu = [throughput[name][what][1] * 1e6 / args.records for name in THROUGHPUT_LISTENERS]
        print(
            f"{'  broker CPU (µs/record)':<30}{cpu[0]:>12.2f}{cpu[1]:>12.2f}{cpu[2]:>12.2f}"
            f"{cpu[1] / cpu[0]:>9.2f}{cpu[2] / cpu[0]:>13.2f}"
        )
    logs = [throughput[name]["log MB"][0] for name in THROUGHPUT_LISTENERS]
    print(
        f"{'  log on disk (MB, lz4 batches)':<30}{logs[0]:>12.1f}{logs[1]:>12.1f}{logs[2]:>12.1f}"
    )
    print(
        f"target: SSL and SASL_SSL at >= {TARGET} of PLAINTEXT for produce and consume: "
        f"{'met' if met else 'missed'}"
    )
    print(f"\nFresh connections, {args.handshake_clients} concurrent clients, 127.0.0.1")
    print(f"{'connection':<36}{'per s':>9}{'mean ms':>9}{'broker CPU ms':>15}{'failed':>8}")
    for label, result in login_results:
        print(
            f"{label:<36}{result.per_s:>9,.0f}{result.mean_ms:>9.2f}"
            f"{result.broker_cpu_ms_each:>15.2f}{result.failed:>8}"
        )
    print(
        f"(broker CPU ms = broker process CPU per completed connection; the client's PBKDF2, "
        f"{ITERATIONS} iterations of HMAC-SHA-512, takes {pbkdf2_ms:.2f} ms per login here)"
    )
    for label, result in login_results:
        if result.failed:
            print(f"{label}: first failure: {result.first_error}")


if __name__ == "__main__":
    main()
