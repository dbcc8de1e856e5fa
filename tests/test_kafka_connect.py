"""Kafka Connect 4.4 in distributed mode on Headwater's broker, with the file connectors.

``org.apache.kafka.connect.cli.ConnectDistributed`` keeps its connector configs, source offsets
and statuses in three topics on the broker and coordinates through a group with Connect's own
protocol. FileStreamSource reads lines from a file into a topic; FileStreamSink writes the
topic to another file. The worker is then stopped and started again: it must find its
connectors in the config topic and resume the source from its stored offset, so lines written
meanwhile arrive once and nothing is read twice. It runs twice: with at-least-once sources (the
default) and with exactly-once sources, where the source's records and offsets are written in
transactions.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from headwater.broker import BrokerThread
from headwater.testing import JavaProcess, embedded_broker, java_missing

_MISSING = java_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

WORKER = "org.apache.kafka.connect.cli.ConnectDistributed"
TOPIC = "connect-lines"
TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_properties(bootstrap: str, port: int, exactly_once: bool) -> str:
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": "headwater-connect",
        "config.storage.topic": "connect-configs",
        "offset.storage.topic": "connect-offsets",
        "status.storage.topic": "connect-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "offset.storage.partitions": "3",
        "status.storage.partitions": "1",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "listeners": f"http://127.0.0.1:{port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(port),
        # The file connectors are on the classpath with ServiceLoader manifests: no need to
        # scan every jar by reflection, which costs seconds of CPU at start-up.
        "plugin.discovery": "service_load",
        "offset.flush.interval.ms": "500",
        "scheduled.rebalance.max.delay.ms": "0",
        # Exactly-once sources (KIP-618): the worker fences the task's transactional producer
        # through the Admin, and source records and their offsets commit in one transaction.
        "exactly.once.source.support": "enabled" if exactly_once else "disabled",
    }
    return "".join(f"{key}={value}\n" for key, value in config.items())


class Rest:
    """The worker's REST API on a loopback port."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def wait(self, worker: JavaProcess, condition: Any, what: str) -> Any:
        """Poll until ``condition()`` returns something truthy; REST errors count as not yet."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                found = condition()
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError):
                found = None
            if found:
                return found
            if not worker.running() or time.monotonic() > deadline:
                pytest.fail(f"Connect never reached {what}\n" + worker.logs_tail())
            time.sleep(0.25)

    def running(self, name: str) -> bool:
        status = self.call("GET", f"/connectors/{name}/status")
        states = [status["connector"]["state"]] + [t["state"] for t in status["tasks"]]
        return len(states) > 1 and all(state == "RUNNING" for state in states)


def topic_values(bootstrap: str) -> list[str]:
    """Every value in the topic; reads up to the end offset, past transaction markers too."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False}
    )
    partition = TopicPartition(TOPIC, 0, 0)
    try:
        consumer.assign([partition])
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        values: list[str] = []
        deadline = time.monotonic() + 30
        while consumer.position([partition])[0].offset < end:
            assert time.monotonic() < deadline, f"read {len(values)} values, not up to {end}"
            for message in consumer.consume(500, 0.5):
                assert message.error() is None, message.error()
                values.append((message.value() or b"").decode())
        return values
    finally:
        consumer.close()


def append_lines(path: Path, first: int, end: int) -> None:
    with path.open("a") as file:
        file.writelines(f"line-{i:03d}\n" for i in range(first, end))


def sink_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def connect_broker(tmp_path: Path) -> Iterator[BrokerThread]:
    with embedded_broker(tmp_path / "data") as broker:
        yield broker


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_file_source_and_sink_through_a_worker_restart(
    connect_broker: BrokerThread, tmp_path: Path, exactly_once: bool
) -> None:
    bootstrap = connect_broker.bootstrap
    port = free_port()
    properties = tmp_path / "worker.properties"
    properties.write_text(worker_properties(bootstrap, port, exactly_once))
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    append_lines(source_file, 0, 50)
    worker = JavaProcess(WORKER, str(properties), workdir=tmp_path, heap_mb=384)
    rest = Rest(port)
    try:
        worker.start()
        rest.wait(worker, lambda: rest.call("GET", "/connectors") == [], "its REST API")
        plugins = {p["class"] for p in rest.call("GET", "/connector-plugins")}
        assert "org.apache.kafka.connect.file.FileStreamSourceConnector" in plugins
        for name, config in {
            "file-source": {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": str(source_file),
                "topic": TOPIC,
                "tasks.max": "1",
            },
            "file-sink": {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "file": str(sink_file),
                "topics": TOPIC,
                "tasks.max": "1",
            },
        }.items():
            rest.call("POST", "/connectors", {"name": name, "config": config})
        for name in ("file-source", "file-sink"):
            rest.wait(worker, lambda name=name: rest.running(name), f"{name} RUNNING")
        append_lines(source_file, 50, 100)
        expected = [f"line-{i:03d}" for i in range(100)]
        rest.wait(worker, lambda: sink_lines(sink_file) == expected, "100 lines in the sink")

        # Let the source's offset reach the offsets topic, then restart the worker with lines
        # written while it is down.
        time.sleep(1.0)
        worker.stop()
        append_lines(source_file, 100, 150)
        worker.start()
        rest.wait(
            worker,
            lambda: sorted(rest.call("GET", "/connectors")) == ["file-sink", "file-source"],
            "its connectors back from the config topic",
        )
        expected = [f"line-{i:03d}" for i in range(150)]
        rest.wait(worker, lambda: sink_lines(sink_file) == expected, "150 lines in the sink")
        assert topic_values(bootstrap) == expected
        assert rest.running("file-source") and rest.running("file-sink")
        registry = connect_broker.broker.metrics.registry
        end_txns = registry.get_sample_value("headwater_broker_requests_total", {"api": "EndTxn"})
        assert bool(end_txns) == exactly_once
    finally:
        worker.stop()
