"""Runs one pipeline in Quix Streams and prints its timing as JSON (run by bench/streams.py).

Executed by the separate virtual environment that holds quixstreams, because quixstreams pins
an older confluent-kafka than headwater uses.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    pipeline, bootstrap, source, sink, total, state_dir = sys.argv[1:7]
    expected = int(total)
    from quixstreams import Application

    started = time.monotonic()
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{pipeline}-{sink}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        consumer_extra_config={"session.timeout.ms": 6000},
        loglevel="WARNING",
    )
    seen = 0
    first: list[float] = []

    def count(value: Any) -> bool:
        nonlocal seen
        if not first:
            first.append(time.monotonic())
        seen += 1
        if seen >= expected:
            app.stop()
        return True

    sdf = app.dataframe(app.topic(source, value_deserializer="json"))
    out = app.topic(sink, value_serializer="json")
    if pipeline == "filter-map":
        sdf = sdf.filter(lambda v: count(v) and v["value"] >= 0.1)
        sdf = sdf.apply(lambda v: {"id": v["id"], "key": v["key"], "scaled": v["value"] * 100})
    else:
        sdf = sdf.filter(count)
        sdf = sdf.tumbling_window(1000).count().final()
    sdf.to_topic(out)
    app.run()
    ended = time.monotonic()
    print(
        json.dumps(
            {
                "processed": seen,
                "seconds": ended - first[0],
                "first_record_s": first[0] - started,
            }
        )
    )


if __name__ == "__main__":
    main()
