"""Runs one headwater.streams pipeline and prints its timing as JSON (for bench/streams.py)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from headwater.streams import App


def main() -> None:
    pipeline, bootstrap, source, sink, total, state_dir, guarantee = sys.argv[1:8]
    expected = int(total)
    started = time.monotonic()
    app = App(
        f"hw-{pipeline}-{sink}",
        bootstrap,
        guarantee=guarantee,  # type: ignore[arg-type]
        state_dir=state_dir,
        consumer_overrides={"session.timeout.ms": 6000},
    )
    stream = app.stream(source)
    if pipeline == "filter-map":
        stream.filter(lambda v: v["value"] >= 0.1).map(
            lambda v: {"id": v["id"], "key": v["key"], "scaled": v["value"] * 100}
        ).to_topic(sink)
    elif pipeline == "filter-map-batch":

        def keep(values: list[Any]) -> list[bool]:
            return [v["value"] >= 0.1 for v in values]

        def scale(values: list[Any]) -> list[Any]:
            return [{"id": v["id"], "key": v["key"], "scaled": v["value"] * 100} for v in values]

        stream.filter_batch(keep).map_batch(scale).to_topic(sink)
    elif pipeline == "filter-map-arrow":
        import pyarrow.compute as pc

        def vectorized(table: Any) -> Any:
            table = table.filter(pc.greater_equal(table["value"], 0.1))
            scaled = pc.multiply(table["value"], 100)
            return table.select(["id", "key", "_key", "_timestamp", "_row"]).append_column(
                "scaled", scaled
            )

        stream.apply_arrow(vectorized).to_topic(sink)
    else:
        stream.tumbling_window(1000).count().to_topic(sink)

    def done() -> bool:
        stats = app.stats
        return stats is not None and stats.consumed >= expected

    stats = app.run(until=done)
    ended = time.monotonic()
    assert stats.first_record_at is not None
    print(
        json.dumps(
            {
                "processed": stats.consumed,
                "seconds": ended - stats.first_record_at,
                "first_record_s": stats.first_record_at - started,
            }
        )
    )


if __name__ == "__main__":
    main()
