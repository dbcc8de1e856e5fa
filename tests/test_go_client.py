"""The pure-Go sarama client (Debian's golang-github-shopify-sarama-dev) against the broker:
acks=all produce, the idempotent producer, a consumer group with committed offsets, per-key
order."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from headwater.client import Admin

HERE = Path(__file__).resolve().parent
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def goclient(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/github.com/Shopify/sarama").exists():
        raise RuntimeError(
            "the Go toolchain or sarama is missing: run scripts/install-test-tools "
            "(installs golang-go and golang-github-shopify-sarama-dev from Debian)"
        )
    out = tmp_path_factory.mktemp("go") / "goclient"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOCACHE": str(out.parent / "cache"),
        "GOFLAGS": "",
        "CGO_CFLAGS": "-Wno-deprecated-declarations",
    }
    subprocess.run(
        [go, "build", "-o", str(out), str(HERE / "go" / "main.go")],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def test_sarama_produces_and_consumes_in_a_group(goclient: Path, bootstrap: str) -> None:
    admin = Admin(bootstrap)
    admin.create_topic("go-topic", 3, {})
    result = subprocess.run(
        [str(goclient), bootstrap, "go-topic", "600"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "produced=600 consumed=600 out_of_order=0" in result.stdout
    committed = admin.committed("go-group")
    assert sum(offset for offset in committed.values()) == 600


def test_sarama_idempotent_producer(goclient: Path, bootstrap: str) -> None:
    """sarama's idempotent producer (InitProducerId, sequenced batches) with nothing tuned
    beyond what sarama itself insists on. No lost answer here: sarama 1.22 merges a retried
    batch with newer records into one batch under the old base sequence, which Apache Kafka
    refuses as OUT_OF_ORDER_SEQUENCE_NUMBER just as this broker does."""
    admin = Admin(bootstrap)
    admin.create_topic("go-idem", 2, {})
    result = subprocess.run(
        [str(goclient), bootstrap, "go-idem", "400", "idempotent"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "produced=400 consumed=400 out_of_order=0" in result.stdout
    written = admin.describe_topic("go-idem").partitions
    assert sum(p.latest for p in written) == 400
