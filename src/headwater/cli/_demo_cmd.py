"""``headwater demo``: the whole pipeline on one machine, with a live dashboard."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import fail


def _status(snapshot: dict[str, Any]) -> str:
    rates, totals, fresh = snapshot["rates"], snapshot["totals"], snapshot["freshness_ms"]
    p99 = "-" if fresh["p99"] is None else f"{fresh['p99']:.0f} ms"
    return (
        f"in {rates['events_in_per_s']:,.0f}/s  out {rates['events_out_per_s']:,.0f}/s  "
        f"orders {totals['orders']:,}  dead letters {totals['dead_letters']:,}  "
        f"alerts {totals['alerts']:,}  freshness p99 {p99}"
    )


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="headwater demo: what each stage holds")
    table.add_column("stage")
    table.add_column("count", justify="right")
    generated, sql = summary["generated"], summary["sql"]
    rows = [
        ("orders generated (excluding test orders)", generated["orders"]),
        ("test orders filtered out", generated["test_orders"]),
        ("clicks generated", generated["clicks"]),
        ("temperature readings generated", generated["readings"]),
        ("malformed records generated", generated["malformed"]),
        ("dead letters (pipeline + sinks)", summary["pipeline"]["dead_letters"]),
        ("orders in SQL table `orders` (append)", sql["orders"]),
        ("orders in Parquet files", summary["parquet"]["orders"]),
        ("orders in the live DuckDB table", summary["duckdb"]["orders"]),
        ("revenue windows in SQL `revenue_per_minute` (upsert)", sql["revenue_windows"]),
        ("temperature spikes injected", generated["spikes"]),
        ("anomaly alerts in SQL `temperature_alerts`", sql["alerts"]),
    ]
    for name, value in rows:
        table.add_row(name, f"{value:,}")
    fresh = summary["freshness_ms"]
    if fresh["p50"] is not None:
        table.add_row(
            "event-to-query freshness p50 / p99", f"{fresh['p50']:.0f} / {fresh['p99']:.0f} ms"
        )
    return table


def _check_options(
    anomaly_rate: float, malformed_rate: float, guarantee: str, bootstrap: str | None
) -> None:
    for name, share in (("--anomaly-rate", anomaly_rate), ("--malformed-rate", malformed_rate)):
        if not 0 <= share <= 1:
            raise typer.BadParameter("give a share between 0 and 1", param_hint=name)
    if guarantee not in ("exactly-once", "at-least-once"):
        raise typer.BadParameter("choose exactly-once or at-least-once", param_hint="--guarantee")
    if bootstrap is not None and not bootstrap.strip():
        raise typer.BadParameter("give host:port[,host:port]", param_hint="--bootstrap")


def demo(
    data_dir: Annotated[
        Path,
        typer.Option(
            help="Where the broker log, SQLite, Parquet and DuckDB files go "
            "(kept afterwards for inspection)."
        ),
    ] = Path("headwater-demo"),
    rate: Annotated[float, typer.Option(help="Events per second the generator produces.")] = 2000,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Run this many seconds, then drain and exit; "
            "without it the demo runs until Ctrl-C."
        ),
    ] = None,
    dashboard_port: Annotated[
        int, typer.Option(help="Dashboard port on 127.0.0.1; 0 picks a free one.")
    ] = 8050,
    dashboard: Annotated[bool, typer.Option(help="Serve the live dashboard.")] = True,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            "--bootstrap",
            "-b",
            help="Use this existing Kafka cluster (host:port[,host:port]) and start no "
            "embedded broker; topics the demo creates get min(3, brokers) replicas. "
            "Without it the demo runs its own single-node broker.",
            envvar="HEADWATER_BOOTSTRAP",
        ),
    ] = None,
    broker_port: Annotated[
        int, typer.Option(help="Embedded broker port; 0 picks a free one (not with --bootstrap).")
    ] = 0,
    registry_port: Annotated[
        int, typer.Option(help="Schema registry port on 127.0.0.1; 0 picks a free one.")
    ] = 8081,
    registry: Annotated[
        bool, typer.Option(help="Run the schema registry with the demo's schemas.")
    ] = True,
    guarantee: Annotated[
        str, typer.Option(help="Pipeline guarantee: exactly-once or at-least-once.")
    ] = "exactly-once",
    seed: Annotated[int | None, typer.Option(help="Random seed for reproducible events.")] = None,
    anomaly_rate: Annotated[
        float, typer.Option(help="Share of temperature readings that are spikes (0 to 1).")
    ] = 0.002,
    malformed_rate: Annotated[
        float, typer.Option(help="Share of records that are malformed JSON (0 to 1).")
    ] = 0.002,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the final summary as JSON to this file.")
    ] = None,
) -> None:
    """Run the broker, an event generator, the stream pipeline, the sinks and a dashboard.

    Orders, clicks and temperature readings flow through the broker; the pipeline drops test
    orders, enriches orders with customers, counts revenue and clicks per minute, flags
    temperature anomalies and parks malformed records in a dead-letter topic; sinks write SQL
    tables (SQLite), Parquet files and a live DuckDB table. With --bootstrap the same
    application runs against an existing cluster, such as a 3-node Apache Kafka.
    """
    # Imported here so that other commands (the broker above all) do not load the whole stack.
    from headwater.client import AdminError
    from headwater.console import ConsoleError
    from headwater.demo import Demo, DemoSettings

    _check_options(anomaly_rate, malformed_rate, guarantee, bootstrap)
    console = Console()
    settings = DemoSettings(
        data_dir=data_dir,
        bootstrap=bootstrap,
        rate=rate,
        broker_port=broker_port,
        dashboard_port=dashboard_port,
        dashboard=dashboard,
        registry_port=registry_port,
        registry=registry,
        guarantee=guarantee,  # type: ignore[arg-type]
        seed=seed,
        anomaly_rate=anomaly_rate,
        malformed_rate=malformed_rate,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    running = Demo(settings)
    try:
        try:
            with console.status("starting broker, pipeline and sinks…"):
                running.start()
        except AdminError as exc:
            raise fail(f"cannot use the cluster at {running.bootstrap}: {exc}") from None
        except ConsoleError as exc:
            raise fail(f"{exc} (for example --dashboard-port 0 picks a free port)") from None
        except RuntimeError as exc:
            if "registry could not listen" not in str(exc):
                raise
            raise fail(f"{exc}; choose another --registry-port (0 picks a free one)") from None
        where = "broker on" if running.embedded else "no embedded broker; cluster at"
        console.print(f"{where} [bold]{running.bootstrap}[/], data in {data_dir}", soft_wrap=True)
        if running.registry_url:
            console.print(
                f"schema registry: {running.registry_url} "
                f"({len(running.schema_ids)} JSON schemas registered)"
            )
        if running.dashboard_url:
            console.print(
                f"dashboard: [bold link={running.dashboard_url}]{running.dashboard_url}[/]"
            )
        console.print("press Ctrl-C to stop" if duration is None else f"running for {duration:g} s")
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.wait(2.0):
            console.print(_status(running.snapshot()))
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        with console.status("draining in-flight events and stopping…"):
            running.stop()
    summary = running.summary()
    console.print(_summary_table(summary))
    database = data_dir / "demo.sqlite"
    console.print(f"inspect the tables with: sqlite3 {database} .tables")
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2))
    for stage in ("pipeline", "sinks"):
        if summary[stage]["errors"]:
            console.print(f"[red]the {stage} stopped with: {summary[stage]['errors'][0]}[/]")
            raise typer.Exit(1)
