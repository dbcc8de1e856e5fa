"""The ``headwater`` command against a real broker: topics, produce, consume, groups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def hw(
    bootstrap: str, *args: str, stdin: str | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", *args, "-b", bootstrap],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_topics_lifecycle(bootstrap: str) -> None:
    hw(bootstrap, "topics", "create", "cli-t", "--partitions", "3", "-c", "retention.ms=60000")
    assert "cli-t\t3" in hw(bootstrap, "topics", "list").stdout
    described = hw(bootstrap, "topics", "describe", "cli-t").stdout
    assert "retention.ms" in described and "60000" in described
    hw(bootstrap, "topics", "alter", "cli-t", "-c", "cleanup.policy=compact", "--partitions", "4")
    assert "cli-t\t4" in hw(bootstrap, "topics", "list").stdout
    bad = hw(bootstrap, "topics", "alter", "cli-t", "-c", "retention.ms=soon", ok=False)
    assert bad.returncode == 1 and "retention.ms" in bad.stderr
    hw(bootstrap, "topics", "delete", "cli-t")
    assert "cli-t" not in hw(bootstrap, "topics", "list").stdout


def test_produce_consume_groups(bootstrap: str, tmp_path: Path) -> None:
    hw(bootstrap, "topics", "create", "cli-io")
    lines = "".join(f"k{i}:v{i}\n" for i in range(20))
    hw(bootstrap, "produce", "cli-io", "-k", ":", stdin=lines)
    out = hw(bootstrap, "consume", "cli-io", "--from-beginning", "--json", "-n", "20").stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["key"], r["value"]) for r in records] == [(f"k{i}", f"v{i}") for i in range(20)]
    assert [r["offset"] for r in records] == list(range(20))
    from_offset = hw(bootstrap, "consume", "cli-io", "--offset", "15", "-n", "5").stdout
    assert from_offset.split() == [f"v{i}" for i in range(15, 20)]
    grouped = hw(bootstrap, "consume", "cli-io", "-g", "cli-g", "-n", "20").stdout
    assert len(grouped.split()) == 20
    assert "cli-g" in hw(bootstrap, "groups", "list").stdout
    described = hw(bootstrap, "groups", "describe", "cli-g").stdout
    assert "cli-io" in described
    reset = hw(bootstrap, "groups", "reset-offsets", "cli-g", "-t", "cli-io", "--to-offset", "5")
    assert "cli-io\t0\t5" in reset.stdout
    again = hw(bootstrap, "consume", "cli-io", "-g", "cli-g", "-n", "15").stdout
    assert again.split()[0] == "v5"
    path = tmp_path / "in.txt"
    path.write_text("a\nb\n")
    hw(bootstrap, "produce", "cli-file", "--file", str(path))
    assert hw(bootstrap, "consume", "cli-file", "--from-beginning", "-n", "2").stdout.split() == [
        "a",
        "b",
    ]


def test_errors_are_clear(bootstrap: str) -> None:
    result = hw(bootstrap, "topics", "create", "bad name", ok=False)
    assert result.returncode == 1
    assert "error:" in result.stderr
    result = hw(bootstrap, "groups", "reset-offsets", "g", "-t", "x", ok=False)
    assert "choose exactly one" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["broker"],
        ["topics", "create"],
        ["produce"],
        ["consume"],
        ["groups", "reset-offsets"],
        ["transactions", "list"],
        ["transactions", "describe"],
        ["transactions", "producers"],
        ["demo"],
        ["doctor"],
    ],
)
def test_help_explains_every_option(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_cli_start_loads_no_heavy_stack() -> None:
    """`headwater broker` must stay small: the CLI imports the sinks', registry's and
    dashboard's libraries only when their commands run."""
    heavy = ["pyarrow", "duckdb", "sqlalchemy", "starlette", "uvicorn", "fastavro", "httpx"]
    heavy.append("cryptography")  # TLS listeners and `certs create` load it when they run
    probe = (
        "import sys, headwater.cli._app, headwater.broker; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
