"""Registry benchmark: Avro through the registry-aware serializer vs plain JSON, one run.

    .venv/bin/python bench/registry.py [--records 200000] [--lookups 500]

Starts the embedded broker and the schema registry in this process on free loopback ports.
Workloads:
  serialize + produce records of a small order (5 fields) with the same producer settings
  (acks=1, linger.ms=5, lz4), once with orjson and once with AvroSerde (Confluent wire format);
  schema lookup latency: uncached (GET /schemas/ids/{id} over HTTP) and cached (the serde's
  per-subject cache after the first lookup).
Prints every figure and the Avro/JSON throughput ratio (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from headwater.client._schema_serde import AvroSerde
from headwater.registry import RegistryServer
from headwater.testing import embedded_broker

ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "currency", "type": "string"},
        {"name": "paid", "type": "boolean"},
    ],
}
PRODUCER = {"acks": 1, "linger.ms": 5, "compression.type": "lz4", "batch.size": 1024 * 1024}


def orders(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "customer": f"customer-{i % 997}", "amount": i * 0.25, "currency": "EUR",
         "paid": i % 2 == 0}
        for i in range(n)
    ]  # fmt: skip


def produce_run(
    bootstrap: str, topic: str, values: list[Any], encode: Callable[[Any], bytes | None]
) -> float:
    """Records per second for encode + produce + delivery of every value."""
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    producer.produce(topic, value=encode(values[0]))  # metadata and schema warm-up
    producer.flush(30)
    start = time.perf_counter()
    for value in values:
        data = encode(value)
        while True:
            try:
                producer.produce(topic, value=data)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - start
    assert remaining == 0, f"{remaining} records not delivered"
    return len(values) / elapsed


def lookup_latency(url: str, schema_id: int, count: int) -> list[float]:
    """Milliseconds per uncached schema fetch by id over HTTP (a fresh lookup each time)."""
    out = []
    with httpx.Client(base_url=url) as http:
        for _ in range(count):
            start = time.perf_counter()
            answer = http.get(f"/schemas/ids/{schema_id}")
            out.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    values = orders(args.records)
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_broker(Path(tmp) / "data") as broker,
        RegistryServer(broker.bootstrap, port=0) as registry,
    ):
        client = SchemaRegistryClient({"url": registry.url})
        serde = AvroSerde(client, ORDER)
        json_rate = produce_run(broker.bootstrap, "bench-json", values, orjson.dumps)
        avro_rate = produce_run(
            broker.bootstrap, "bench-avro", values, lambda v: serde.serialize(v, "bench-avro")
        )
        schema_id = serde.schema_id("bench-avro")
        uncached = lookup_latency(registry.url, schema_id, args.lookups)
        start = time.perf_counter()
        for _ in range(100_000):
            serde.schema_id("bench-avro")
        cached_us = (time.perf_counter() - start) / 100_000 * 1e6
        client.close()
    avro_bytes = len(serde.serialize(values[1], "bench-avro") or b"")
    json_bytes = len(orjson.dumps(values[1]))
    print(f"records                     {args.records:>12,}")
    print(
        f"value size                  json {json_bytes} B, avro {avro_bytes} B "
        "(incl. 5-byte header)"
    )
    print(f"json   serialize+produce    {json_rate:>12,.0f} rec/s")
    print(f"avro   serialize+produce    {avro_rate:>12,.0f} rec/s")
    print(f"ratio avro/json             {avro_rate / json_rate:>12.2f}  (target >= 0.80)")
    print(
        f"schema lookup uncached      p50 {statistics.median(uncached):.3f} ms  "
        f"p99 {statistics.quantiles(uncached, n=100)[98]:.3f} ms  (HTTP GET by id)"
    )
    print(
        f"schema lookup cached        {cached_us:>12.3f} us  "
        f"(serde cache; {serde.lookups} registry call)"
    )


if __name__ == "__main__":
    main()
