"""Brokers for tests: one in a thread of the test process, one in a child process that a test
may ``kill -9``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from headwater.broker import BrokerConfig, BrokerThread

_READY = re.compile(r"ready on (\S+):(\d+)")
_METRICS = re.compile(r"metrics on http://\S+:(\d+)/metrics")
_START_TIMEOUT_S = 60.0


@contextmanager
def embedded_broker(data_dir: Path, **settings: Any) -> Iterator[BrokerThread]:
    """A broker on 127.0.0.1 and a free port, stopped cleanly when the block ends.

    ``HEADWATER_FRAME_CAPTURE_DIR`` in the environment records sample request frames there
    (how the request fuzzer's seed corpus is made; ``headwater broker`` reads it too).
    """
    capture = os.environ.get("HEADWATER_FRAME_CAPTURE_DIR")
    if capture and "frame_capture_dir" not in settings:
        settings["frame_capture_dir"] = Path(capture)
    config = BrokerConfig(host="127.0.0.1", port=0, data_dir=data_dir, **settings)
    with BrokerThread(config) as running:
        yield running


class BrokerProcess:
    """``headwater broker`` in a child process; ``kill()`` sends SIGKILL, ``start()`` again."""

    def __init__(
        self,
        data_dir: Path,
        *extra_args: str,
        port: int = 0,
        env: dict[str, str] | None = None,
        launcher: Sequence[str] = (sys.executable, "-m", "headwater"),
    ) -> None:
        """``launcher`` is the command that runs the ``headwater`` CLI (benchmarks pass one)."""
        self.launcher = tuple(launcher)
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.port = port
        self.env = env or {}
        self.metrics_port: int | None = None
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> BrokerProcess:
        args = [
            *self.launcher,
            "broker",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "WARNING",
            *self.extra_args,
        ]
        env = dict(os.environ)
        env.pop("HEADWATER_CONFIG", None)
        env.update(self.env)
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        ready = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                metrics = _METRICS.search(line)
                if metrics:
                    self.metrics_port = int(metrics.group(1))
                found = _READY.search(line)
                if found and not ready.is_set():
                    self.port = int(found.group(2))
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(_START_TIMEOUT_S) or self.process.poll() is not None:
            raise RuntimeError("broker process did not start:\n" + "".join(self.log[-20:]))
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no clean shutdown, like a power cut of the process."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self._reap()

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
            self._reap()

    def _reap(self) -> None:
        assert self.process is not None
        self._pump.join(30)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
