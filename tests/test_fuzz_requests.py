"""The request fuzzer, in the suite: every kept crash and every seed replayed, then a short
coverage-guided pass with a fixed seed (``scripts/fuzz`` runs the long one)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

from harness import Harness

FUZZ = Path(__file__).parent / "fuzz"
REGRESSIONS = sorted((FUZZ / "regressions").glob("*.bin"))
CORPUS = sorted((FUZZ / "corpus").glob("*.bin"))
SHORT_PASS_RUNS = 30_000


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    running = Harness()
    yield running
    running.close()


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_kept_crash_no_longer_misbehaves(harness: Harness, path: Path) -> None:
    harness.run(path.read_bytes())


def test_corpus_holds_requests_of_every_client_family() -> None:
    clients = {p.stem.split("-", 2)[2] for p in CORPUS}
    for family in ("rdkafka", "kafka-python", "aiokafka", "sarama", "kafkajs"):
        assert any(family in client for client in clients), (family, sorted(clients))


def test_every_seed_request_is_served(harness: Harness) -> None:
    assert len(CORPUS) > 100
    for path in CORPUS:
        harness.run(path.read_bytes())


def test_short_fixed_seed_fuzz_pass(tmp_path: Path) -> None:
    new_inputs = tmp_path / "new"
    new_inputs.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "fuzz_requests.py"),
            str(new_inputs),
            str(FUZZ / "corpus"),
            f"-runs={SHORT_PASS_RUNS}",
            "-seed=1",
            "-max_len=65536",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    tail = "\n".join(
        line for line in result.stderr.splitlines() if not line.startswith("INFO: Instrumenting")
    )[-4000:]
    assert result.returncode == 0, tail
    assert f"Done {SHORT_PASS_RUNS} runs" in result.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail
