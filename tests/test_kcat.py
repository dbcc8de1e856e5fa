"""Debian's kcat (librdkafka 2.0.2): ApiVersions handshake, produce, consume, metadata."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat missing: run scripts/install-test-tools")


def _kcat(*args: str, stdin: str | None = None) -> str:
    assert KCAT is not None
    result = subprocess.run(
        [KCAT, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kcat_metadata(bootstrap: str) -> None:
    out = _kcat("-b", bootstrap, "-L", "-J")
    meta = json.loads(out)
    assert meta["brokers"][0]["id"] == 1


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_and_consume(bootstrap: str, codec: str) -> None:
    topic = f"kcat-{codec}"
    lines = "\n".join(f"key{i % 5}:value {i}" for i in range(200)) + "\n"
    _kcat("-b", bootstrap, "-P", "-t", topic, "-K", ":", "-z", codec, stdin=lines)
    out = _kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-K", ":", "-c", "200")
    got = out.strip().splitlines()
    assert got == lines.strip().splitlines()


def test_kcat_consumer_group(bootstrap: str) -> None:
    _kcat("-b", bootstrap, "-P", "-t", "kcat-group", stdin="a\nb\nc\n")
    out = _kcat(
        "-b",
        bootstrap,
        "-G",
        "kcat-g",
        "kcat-group",
        "-o",
        "beginning",
        "-e",
        "-c",
        "3",
        "-X",
        "session.timeout.ms=6000",
    )
    assert sorted(out.split()) == ["a", "b", "c"]
