"""Streams benchmark: the same pipelines in headwater.streams, Kafka Streams and Quix Streams.

Pipelines, on 200,000 JSON events of ~100 bytes with 100 keys:
  (a) filter + map to an output topic (headwater per-record API, headwater batch API, Quix);
  (b) a 1-second tumbling count per key on event time with durable state (headwater and
      Kafka Streams at-least-once and exactly-once, Quix at-least-once).
Each run is a separate process with its own consumer group reading the same input topic from
a broker process; throughput is input records / seconds from the first record processed until
the run's final commit. Quix Streams runs from its own virtual environment (bench/.venv-quix,
created on first use) because it pins an older confluent-kafka. Kafka Streams 4.4 runs as a
JVM (interop/jvm/.../bench/StreamsBench.java, built by scripts/install-kafka) with a 1 GB heap,
G1 and one stream thread, as the headwater run has one.

Usage: .venv/bin/python bench/streams.py [--records 200000] [--partitions 2] [--repeat 2]

Each pipeline runs --repeat times and the best run is reported, which filters out moments
when other work on the machine took the CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from headwater.testing import BrokerProcess
from headwater.testing._java import java_command

KAFKA_STREAMS_MAIN = "dev.headwater.interop.bench.StreamsBench"
# Full JIT and G1 for a benchmark, over the test programs' quick-start defaults.
KAFKA_STREAMS_JVM = ("-XX:TieredStopAtLevel=4", "-XX:-UseSerialGC", "-XX:+UseG1GC")

HERE = Path(__file__).resolve().parent
QUIX_VENV = HERE / ".venv-quix"
console = Console()


def quix_python() -> Path:
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        console.print("creating bench/.venv-quix with quixstreams (first run only)…")
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "quixstreams>=3.0"], check=True)
    return python


def make_events(total: int, keys: int) -> list[tuple[bytes, bytes, int]]:
    rng = random.Random(7)
    base = 1_700_000_000_000
    events = []
    for i in range(total):
        key = f"k{i % keys:03d}"
        value = {
            "id": i,
            "key": key,
            "value": round(rng.random(), 4),
            "kind": "reading",
            "site": f"site-{i % 13}",
            "unit": "celsius",
        }
        # 1 ms of event time per event: 200 s of event time, 200 windows per key.
        events.append((key.encode(), json.dumps(value).encode(), base + i))
    return events


def load(
    bootstrap: str, topic: str, partitions: int, events: list[tuple[bytes, bytes, int]]
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result(30)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        }
    )
    for key, value, ts in events:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def run(command: list[str]) -> dict[str, Any]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"run failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="input events")
    parser.add_argument("--keys", type=int, default=100, help="distinct keys")
    parser.add_argument("--partitions", type=int, default=2, help="input topic partitions")
    parser.add_argument("--only", default="", help="comma-separated run names to do (debug)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each pipeline; the best one is reported"
    )
    args = parser.parse_args()
    quix = quix_python()
    events = make_events(args.records, args.keys)
    size = sum(len(v) for _, v, _ in events) / len(events)
    console.print(f"{args.records:,} events, {size:.0f} bytes each on average, {args.keys} keys")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            bootstrap = broker.bootstrap
            load(bootstrap, "events", args.partitions, events)
            runs = [
                ("quix a", "quix", "filter-map", "at-least-once"),
                ("headwater a", "hw", "filter-map", "at-least-once"),
                ("headwater a batch", "hw", "filter-map-batch", "at-least-once"),
                ("headwater a arrow", "hw", "filter-map-arrow", "at-least-once"),
                ("quix b", "quix", "window", "at-least-once"),
                ("headwater b", "hw", "window", "at-least-once"),
                ("headwater b exactly-once", "hw", "window", "exactly-once"),
                ("kafka streams a", "ks", "filter-map", "at-least-once"),
                ("kafka streams b", "ks", "window", "at-least-once"),
                ("kafka streams b exactly-once", "ks", "window", "exactly-once"),
            ]
            only = set(filter(None, args.only.split(",")))
            for index, (name, engine, pipeline, guarantee) in enumerate(runs):
                if only and name not in only:
                    continue
                console.print(f"running {name}…")
                attempts = []
                for attempt in range(args.repeat):
                    # Each attempt has its own output topic, consumer group and state.
                    sink = f"out-{index}-{attempt}"
                    state = str(Path(tmp) / f"state-{index}-{attempt}")
                    if engine == "ks":
                        attempts.append(
                            run(
                                java_command(
                                    KAFKA_STREAMS_MAIN,
                                    pipeline,
                                    bootstrap,
                                    "events",
                                    sink,
                                    str(args.records),
                                    state,
                                    guarantee,
                                    heap_mb=1024,
                                    jvm_options=KAFKA_STREAMS_JVM,
                                )
                            )
                        )
                        continue
                    if engine == "quix":
                        command = [str(quix), str(HERE / "_quix_runner.py"), pipeline]
                        tail = []
                    else:
                        command = [sys.executable, str(HERE / "_headwater_runner.py"), pipeline]
                        tail = [guarantee]
                    command += [bootstrap, "events", sink, str(args.records), state, *tail]
                    attempts.append(run(command))
                results[name] = max(attempts, key=lambda r: r["processed"] / r["seconds"])
                r = results[name]
                console.print(
                    f"  {r['processed']:,} records in {r['seconds']:.2f} s = "
                    f"{r['processed'] / r['seconds']:,.0f} records/s; first record after "
                    f"{r['first_record_s']:.2f} s"
                )
        finally:
            broker.stop()
    report(results)


def report(results: dict[str, dict[str, Any]]) -> None:
    def rate(name: str) -> float:
        r = results.get(name)
        return 0.0 if r is None else float(r["processed"] / r["seconds"])

    table = Table(title="streams: records/s (higher is better)")
    for column in ("run", "records/s", "ratio", "target", "first record"):
        table.add_column(column)
    rows = [
        ("quix a", "quix a", None),
        ("headwater a", "quix a", 3.0),
        ("headwater a batch", "quix a", 8.0),
        ("headwater a arrow", "quix a", 8.0),
        ("quix b", "quix b", None),
        ("headwater b", "quix b", 5.0),
        ("headwater b exactly-once", "headwater b", 0.8),
        ("kafka streams a", "kafka streams a", None),
        ("headwater a", "kafka streams a", 0.5),
        ("headwater a batch", "kafka streams a", 0.5),
        ("kafka streams b", "kafka streams b", None),
        ("headwater b", "kafka streams b", 0.5),
        ("kafka streams b exactly-once", "kafka streams b exactly-once", None),
        ("headwater b exactly-once", "kafka streams b exactly-once", 0.5),
    ]
    for name, base, target in rows:
        if name not in results:
            continue
        ratio = rate(name) / rate(base) if rate(base) else 0.0
        table.add_row(
            name,
            f"{rate(name):,.0f}",
            "" if base == name else f"{ratio:.2f}x {base}",
            "" if target is None else f">= {target:g}x",
            f"{results[name]['first_record_s']:.2f} s",
        )
    console.print(table)


if __name__ == "__main__":
    main()
