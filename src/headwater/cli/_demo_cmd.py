"""``headwater demo``: start a broker, stream keyed events through it, print a summary."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from headwater.broker import BrokerConfig, BrokerThread
from headwater.cli._common import fail
from headwater.client import Admin, AdminError, consume, produce_all

TOPIC = "demo.events"


def _events(count: int, keys: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    kinds = ("order", "click", "reading")
    out = []
    seq: dict[str, int] = {}
    for _ in range(count):
        key = f"customer-{rng.randrange(keys):03d}"
        seq[key] = seq.get(key, 0) + 1
        event = {
            "kind": rng.choice(kinds),
            "customer": key,
            "seq": seq[key],
            "amount": round(rng.uniform(1, 250), 2),
            "ts": int(time.time() * 1000),
        }
        out.append((key.encode(), json.dumps(event).encode()))
    return out


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Broker data directory (kept afterwards for inspection).")
    ] = Path("headwater-demo-data"),
    port: Annotated[int, typer.Option(help="Broker port; 0 picks a free one.")] = 0,
    events: Annotated[int, typer.Option(help="How many keyed events to stream.")] = 5000,
    keys: Annotated[int, typer.Option(help="How many distinct keys (customers).")] = 50,
    partitions: Annotated[int, typer.Option(help="Partitions of the demo topic.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed for the generated events.")] = 7,
) -> None:
    """Run the broker, produce keyed events, consume them in a group, check per-key order."""
    console = Console()
    config = BrokerConfig(port=port, data_dir=data_dir, group_initial_rebalance_delay_ms=0)
    with BrokerThread(config) as running:
        bootstrap = running.bootstrap
        console.print(f"broker running on [bold]{bootstrap}[/], data in {data_dir}")
        admin = Admin(bootstrap)
        try:
            if TOPIC not in admin.list_topics():
                admin.create_topic(TOPIC, partitions, {"retention.ms": "86400000"})
        except AdminError as exc:
            raise fail(f"cannot create the demo topic: {exc}") from None
        batch = _events(events, keys, seed)
        started = time.perf_counter()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("producing", total=len(batch))
            produce_all(
                bootstrap, TOPIC, batch, on_progress=lambda n: progress.update(task, completed=n)
            )
        produce_s = time.perf_counter() - started
        group = f"demo-{int(time.time())}"
        started = time.perf_counter()
        last_seq: dict[bytes, int] = {}
        per_partition: dict[int, int] = {}
        out_of_order = 0
        received = 0
        for record in consume(
            bootstrap, TOPIC, group_id=group, max_records=events, idle_timeout_s=15
        ):
            received += 1
            per_partition[record.partition] = per_partition.get(record.partition, 0) + 1
            seq = json.loads(record.value or b"{}").get("seq", 0)
            key = record.key or b""
            if seq <= last_seq.get(key, 0):
                out_of_order += 1
            last_seq[key] = seq
        consume_s = time.perf_counter() - started
        del admin  # close the admin client before the broker stops
    table = Table(title="headwater demo")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("events produced (acks=all, fsynced)", str(len(batch)))
    table.add_row("produce rate", f"{len(batch) / produce_s:,.0f} events/s")
    table.add_row("events consumed by group", str(received))
    table.add_row("consume rate", f"{received / max(consume_s, 1e-9):,.0f} events/s")
    table.add_row("distinct keys", str(len(last_seq)))
    table.add_row(
        "records per partition", ", ".join(f"p{p}={n}" for p, n in sorted(per_partition.items()))
    )
    table.add_row("per-key order violations", str(out_of_order))
    console.print(table)
    if received != events or out_of_order:
        raise fail(
            f"expected {events} events in per-key order, got {received} with "
            f"{out_of_order} out of order"
        )
