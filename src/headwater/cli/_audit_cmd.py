"""``headwater audit tail``: read the broker's audit log (logins, refusals, admin changes)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from headwater.cli._common import fail
from headwater.security._audit import TYPE_PREFIX, audit_path
from headwater.security._audit_read import Event, EventFilter, Follower, last_events

app = typer.Typer(
    help="Read the broker's audit log: authentications, authorisation refusals and admin "
    "changes, one CloudEvent (JSON) per line.",
    no_args_is_help=True,
)

POLL_INTERVAL_S = 0.5


def _result(data: dict[str, Any]) -> str:
    result = data.get("result")
    if not isinstance(result, dict):
        return "-"
    if result.get("status") == "success":
        return "success"
    return f"failure {result.get('error_name', '?')} ({result.get('error_code', '?')})"


def describe(event: Event) -> str:
    """One readable line: time, type, principal, resource, result."""
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    kind = str(event.get("type", "?")).removeprefix(TYPE_PREFIX)
    principal = data.get("principal") or data.get("initiator") or "-"
    return "\t".join(
        (
            str(event.get("time", "?")),
            kind,
            str(principal),
            str(event.get("subject", "-")),
            _result(data),
        )
    )


def _print(line: bytes, event: Event, raw: bool) -> None:
    typer.echo(line.decode("utf-8", "replace") if raw else describe(event))


@app.command("tail")
def tail(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="The audit log file to read (default: <data-dir>/audit/audit.log)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The broker's data directory; its audit/audit.log is read "
            "(default ./headwater-data, or env HEADWATER_DATA_DIR).",
        ),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many of the last events to print.")
    ] = 20,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new events as they are written (across log "
            "rotations) until interrupted.",
        ),
    ] = False,
    type_prefix: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Only events whose type starts with this, e.g. authentication, "
            "authorization.denied, admin.topics or io.headwater.admin.acls.create.",
        ),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option(help="Only events of this principal (alice or User:alice)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as its JSON line, unchanged.")
    ] = False,
) -> None:
    """Print the last events of the audit log, oldest first, and with --follow new ones.

    Each event is one line: time, type, principal, resource, result (or its JSON with --json).
    """
    if file is not None and data_dir is not None:
        raise fail("give --file or --data-dir, not both")
    if file is None:
        data_dir = data_dir or Path(os.environ.get("HEADWATER_DATA_DIR", "headwater-data"))
        file = audit_path(data_dir)
    if not file.exists() and not follow:
        raise fail(
            f"no audit log at {file}: start the broker with audit_log_enabled "
            "(HEADWATER_AUDIT_LOG_ENABLED=true), or give --file / --data-dir"
        )
    match = EventFilter(type_prefix, principal)
    follower = Follower(file) if follow else None
    end = follower.offset if follower is not None and follower.offset >= 0 else None
    if lines and file.exists():
        for line, event in last_events(file, lines, match, end=end):
            _print(line, event, as_json)
    if follower is None:
        return
    try:
        while True:
            for line, event in follower.poll():
                if match(event):
                    _print(line, event, as_json)
            time.sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
