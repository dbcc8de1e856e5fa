"""Options and helpers shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_BOOTSTRAP = os.environ.get("HEADWATER_BOOTSTRAP", "127.0.0.1:9092")

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap",
        "-b",
        help="Kafka bootstrap servers (host:port[,host:port]); any Kafka-compatible cluster.",
        envvar="HEADWATER_BOOTSTRAP",
    ),
]


def fail(message: str) -> typer.Exit:
    """Print an error that says what happened and what to do, and exit with status 1."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise fail(f"{what} {pair!r} must look like name=value")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    return out


def load_client_properties(path: Path | None) -> dict[str, str]:
    """Client settings from a Kafka-style properties file given with ``--command-config``."""
    if path is None:
        return {}
    # Imported here: the broker command shares this module and must not load the client.
    from headwater.client._security import ClientConfigError, read_client_properties

    try:
        return read_client_properties(path)
    except ClientConfigError as exc:
        raise fail(str(exc)) from None
