"""Transactional vs non-transactional produce throughput: headwater vs tansu, one run.

    .venv/bin/python bench/transactions.py [--records 300000] [--per-txn 1000]
                                           [--producers 1,4,8] [--only NAME]

Both brokers get the same confluent-kafka producers: 100-byte records, linger.ms=5, lz4,
acks=all, enable.idempotence. For each producer count N, N producers (one thread each, one
partition) write ``--records`` records between them without transactions, then the same number
in transactions of ``--per-txn`` records (begin, produce, commit). One producer shows the latency
of a transaction: librdkafka runs AddPartitionsToTxn, the produce and EndTxn one after another
and waits for each. Several producers overlap those waits, as an application's instances do.
Prints records/s, each broker's transactional/non-transactional ratio for the same N and against
its best non-transactional figure, and the headwater/tansu ratio. A broker that fails at
transactions is reported as not supporting them, with its error.

headwater fsyncs acks=all writes and each commit; tansu runs on its memory storage engine.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
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


def _run_threads(producers: list[Producer], work: Any) -> float:
    """Seconds for every producer to finish ``work(producer)``, each on its own thread."""
    threads = [threading.Thread(target=work, args=(p,)) for p in producers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def produce_plain(bootstrap: str, topic: str, records: int, producers: int) -> float:
    """Records/s for ``records`` acknowledged records from ``producers`` idempotent producers,
    one thread each."""
    clients = [Producer(_config(bootstrap)) for _ in range(producers)]
    payload = _payload()
    failed: list[object] = []
    unsent: list[int] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    # Connections and metadata before the clock starts, as init_transactions does for the
    # transactional run.
    for client in clients:
        _produce(client, topic, payload, report)
        client.flush(30)

    def work(producer: Producer) -> None:
        for i in range(records // producers):
            _produce(producer, topic, payload, report)
            if i % 10_000 == 0:
                producer.poll(0)
        unsent.append(producer.flush(300))

    elapsed = _run_threads(clients, work)
    if sum(unsent) or failed:
        raise RuntimeError(f"{sum(unsent)} records unsent, {len(failed)} failed: {failed[:1]}")
    return records // producers * producers / elapsed


def produce_transactional(
    bootstrap: str, topic: str, records: int, per_txn: int, producers: int
) -> float:
    """Records/s for ``records`` records in committed transactions of ``per_txn`` each,
    shared among ``producers`` transactional producers (own transactional id and thread)."""
    clients = [
        Producer(_config(bootstrap, **{"transactional.id": f"bench-{uuid.uuid4()}"}))
        for _ in range(producers)
    ]
    for client in clients:
        client.init_transactions(30)
    payload = _payload()
    transactions = records // per_txn // producers
    errors: list[BaseException] = []

    def work(producer: Producer) -> None:
        try:
            for _ in range(transactions):
                producer.begin_transaction()
                for _ in range(per_txn):
                    _produce(producer, topic, payload, None)
                producer.commit_transaction(60)
        except KafkaException as exc:
            errors.append(exc)

    elapsed = _run_threads(clients, work)
    if errors:
        raise errors[0]
    return transactions * per_txn * producers / elapsed


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


Results = dict[tuple[str, int], float]  # (plain | txn, producers) -> records/s


def run(name: str, records: int, per_txn: int, counts: list[int], work: Path) -> Results:
    print(f"\n== {name} ==", flush=True)
    results: Results = {}
    with base.start_broker(name, work / name) as running:
        bootstrap = running.bootstrap
        for producers in counts:
            plain_topic, txn_topic = f"bench-plain-{producers}", f"bench-txn-{producers}"
            base.create_topic(bootstrap, plain_topic, 1)
            base.create_topic(bootstrap, txn_topic, 1)
            plain = produce_plain(bootstrap, plain_topic, records, producers)
            results["plain", producers] = plain
            label = f"{producers} producer{'s' if producers > 1 else ''}"
            print(f"  {label:<12} non-transactional {plain:>12,.0f} rec/s", flush=True)
            try:
                txn = produce_transactional(bootstrap, txn_topic, records, per_txn, producers)
                high, stable = visible_records(bootstrap, txn_topic)
                expected = records // per_txn // producers * per_txn * producers
                if high < expected:
                    raise RuntimeError(f"only {high} offsets written for {expected} records")
                if stable != high:
                    raise RuntimeError(f"last stable offset {stable} behind high watermark {high}")
            except (KafkaException, RuntimeError) as exc:
                print(f"  {label:<12} transactional: {name} does not support them: {exc}")
                results["txn", producers] = math.nan
                continue
            results["txn", producers] = txn
            print(
                f"  {label:<12} transactional     {txn:>12,.0f} rec/s "
                f"({per_txn:,} records per transaction), {txn / plain:.2f} of non-transactional",
                flush=True,
            )
    return results


def _ratio(ours: float, theirs: float) -> str:
    return "n/a" if math.isnan(ours) or math.isnan(theirs) else f"{ours / theirs:.2f}"


def _cell(value: float) -> str:
    return f"{'failed':>14}" if math.isnan(value) else f"{value:>14,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000, help="records per run")
    parser.add_argument("--per-txn", type=int, default=1000, help="records per transaction")
    parser.add_argument(
        "--producers",
        default="1,4,8",
        help="comma-separated producer counts to run (each its own client and thread)",
    )
    parser.add_argument("--only", choices=["headwater", "tansu"], help="run one broker only")
    args = parser.parse_args()
    counts = [int(n) for n in args.producers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="headwater-bench-txn-"))
    try:
        names = [args.only] if args.only else ["headwater", "tansu"]
        results = {n: run(n, args.records, args.per_txn, counts, work) for n in names}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = "".join(f"{n:>14}" for n in names)
    print(f"\n{'producers':<10}{'records/s':<30}{header}", end="")
    print(f"{'headwater/tansu':>17}" if len(names) == 2 else "")
    for producers in counts:
        best_plain = {n: max(v for (k, _), v in results[n].items() if k == "plain") for n in names}
        rows = [
            ("non-transactional", {n: results[n]["plain", producers] for n in names}),
            ("transactional", {n: results[n]["txn", producers] for n in names}),
        ]
        for label, values in rows:
            cells = "".join(_cell(values[n]) for n in names)
            ratio = _ratio(values["headwater"], values["tansu"]) if len(names) == 2 else ""
            print(f"{producers:<10}{label:<30}{cells}{ratio:>17}")
        same = "".join(
            f"{_ratio(results[n]['txn', producers], results[n]['plain', producers]):>14}"
            for n in names
        )
        best = "".join(f"{_ratio(results[n]['txn', producers], best_plain[n]):>14}" for n in names)
        print(f"{producers:<10}{'txn / non-txn, same producers':<30}{same}")
        print(f"{producers:<10}{'txn / best non-txn':<30}{best}")


if __name__ == "__main__":
    main()
