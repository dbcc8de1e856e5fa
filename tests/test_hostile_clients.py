"""A broker process under attack keeps serving a normal client, with bounded memory.

Mutated copies of real requests arrive on fresh connections, between rounds of a normal client
listing topics and consuming what it produced; then a frame announcing 2 GB, a half-sent frame
left open, and a flood of connections sending garbage.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.testing import BrokerProcess

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

from hostile import load_seeds, run_hostile

IDLE_MS = 2000
ROUNDS = 6
FRAMES_PER_ROUND = 300
RSS_GROWTH_MB_MAX = 64  # over the broker's resident memory after its first normal round


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    env = {"HEADWATER_CONNECTIONS_MAX_IDLE_MS": str(IDLE_MS)}
    with BrokerProcess(data, "--metrics-port", "0", env=env) as running:
        yield running


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
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def normal_round(bootstrap: str, round_no: int) -> None:
    """List topics, produce ten records, consume exactly them back."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if "steady" not in admin.list_topics(timeout=30).topics:
        admin.create_topics([NewTopic("steady", 1, 1)])["steady"].result(30)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "none", "enable.auto.commit": False}
    )
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition("steady", 0), timeout=30)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(10):
            producer.produce("steady", key=b"k", value=f"{round_no}-{i}".encode())
        assert producer.flush(30) == 0
        consumer.assign([TopicPartition("steady", 0, end)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < 10 and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
        assert values == [f"{round_no}-{i}".encode() for i in range(10)]
    finally:
        consumer.close()


def wait_for(predicate: object, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_mutated_frames_between_rounds_of_a_normal_client(broker: BrokerProcess) -> None:
    seeds = load_seeds()
    normal_round(broker.bootstrap, 0)
    baseline = rss_mb(broker)
    total_answered = total_closed = 0
    for round_no in range(1, ROUNDS + 1):
        outcome = asyncio.run(
            run_hostile("127.0.0.1", broker.port, FRAMES_PER_ROUND, seed=round_no, seeds=seeds)
        )
        assert broker.process is not None and broker.process.poll() is None, broker.log[-20:]
        assert outcome.total == FRAMES_PER_ROUND and outcome.refused == 0
        total_answered += outcome.answered
        total_closed += outcome.closed
        normal_round(broker.bootstrap, round_no)
    # Both answers and closes happened: the mutations reached handlers and the decoder.
    assert total_answered > 0 and total_closed > 0
    assert metric(broker, "headwater_broker_requests_rejected_total") > 0
    # Bad input is answered with an error code or closes its connection; no handler raised.
    handler_errors = 'headwater_broker_connections_closed_total{reason="handler_error"}'
    assert metric(broker, handler_errors) == 0, "".join(broker.log[-40:])
    # Every hostile connection is gone from the broker too: none is left hanging.
    assert wait_for(lambda: metric(broker, "headwater_broker_connections_active") == 0)
    assert rss_mb(broker) < baseline + RSS_GROWTH_MB_MAX


def test_frame_announcing_two_gigabytes_is_refused_at_once(broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as sock:
        sock.sendall(struct.pack(">i", 2**31 - 1) + b"\x00\x03\x00\x0c")
        assert sock.recv(4) == b""
    normal_round(broker.bootstrap, 100)


def test_half_sent_frame_is_closed_once_idle(broker: BrokerProcess) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as sock:
        sock.sendall(struct.pack(">i", 1000) + b"\x00\x03\x00\x0c" + bytes(20))
        normal_round(broker.bootstrap, 101)  # others are served meanwhile
        started = time.monotonic()
        assert sock.recv(4) == b""  # closed by the broker, not by this side
        assert time.monotonic() - started < 30
    assert metric(broker, 'headwater_broker_connections_closed_total{reason="idle"}') >= 1


def test_flood_of_garbage_connections(broker: BrokerProcess) -> None:
    async def flood() -> int:
        async def one(i: int) -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
            except OSError:
                return False
            writer.write(struct.pack(">i", 64) + bytes((i + j) % 256 for j in range(64)))
            await writer.drain()
            data = await reader.read(4)
            writer.close()
            return data == b""

        results = await asyncio.gather(*(one(i) for i in range(300)))
        return sum(results)

    closed = asyncio.run(flood())
    assert closed == 300
    normal_round(broker.bootstrap, 102)
    assert broker.process is not None and broker.process.poll() is None
