"""A broker process against a long stream of mutated requests, with a normal client alongside.

    .venv/bin/python bench/hostile.py                    # 1,000,000 frames
    .venv/bin/python bench/hostile.py --frames 100000 --concurrency 32

Each mutated copy of a recorded client request goes on its own fresh connection (see
tests/fuzz/hostile.py). Every ``--check-every`` frames a normal client lists topics, produces
ten records and consumes them back. At the end the broker must still run, hold no connection
(hung connections are those the broker keeps after their clients left), and its peak resident
memory is reported. Exit status 1 if the broker died, a normal round failed or a connection hung.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "fuzz"))

from headwater.testing import BrokerProcess
from hostile import Outcome, load_seeds, run_hostile
from test_hostile_clients import metric, normal_round, rss_mb, wait_for

HANDLER_ERRORS = 'headwater_broker_connections_closed_total{reason="handler_error"}'


def first_traceback(log: list[str]) -> str:
    """The broker's first logged traceback, whole (its log keeps one per failed handler)."""
    for start, line in enumerate(log):
        if line.startswith("Traceback"):
            end = start + 1
            while end < len(log) and log[end].startswith((" ", "\t", "Traceback", "The ")):
                end += 1
            return "".join(log[start : end + 1])
    return "(no traceback in the broker's log)"


class PeakMemory:
    """Samples the broker's resident memory five times a second."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.broker = broker
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError, AssertionError):
                self.peak_mb = max(self.peak_mb, rss_mb(self.broker))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=1_000_000, help="mutated frames to send")
    parser.add_argument("--concurrency", type=int, default=32, help="connections at a time")
    parser.add_argument("--check-every", type=int, default=50_000, help="frames per normal round")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mutations")
    parser.add_argument(
        "--idle-ms", type=int, default=5000, help="the broker's connections_max_idle_ms"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headwater-hostile-"))
    seeds = load_seeds()
    env = {"HEADWATER_CONNECTIONS_MAX_IDLE_MS": str(args.idle_ms)}
    failures: list[str] = []
    total = Outcome()
    started = time.monotonic()
    try:
        plain = (sys.executable, str(Path(__file__).parent / "_plain_broker.py"))
        with BrokerProcess(work / "data", "--metrics-port", "0", env=env, launcher=plain) as broker:
            memory = PeakMemory(broker)
            normal_round(broker.bootstrap, 0)
            sent = 0
            round_no = 0
            while sent < args.frames:
                batch = min(args.check_every, args.frames - sent)
                round_no += 1
                outcome = asyncio.run(
                    run_hostile(
                        "127.0.0.1",
                        broker.port,
                        batch,
                        seed=args.seed * 1_000_003 + round_no,
                        concurrency=args.concurrency,
                        seeds=seeds,
                    )
                )
                sent += batch
                for name in ("answered", "closed", "waiting", "refused"):
                    setattr(total, name, getattr(total, name) + getattr(outcome, name))
                total.by_kind.update(outcome.by_kind)
                assert broker.process is not None
                if broker.process.poll() is not None:
                    failures.append(f"broker died after {sent} frames")
                    break
                try:
                    normal_round(broker.bootstrap, round_no)
                except Exception as exc:
                    failures.append(f"normal round {round_no} failed: {exc!r}")
                rate = sent / (time.monotonic() - started)
                print(
                    f"{sent:>10,} frames  {rate:>7,.0f}/s  answered {total.answered:,}  "
                    f"closed {total.closed:,}  waiting {total.waiting:,}  "
                    f"refused {total.refused:,}  peak RSS {memory.peak_mb:.0f} MB",
                    flush=True,
                )
            hung = rejected = errors = 0.0
            if not failures:
                wait_for(lambda: metric(broker, "headwater_broker_connections_active") == 0, 60)
                hung = metric(broker, "headwater_broker_connections_active")
                rejected = metric(broker, "headwater_broker_requests_rejected_total")
                errors = metric(broker, HANDLER_ERRORS)
                if hung:
                    failures.append(f"{hung:.0f} connections still held by the broker")
                if errors:
                    failures.append(f"{errors:.0f} requests raised in their handler")
                    print(first_traceback(broker.log))
            memory.stop()
            elapsed = time.monotonic() - started
            print(
                f"\nframes sent              {sent:,} in {elapsed:,.0f} s ({sent / elapsed:,.0f}/s)"
            )
            print(f"broker crashes           {0 if broker.process.poll() is None else 1}")
            print(f"hung connections         {hung:.0f}")
            print(f"answered / closed        {total.answered:,} / {total.closed:,}")
            print(f"client gave up waiting   {total.waiting:,} (long polls, unfinished frames)")
            print(f"requests rejected        {rejected:,.0f} (counted by the broker)")
            print(f"handler exceptions       {errors:.0f}")
            print(f"peak resident memory     {memory.peak_mb:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
