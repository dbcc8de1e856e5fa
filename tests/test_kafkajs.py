"""kafkajs (JavaScript): admin, idempotent producer, consumer group, over real sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None or not (JS_DIR / "node_modules" / "kafkajs").exists(),
    reason="node or kafkajs missing: run scripts/install-test-tools",
)


def test_kafkajs_round_trip(bootstrap: str) -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(JS_DIR / "roundtrip.js"), bootstrap, "js-topic", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["consumed"] == 300
    assert summary["distinct"] == 300
