"""A counting app run as a separate process by the streams crash tests (killed with -9).

Usage: python streams_crash_app.py BOOTSTRAP STATE_DIR GUARANTEE [counter|window]
"""

from __future__ import annotations

import sys
from pathlib import Path

from headwater.streams import App, Processor, Record, TaskContext


class KeyCounter(Processor):
    stores = ("counts",)

    def open(self, ctx: TaskContext) -> None:
        self.store = ctx.store("counts")

    def process(self, records: list[Record], port: int = 0) -> list[Record]:
        out = []
        for r in records:
            count = self.store.get(r.key, 0) + 1
            self.store.put(r.key, count)
            out.append(r.replace(value={"key": r.key, "count": count, "id": r.value["id"]}))
        return out


def main() -> None:
    bootstrap, state_dir, guarantee = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "counter"
    app = App(
        "crash-app",
        bootstrap,
        state_dir=Path(state_dir),
        guarantee=guarantee,  # type: ignore[arg-type]
        commit_interval_ms=50,
        batch_size=50,
        consumer_overrides={"session.timeout.ms": 6000},
    )
    if mode == "window":
        app.stream("crash-in", timestamp_fn=lambda v: v["ts"]).tumbling_window(1000).count(
            emit="update", name="per-second"
        ).to_topic("crash-out")
    else:
        app.stream("crash-in").process(KeyCounter, stores=("counts",)).to_topic("crash-out")
    print("running", flush=True)
    app.run()


if __name__ == "__main__":
    main()
