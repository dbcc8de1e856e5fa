"""``headwater topics``: create, list, describe, alter and delete topics."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import Bootstrap, fail, parse_pairs
from headwater.client import Admin, AdminError

app = typer.Typer(help="Create, list, describe, alter and delete topics.", no_args_is_help=True)
_BOOT = "127.0.0.1:9092"

ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--config",
        "-c",
        help="Topic config as name=value, e.g. retention.ms=3600000; repeat for several.",
    ),
]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Topic name (letters, digits, '.', '_', '-').")],
    partitions: Annotated[int, typer.Option("--partitions", "-p", help="Partition count.")] = 1,
    config: ConfigOpt = None,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            "--replication-factor",
            "-r",
            min=1,
            help="Copies of each partition; default min(3, brokers in the cluster), with "
            "min.insync.replicas=2 at 3 unless --config sets it.",
        ),
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Create a topic, replicated as the cluster allows unless told otherwise."""
    admin = Admin(bootstrap)
    try:
        if replication_factor is None:
            replication_factor = admin.replication().factor
        admin.create_topic(
            name,
            partitions,
            parse_pairs(config or [], "config"),
            replication_factor=replication_factor,
        )
    except AdminError as exc:
        raise fail(f"cannot create topic {name!r}: {exc}") from None
    typer.echo(
        f"created topic {name} with {partitions} partition(s), "
        f"replication factor {replication_factor}"
    )


@app.command("list")
def list_(bootstrap: Bootstrap = _BOOT) -> None:
    """List topics and their partition counts."""
    for name, count in Admin(bootstrap).list_topics().items():
        typer.echo(f"{name}\t{count}")


@app.command("describe")
def describe(
    name: Annotated[str, typer.Argument(help="Topic to describe.")],
    all_configs: Annotated[
        bool, typer.Option("--all-configs", help="Show defaults too, not only overrides.")
    ] = False,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Show partitions with their earliest and latest offsets, and the topic's configs."""
    try:
        info = Admin(bootstrap).describe_topic(name)
    except AdminError as exc:
        raise fail(str(exc)) from None
    console = Console()
    table = Table(title=f"topic {name}")
    for column in ("partition", "leader", "earliest", "latest", "records"):
        table.add_column(column, justify="right")
    for p in info.partitions:
        table.add_row(
            str(p.partition),
            str(p.leader),
            str(p.earliest),
            str(p.latest),
            str(p.latest - p.earliest),
        )
    console.print(table)
    configs = Table(title="configs")
    configs.add_column("name")
    configs.add_column("value")
    configs.add_column("source")
    for key, (value, is_default) in info.configs.items():
        if all_configs or not is_default:
            configs.add_row(key, value, "default" if is_default else "topic")
    console.print(configs)


@app.command("alter")
def alter(
    name: Annotated[str, typer.Argument(help="Topic to change.")],
    config: ConfigOpt = None,
    delete_config: Annotated[
        list[str] | None,
        typer.Option("--delete-config", help="Config name to reset to its default; repeatable."),
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Grow the topic to this many partitions.")
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Change a topic's configs or add partitions."""
    admin = Admin(bootstrap)
    try:
        if config or delete_config:
            admin.alter_configs(name, parse_pairs(config or [], "config"), delete_config or [])
        if partitions is not None:
            admin.add_partitions(name, partitions)
    except AdminError as exc:
        raise fail(f"cannot alter topic {name!r}: {exc}") from None
    typer.echo(f"altered topic {name}")


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Topic to delete with all its data.")],
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Delete a topic and its data."""
    try:
        Admin(bootstrap).delete_topic(name)
    except AdminError as exc:
        raise fail(f"cannot delete topic {name!r}: {exc}") from None
    typer.echo(f"deleted topic {name}")
