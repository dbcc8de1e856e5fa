"""``headwater groups``: list, describe and reset consumer groups."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import Bootstrap, fail
from headwater.client import Admin, AdminError

app = typer.Typer(help="List, describe and reset consumer groups.", no_args_is_help=True)
_BOOT = "127.0.0.1:9092"


@app.command("list")
def list_(bootstrap: Bootstrap = _BOOT) -> None:
    """List consumer groups and their states."""
    try:
        for group_id, state in Admin(bootstrap).list_groups():
            typer.echo(f"{group_id}\t{state}")
    except AdminError as exc:
        raise fail(str(exc)) from None


@app.command("describe")
def describe(
    group: Annotated[str, typer.Argument(help="Group id.")],
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Show members, assignments, committed offsets and lag."""
    try:
        info = Admin(bootstrap).describe_group(group)
    except AdminError as exc:
        raise fail(str(exc)) from None
    console = Console()
    console.print(f"group {info.group_id}: {info.state}, {len(info.members)} member(s)")
    for member_id, client_id, assignment in info.members:
        parts = ", ".join(f"{t}[{p}]" for t, p in assignment)
        console.print(f"  {member_id} ({client_id}): {parts or '-'}")
    table = Table()
    for column in ("topic", "partition", "committed", "lag"):
        table.add_column(column)
    for topic, partition, committed, lag in info.offsets:
        table.add_row(topic, str(partition), str(committed), str(lag))
    console.print(table)


@app.command("reset-offsets")
def reset_offsets(
    group: Annotated[str, typer.Argument(help="Group id (its consumers must be stopped).")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic whose offsets move.")],
    to_earliest: Annotated[bool, typer.Option(help="Move to the earliest offset.")] = False,
    to_latest: Annotated[bool, typer.Option(help="Move to the log end.")] = False,
    to_offset: Annotated[
        int | None, typer.Option(help="Move every partition to this offset.")
    ] = None,
    to_timestamp: Annotated[
        int | None,
        typer.Option(help="Move to the first record at or after this time (ms since epoch)."),
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Move a group's committed offsets for one topic."""
    chosen = [
        (to_earliest, "earliest", None),
        (to_latest, "latest", None),
        (to_offset is not None, "offset", to_offset),
        (to_timestamp is not None, "timestamp", to_timestamp),
    ]
    picked = [(name, value) for flag, name, value in chosen if flag]
    if len(picked) != 1:
        raise fail("choose exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp")
    try:
        targets = Admin(bootstrap).reset_offsets(group, topic, picked[0][0], picked[0][1])
    except AdminError as exc:
        raise fail(f"cannot reset offsets of {group!r}: {exc}") from None
    for partition, offset in sorted(targets.items()):
        typer.echo(f"{topic}\t{partition}\t{offset}")
