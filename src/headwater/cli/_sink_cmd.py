"""``headwater sink sql|parquet|duckdb``: run a sink connector until Ctrl-C."""

from __future__ import annotations

import logging
import re
import signal
import time
from collections.abc import Callable
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from headwater.cli._common import Bootstrap, fail, parse_pairs

if TYPE_CHECKING:
    from headwater.connect import Sink, SinkStats

# headwater.connect (pyarrow, DuckDB, SQLAlchemy) is imported by each command when it runs,
# so other commands, the broker above all, do not load it.


class Mode(StrEnum):
    APPEND = "append"
    UPSERT = "upsert"


app = typer.Typer(
    help="Write topics to SQL tables, Parquet files or a live DuckDB table.",
    no_args_is_help=True,
)

_BOOT = "127.0.0.1:9092"

Topics = Annotated[
    list[str],
    typer.Option("--topic", "-t", help="Topic to consume; repeat the option for several."),
]
Group = Annotated[
    str | None,
    typer.Option(
        "--group",
        "-g",
        help="Consumer group id. Offsets are committed under it, so a restart with the same "
        "group resumes where the last run stopped. Default: headwater-sink-<kind>-<table>.",
    ),
]
DeadLetters = Annotated[
    str | None,
    typer.Option(
        "--dlq-topic",
        help="Topic for records that cannot be written (bad JSON, wrong types, constraint "
        "violations), with the error in headers. Default: <group>.dlq.",
    ),
]
BatchSize = Annotated[
    int, typer.Option(help="Most records handed to the sink per write (one transaction).")
]
PollMs = Annotated[
    int,
    typer.Option(help="Longest wait for a batch to fill before writing what has arrived, in ms."),
]
ProgressSeconds = Annotated[float, typer.Option(help="Seconds between progress lines on stderr.")]
LogLevel = Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")]


def _name_of(topic: str) -> str:
    return re.sub(r"\W", "_", topic)


def _run(
    kind: str,
    sink: Sink,
    table: str,
    *,
    bootstrap: str,
    topics: list[str],
    group: str | None,
    dlq_topic: str | None,
    batch_size: int,
    poll_ms: int,
    progress_seconds: float,
    extra_progress: Callable[[], str] | None = None,
) -> None:
    """Run ``sink`` in the foreground with progress lines until SIGINT or SIGTERM."""
    from headwater.connect import SinkFailed, SinkRunner, SinkSettings, TableError

    console = Console(stderr=True, highlight=False)
    settings = SinkSettings(
        bootstrap=bootstrap,
        topics=topics,
        group_id=group or f"headwater-sink-{kind}-{table}",
        dead_letter_topic=dlq_topic,
        batch_size=batch_size,
        poll_timeout_s=poll_ms / 1000,
        stats_interval_s=progress_seconds,
    )

    def show(stats: SinkStats) -> None:
        line = f"[{kind}] {stats.summary()}"
        if extra_progress is not None:
            line += "\n" + extra_progress()
        console.print(line)

    runner = SinkRunner(sink, settings, on_progress=show)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        runner.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    console.print(
        f"[{kind}] consuming {', '.join(topics)} as group {settings.group_id} "
        f"from {bootstrap}; dead letters to {settings.dlq_topic}; Ctrl-C stops"
    )
    try:
        stats = runner.run()
    except (SinkFailed, TableError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"[{kind}] stopped: {stats.summary()}")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@app.command("sql")
