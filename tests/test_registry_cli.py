"""``headwater registry`` as users run it: a child process that prints where it listens."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx


def test_registry_command_serves_and_stops(bootstrap: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", "registry", "--port", "0", "--bootstrap", bootstrap],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"ready on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        url = found.group(1)
        schema = {"schema": '{"type": "string"}'}
        registered = httpx.post(f"{url}/subjects/s-value/versions", json=schema).json()
        assert registered["id"] == 1
        assert httpx.get(f"{url}/subjects").json() == ["s-value"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        if proc.stderr is not None:
            proc.stderr.close()
