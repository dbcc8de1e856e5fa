"""Helpers shared by the sink tests: produce JSON, read dead letters, run a sink process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from confluent_kafka import Consumer

from headwater.client import produce_all

DEADLINE_S = 120.0


def produce_json(
    bootstrap: str, topic: str, rows: Iterable[Any], partition: int | None = None
) -> int:
    """Produce each row as JSON (bytes are produced as they are, for malformed input)."""
    records = ((None, row if isinstance(row, bytes) else orjson.dumps(row)) for row in rows)
    return produce_all(bootstrap, topic, records, partition=partition)


def read_topic(bootstrap: str, topic: str, count: int) -> list[Any]:
    """The first ``count`` messages of ``topic`` (all partitions); fails if they never come."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found.append(msg)
    finally:
        consumer.close()
    assert len(found) == count, f"expected {count} messages on {topic}, got {len(found)}"
    return found


def headers_of(message: Any) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in (message.headers() or [])}


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true; the deadline only keeps a broken run from hanging."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


class SinkProcess:
    """``python -m headwater sink …`` as a child process, with its progress lines collected."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "sink", *args, "--progress-seconds", "0.2"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def written(self) -> int:
        """The latest ``written=`` count the sink printed."""
        for line in reversed(self.lines):
            if " written=" in line:
                return int(line.split(" written=")[1].split()[0])
        return 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self._finish()

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(DEADLINE_S)
        self._finish()
        return code

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self._finish()

    def _finish(self) -> None:
        self.process.wait()
        self._pump.join(DEADLINE_S)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def output(self) -> str:
        return "".join(self.lines)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from headwater.client import Admin

    Admin(bootstrap).create_topic(topic, partitions, {})


def run_until(runner: Any, condition: Callable[[], bool], what: str) -> None:
    """Run ``runner`` in a thread until ``condition`` holds, then stop it and re-raise errors."""
    runner.start()
    try:
        wait_for(lambda: condition() or runner.error is not None, what)
    finally:
        runner.stop()
        runner.join(DEADLINE_S)
