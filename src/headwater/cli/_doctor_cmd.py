"""``headwater doctor``: read a cluster's settings and say, in plain words, what endangers data.

The reading is ``headwater.client.inspect_cluster``, the judging ``headwater.governance``;
this module only turns findings into a table or JSON and an exit status (0 healthy, 1 not).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import Bootstrap, fail, parse_pairs

if TYPE_CHECKING:  # imported when the command runs, so that CLI start stays light
    from headwater.client import ClusterSettings
    from headwater.governance import Finding

_BOOT = "127.0.0.1:9092"
# Piped output keeps whole rows: rich would otherwise wrap tables at 80 columns.
_PIPE_WIDTH = 200


def doctor(
    bootstrap: Bootstrap = _BOOT,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile",
            "-p",
            help="Producer profile your applications use (headwater.client's durable, "
            "low-latency or high-throughput); repeat for several. A profile with acks other "
            "than all is a problem. Default: durable, which headwater's own producers use.",
        ),
    ] = None,
    producer_config: Annotated[
        list[str] | None,
        typer.Option(
            "--producer-config",
            "-X",
            help="librdkafka producer setting your applications add to the profile, as "
            "name=value (e.g. acks=1); repeat for several.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the findings as JSON instead of a table."),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(min=1, help="Seconds to wait for the cluster's answers."),
    ] = 30.0,
) -> None:
    """Check a cluster's replication and durability settings and say what endangers data.

    Reads DescribeCluster, the brokers' and topics' configs (DescribeConfigs) and each
    partition's replicas and in-sync replicas (Metadata). Flags replication factor 1 on a
    multi-broker cluster, min.insync.replicas equal to or above the replication factor (one
    broker down stops acks=all writes) or 1 with replicas (acks=all without redundancy),
    unclean leader election, under-replicated and offline partitions, brokers that are down,
    and producer profiles with acks other than all, each with the config to change. A single
    node is noted, not flagged. Exits 0 when nothing endangers data, 1 otherwise.
    """
    from headwater.client import PRODUCER_PROFILES, InspectError, inspect_cluster
    from headwater.governance import diagnose

    names = profile or ["durable"]
    unknown = [name for name in names if name not in PRODUCER_PROFILES]
    if unknown:
        raise typer.BadParameter(
            f"unknown profile {unknown[0]!r}; choose from {', '.join(PRODUCER_PROFILES)}",
            param_hint="--profile",
        )
    overrides = parse_pairs(producer_config or [], "producer config")
    used = {name: {**PRODUCER_PROFILES[name], **overrides} for name in names}
    others = {name: p for name, p in PRODUCER_PROFILES.items() if name not in used}
    try:
        cluster = inspect_cluster(bootstrap, timeout)
    except InspectError as exc:
        raise fail(f"{exc}; is --bootstrap right and the cluster up?") from None
    findings = diagnose(cluster, used, others)
    problems = [f for f in findings if f.severity == "problem"]
    if as_json:
        report: dict[str, Any] = {
            "bootstrap": bootstrap,
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.controller_id,
            "brokers": {str(k): v for k, v in sorted(cluster.brokers.items())},
            "topics": len(cluster.topics),
            "partitions": sum(len(t.partitions) for t in cluster.topics.values()),
            "producer_profiles": sorted(used),
            "healthy": not problems,
            "findings": [f.to_json() for f in findings],
        }
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(cluster, findings, len(problems))
    if problems:
        raise typer.Exit(1)


def _print(cluster: ClusterSettings, findings: list[Finding], problems: int) -> None:
    console = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
    partitions = sum(len(t.partitions) for t in cluster.topics.values())
    brokers = ", ".join(f"{k} ({v})" for k, v in sorted(cluster.brokers.items()))
    console.print(
        f"cluster {cluster.cluster_id or '?'}: brokers {brokers}; controller "
        f"{cluster.controller_id}; {len(cluster.topics)} topics, {partitions} partitions",
        soft_wrap=True,
    )
    if findings:
        table = Table(show_lines=True)
        table.add_column("", no_wrap=True)
        table.add_column("about", no_wrap=True)
        table.add_column("what endangers data")
        table.add_column("what to change")
        for f in findings:
            mark = "[red]problem[/]" if f.severity == "problem" else "[yellow]note[/]"
            table.add_row(mark, f.subject, f.message, f.fix)
        console.print(table)
    if problems:
        console.print(f"[red]{problems} problem(s) endanger data[/]")
    else:
        console.print("[green]healthy: nothing in these settings endangers data[/]")