def sql(
    url: Annotated[
        str,
        typer.Argument(
            help="SQLAlchemy database URL: sqlite:///path.db or "
            "postgresql+psycopg://user@host:port/db."
        ),
    ],
    topic: Topics,
    table: Annotated[
        str | None,
        typer.Option(
            help="Target table; created from the first records when missing. "
            "Default: the first topic's name."
        ),
    ] = None,
    mode: Annotated[
        Mode,
        typer.Option(
            help="append: one row per record, with _topic/_partition/_offset columns unique so "
            "replays add nothing. upsert: one row per key, later records replace it."
        ),
    ] = Mode.APPEND,
    key: Annotated[
        list[str] | None,
        typer.Option(help="Primary-key field for upsert mode; repeat for a composite key."),
    ] = None,
    add_columns: Annotated[
        bool,
        typer.Option(help="Add a nullable column when records bring a field the table lacks."),
    ] = True,
    group: Group = None,
    dlq_topic: DeadLetters = None,
    batch_size: BatchSize = 5000,
    poll_ms: PollMs = 200,
    progress_seconds: ProgressSeconds = 2.0,
    log_level: LogLevel = "WARNING",
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Write records into a SQL table (SQLite or PostgreSQL), one transaction per batch."""
    from headwater.connect import SqlMode, SqlSink, SqlSinkConfig

    _logging(log_level)
    name = table or _name_of(topic[0])
    try:
        sink = SqlSink(SqlSinkConfig(url, name, SqlMode(mode.value), list(key or []), add_columns))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    _run(
        "sql",
        sink,
        name,
        bootstrap=bootstrap,
        topics=topic,
        group=group,
        dlq_topic=dlq_topic,
        batch_size=batch_size,
        poll_ms=poll_ms,
        progress_seconds=progress_seconds,
    )


@app.command("parquet")
def parquet(
    base_url: Annotated[
        str,
        typer.Argument(
            help="Where files go: a directory, file:///dir or s3://bucket/prefix. Files land in "
            "dt=YYYY-MM-DD/hour=HH/ below it, named <topic>-<partition>-<first>-<last>.parquet."
        ),
    ],
    topic: Topics,
    rotate_rows: Annotated[
        int, typer.Option(help="Close files after this many buffered records.")
    ] = 100_000,
    rotate_mb: Annotated[
        float, typer.Option(help="Close files after this many MB of buffered record values.")
    ] = 64.0,
    rotate_seconds: Annotated[
        float, typer.Option(help="Close files at least this often, in seconds.")
    ] = 60.0,
    time_field: Annotated[
        str | None,
        typer.Option(
            help="Record field holding the event time (epoch s or ms, or ISO 8601) that picks "
            "the dt/hour directory. Default: the record's Kafka timestamp."
        ),
    ] = None,
    compression: Annotated[
        str, typer.Option(help="Parquet compression: zstd, snappy, gzip, lz4 or none.")
    ] = "zstd",
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            help="S3-compatible endpoint URL (e.g. http://127.0.0.1:9000). Credentials come "
            "from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --storage-option key=/secret=."
        ),
    ] = None,
    storage_option: Annotated[
        list[str] | None,
        typer.Option(help="fsspec storage option name=value, e.g. region_name=eu-west-1."),
    ] = None,
    group: Group = None,
    dlq_topic: DeadLetters = None,
    batch_size: BatchSize = 5000,
    poll_ms: PollMs = 200,
    progress_seconds: ProgressSeconds = 2.0,
    log_level: LogLevel = "WARNING",
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Write records into time-partitioned Parquet files, exactly once by offset-named files."""
    from headwater.connect import ParquetSink, ParquetSinkConfig

    _logging(log_level)
    options: dict[str, Any] = dict(parse_pairs(storage_option or [], "storage option"))
    if s3_endpoint is not None:
        client_kwargs = dict(options.pop("client_kwargs", None) or {})
        client_kwargs["endpoint_url"] = s3_endpoint
        options["client_kwargs"] = client_kwargs
    config = ParquetSinkConfig(
        base_url,
        storage_options=options,
        rotate_rows=rotate_rows,
        rotate_bytes=int(rotate_mb * 1024 * 1024),
        rotate_seconds=rotate_seconds,
        time_field=time_field,
        compression=compression,
    )
    try:
        sink = ParquetSink(config)
    except (ValueError, OSError, ImportError) as exc:
        raise fail(f"cannot open {base_url!r}: {exc}") from exc
    _run(
        "parquet",
        sink,
        _name_of(topic[0]),
        bootstrap=bootstrap,
        topics=topic,
        group=group,
        dlq_topic=dlq_topic,
        batch_size=batch_size,
        poll_ms=poll_ms,
        progress_seconds=progress_seconds,
    )


@app.command("duckdb")
def duckdb_(
    path: Annotated[str, typer.Argument(help="DuckDB database file (created when missing).")],
    topic: Topics,
    table: Annotated[
        str | None,
        typer.Option(help="Table fed by the topics. Default: the first topic's name."),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(help="SQL to run and print with each progress line, while ingesting."),
    ] = None,
    group: Group = None,
    dlq_topic: DeadLetters = None,
    batch_size: BatchSize = 5000,
    poll_ms: Annotated[
        int,
        typer.Option(
            help="Longest wait before writing what has arrived, in ms; it bounds freshness."
        ),
    ] = 100,
    progress_seconds: ProgressSeconds = 2.0,
    log_level: LogLevel = "WARNING",
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Feed a DuckDB table continuously; rows are queryable within a poll interval."""
    from headwater.connect import DuckDBSink, DuckDBSinkConfig

    _logging(log_level)
    name = table or _name_of(topic[0])
    try:
        sink = DuckDBSink(DuckDBSinkConfig(path, name))
    except Exception as exc:
        raise fail(f"cannot open DuckDB database {path!r}: {exc}") from exc

    def show_query() -> str:
        if query is None:
            return ""
        started = time.perf_counter()
        try:
            rows = sink.query(query)
        except Exception as exc:
            return f"query failed: {exc}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        return (
            "\n".join(str(row) for row in rows[:20]) + f"\n({len(rows)} rows, {elapsed_ms:.1f} ms)"
        )

    _run(
        "duckdb",
        sink,
        name,
        bootstrap=bootstrap,
        topics=topic,
        group=group,
        dlq_topic=dlq_topic,
        batch_size=batch_size,
        poll_ms=poll_ms,
        progress_seconds=progress_seconds,
        extra_progress=show_query if query else None,
    )
