"""``headwater transactions``: list and describe transactions, and the producers on a topic.

Kafka's ``kafka-transactions.sh`` without a JVM, for finding the transaction that holds back
read_committed consumers. The client stack is imported when a command runs, not at CLI start.
"""

from __future__ import annotations

import datetime
import sys
import time
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import Bootstrap, fail

app = typer.Typer(
    help="See open transactions and the producers writing to a topic (kafka-transactions.sh).",
    no_args_is_help=True,
)
_BOOT = "127.0.0.1:9092"
# Piped output keeps whole rows: rich would otherwise wrap tables at 80 columns.
_PIPE_WIDTH = 200


class TxnState(StrEnum):
    """Transaction states as Kafka names them (ListTransactions filters by these strings)."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"
    DEAD = "Dead"


@app.command("list")
def list_(
    state: Annotated[
        list[TxnState] | None,
        typer.Option(
            "--state",
            help="Only transactions in this state (Kafka's names); repeat to accept several.",
        ),
    ] = None,
    producer_id: Annotated[
        list[int] | None,
        typer.Option("--producer-id", help="Only this producer id; repeat to accept several."),
    ] = None,
    min_duration_ms: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Only transactions open at least this many milliseconds; every broker must "
            "support ListTransactions v1.",
        ),
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """List transactional ids on every broker: coordinator, producer id and state."""
    from headwater.client import AdminError, TransactionAdmin

    try:
        with TransactionAdmin(bootstrap) as admin:
            listings = admin.list_transactions(
                [s.value for s in state or ()], producer_id or (), min_duration_ms
            )
    except AdminError as exc:
        raise fail(str(exc)) from None
    if not listings:
        typer.echo("no transactions match")
        return
    table = Table()
    for column in ("transactional id", "coordinator", "producer id", "state"):
        table.add_column(column, overflow="fold")
    for t in listings:
        table.add_row(t.transactional_id, str(t.coordinator_id), str(t.producer_id), t.state)
    _console().print(table)


@app.command("describe")
def describe(
    transactional_id: Annotated[str, typer.Argument(help="The producer's transactional.id.")],
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Show one transaction: state, producer, timeout, start time and its partitions."""
    from headwater.client import AdminError, TransactionAdmin

    try:
        with TransactionAdmin(bootstrap) as admin:
            txn = admin.describe_transaction(transactional_id)
    except AdminError as exc:
        raise fail(str(exc)) from None
    started = "-"
    if txn.start_ms >= 0:
        started = _iso(txn.start_ms)
        if txn.state == TxnState.ONGOING.value:
            open_ms = max(0, int(time.time() * 1000) - txn.start_ms)
            started += f" (open for {_duration(open_ms)})"
    partitions = ", ".join(f"{topic}-{p}" for topic, p in txn.partitions) or "-"
    rows = [
        ("transactional id", txn.transactional_id),
        ("coordinator", str(txn.coordinator_id)),
        ("state", txn.state),
        ("producer id", str(txn.producer_id)),
        ("producer epoch", str(txn.producer_epoch)),
        ("timeout", f"{txn.timeout_ms} ms"),
        ("started", started),
        ("partitions", partitions),
    ]
    for label, value in rows:
        typer.echo(f"{label:<18}{value}")


@app.command("producers")
def producers(
    topic: Annotated[str, typer.Argument(help="Topic whose partitions to inspect.")],
    partition: Annotated[
        list[int] | None,
        typer.Option("--partition", "-p", min=0, help="Only this partition; repeat for several."),
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Show the active producers on a topic's partitions, asked of each partition's leader.

    A txn start offset marks an open transaction: read_committed consumers wait there.
    """
    from headwater.client import AdminError, TransactionAdmin

    try:
        with TransactionAdmin(bootstrap) as admin:
            states = admin.describe_producers(topic, partition or None)
    except AdminError as exc:
        raise fail(str(exc)) from None
    if not states:
        typer.echo(f"no active producers on {topic}")
        return
    table = Table()
    columns = (
        "partition",
        "producer id",
        "epoch",
        "last sequence",
        "last timestamp",
        "coordinator epoch",
        "txn start offset",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for s in states:
        table.add_row(
            str(s.partition),
            str(s.producer_id),
            str(s.producer_epoch),
            str(s.last_sequence),
            _iso(s.last_timestamp_ms) if s.last_timestamp_ms >= 0 else "-",
            str(s.coordinator_epoch),
            str(s.current_txn_start_offset) if s.current_txn_start_offset >= 0 else "-",
        )
    _console().print(table)


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def _iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC, to the millisecond."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _duration(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms // 1000
    if seconds < 60:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
