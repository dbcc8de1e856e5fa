"""Transactional vs non-transactional produce throughput: headwater vs tansu, one run.

    .venv/bin/python bench/transactions.py [--records 200000] [--per-txn 1000] [--only NAME]

Both brokers get the same confluent-kafka producer: 100-byte records, linger.ms=5, lz4,
acks=all, enable.idempotence. It writes ``--records`` records without transactions, then the
same number in transactions of ``--per-txn`` records (begin, produce, commit). Prints records/s
for each, the transactional/non-transactional ratio per broker and the headwater/tansu ratio.
A broker that fails at transactions is reported as not supporting them, with its error.

headwater fsyncs acks=all writes and each commit; tansu runs on its memory storage engine.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).parent))
import broker as base  # bench/broker.py: start_broker, create_topic

RECORD_BYTES = 100


def _config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "compression.type": "lz4",
        "acks": "all",
        "enable.idempotence": True,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "log_level": 0,
        **extra,
    }


def _payload() -> bytes:
    return os.urandom(RECORD_BYTES // 2).hex().encode()


def _produce(producer: Producer, topic: str, payload: bytes, on_delivery: Any) -> None:
    while True:
        try:
            producer.produce(topic, payload, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.01)


def produce_plain(bootstrap: str, topic: str, records: int) -> float:
    """Records/s for ``records`` acknowledged records from an idempotent producer."""
    producer = Producer(_config(bootstrap))
    payload = _payload()
    failed: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    # Connections and metadata before the clock starts, as init_transactions does for the
    # transactional run.
    _produce(producer, topic, payload, report)
    producer.flush(30)
    started = time.perf_counter()
    for i in range(records):
        _produce(producer, topic, payload, report)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(300)
    elapsed = time.perf_counter() - started
    if remaining or failed:
        raise RuntimeError(f"{remaining} records unsent, {len(failed)} failed, e.g. {failed[:1]}")
    return records / elapsed


def produce_transactional(bootstrap: str, topic: str, records: int, per_txn: int) -> float:
    """Records/s for ``records`` records in committed transactions of ``per_txn`` each."""
    producer = Producer(_config(bootstrap, **{"transactional.id": f"bench-{uuid.uuid4()}"}))
    producer.init_transactions(30)
    payload = _payload()
    transactions = records // per_txn
    started = time.perf_counter()
    for _ in range(transactions):
        producer.begin_transaction()
        for _ in range(per_txn):
            _produce(producer, topic, payload, None)
        producer.commit_transaction(60)
    return transactions * per_txn / (time.perf_counter() - started)


def visible_records(bootstrap: str, topic: str) -> tuple[int, int]:
    """(high watermark, last stable offset) of partition 0: a cheap check that the records
    really landed and that no transaction was left open."""
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-check-{uuid.uuid4()}",
                "isolation.level": isolation,
                "log_level": 0,
            }
        )
        ends.append(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1])
        consumer.close()
    return ends[0], ends[1]


def run(name: str, records: int, per_txn: int, work: Path) -> dict[str, float]:
    print(f"\n== {name} ==", flush=True)
    results = {"plain": math.nan, "txn": math.nan}
    with base.start_broker(name, work / name) as running:
        bootstrap = running.bootstrap
        base.create_topic(bootstrap, "bench-plain", 1)
        base.create_topic(bootstrap, "bench-txn", 1)
        results["plain"] = produce_plain(bootstrap, "bench-plain", records)
        print(f"  non-transactional  {results['plain']:>12,.0f} rec/s", flush=True)
        try:
            txn = produce_transactional(bootstrap, "bench-txn", records, per_txn)
            high, stable = visible_records(bootstrap, "bench-txn")
            if high < records:
                raise RuntimeError(f"only {high} offsets written for {records} records")
            if stable != high:
                raise RuntimeError(f"last stable offset {stable} behind high watermark {high}")
        except (KafkaException, RuntimeError) as exc:
            print(f"  transactional      {name} does not support transactions: {exc}", flush=True)
        else:
            results["txn"] = txn
            print(
                f"  transactional      {txn:>12,.0f} rec/s ({per_txn:,} records per transaction)",
                flush=True,
            )
            print(f"  transactional / non-transactional  {txn / results['plain']:.2f}", flush=True)
    return results


def _ratio(ours: float, theirs: float) -> str:
    return "n/a" if math.isnan(ours) or math.isnan(theirs) else f"{ours / theirs:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="records per run")
    parser.add_argument("--per-txn", type=int, default=1000, help="records per transaction")
    parser.add_argument("--only", choices=["headwater", "tansu"], help="run one broker only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headwater-bench-txn-"))
    try:
        names = [args.only] if args.only else ["headwater", "tansu"]
        results = {n: run(n, args.records, args.per_txn, work) for n in names}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(results) == 2:
        ours, theirs = results["headwater"], results["tansu"]
        print(f"\n{'records/s':<22}{'headwater':>14}{'tansu':>14}{'headwater/tansu':>17}")
        for label, key in (("non-transactional", "plain"), ("transactional", "txn")):
            cells = [
                f"{v:>14,.0f}" if not math.isnan(v) else f"{'failed':>14}"
                for v in (
                    ours[key],
                    theirs[key],
                )
            ]
            print(f"{label:<22}{cells[0]}{cells[1]}{_ratio(ours[key], theirs[key]):>17}")
        print(
            f"{'txn / non-txn':<22}{_ratio(ours['txn'], ours['plain']):>14}"
            f"{_ratio(theirs['txn'], theirs['plain']):>14}"
        )


if __name__ == "__main__":
    main()
