"""ListOffsets: earliest (-2), latest (-1), max-timestamp (-3) and by timestamp, on empty
partitions, after DeleteRecords, and through confluent-kafka's AdminClient."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

from conformance._harness import Observation, Target, error_name, scenario
from headwater.protocol import NewRecord, build_batch

EARLIEST, LATEST, MAX_TIMESTAMP = -2, -1, -3
# Records stamped 1970 are older than any retention: the topics keep them forever, or each
# broker's first retention check would delete them.
FOREVER = {"retention.ms": "-1"}
QUERIES = {
    "earliest": EARLIEST,
    "latest": LATEST,
    "max_timestamp": MAX_TIMESTAMP,
    "ts_500": 500,
    "ts_1500": 1500,
    "ts_2000": 2000,
    "ts_3001": 3001,
}


def _ask(t: Target, topic: str) -> dict[str, Any]:
    return {label: t.list_offsets(topic, ts) for label, ts in QUERIES.items()}


def _write(t: Target, topic: str, timestamps: list[int], *, one_batch: bool) -> None:
    records = [NewRecord(None, f"at-{ts}".encode(), ts) for ts in timestamps]
    batches = [records] if one_batch else [[r] for r in records]
    for batch in batches:
        answer = t.produce_raw(topic, bytes(build_batch(batch)))
        assert answer["error_code"] == "NONE", answer


@scenario
def separate_batches(t: Target) -> Observation:
    """Three batches with timestamps 1000, 3000, 2000; raw ListOffsets v7 for earliest,
    latest, max-timestamp and timestamps 500, 1500, 2000, 3001."""
    name = t.create_topic("ts", configs=FOREVER)
    _write(t, name, [1000, 3000, 2000], one_batch=False)
    return _ask(t, name)


@scenario
def one_batch(t: Target) -> Observation:
    """One batch of three records with timestamps 1000, 3000, 2000; the same queries."""
    name = t.create_topic("ts", configs=FOREVER)
    _write(t, name, [1000, 3000, 2000], one_batch=True)
    return _ask(t, name)


@scenario
def empty_partition(t: Target) -> Observation:
    """The same queries on a partition that was never written."""
    return _ask(t, t.create_topic("empty", configs=FOREVER))


@scenario
def after_delete_records(t: Target) -> Observation:
    """Timestamps 1000, 3000, 2000 in three batches, DeleteRecords up to offset 2, then the
    same queries."""
    name = t.create_topic("ts", configs=FOREVER)
    _write(t, name, [1000, 3000, 2000], one_batch=False)
    response = t.call(
        21,
        2,
        {
            "topics": [{"name": name, "partitions": [{"partition_index": 0, "offset": 2}]}],
            "timeout": 10_000,
        },
    )
    assert int(response.topics[0].partitions[0].error_code) == 0
    return _ask(t, name)


@scenario
def admin_client(t: Target) -> Observation:
    """AdminClient.list_offsets with earliest, latest, max_timestamp and for_timestamp(1500) on
    three batches with timestamps 1000, 3000, 2000."""
    name = t.create_topic("ts", configs=FOREVER)
    _write(t, name, [1000, 3000, 2000], one_batch=False)
    admin = t.admin()
    out: dict[str, Any] = {}
    for label, spec in (
        ("earliest", OffsetSpec.earliest()),
        ("latest", OffsetSpec.latest()),
        ("max_timestamp", OffsetSpec.max_timestamp()),
        ("for_timestamp_1500", OffsetSpec.for_timestamp(1500)),
    ):
        futures = admin.list_offsets({TopicPartition(name, 0): spec}, request_timeout=30)
        future = next(iter(futures.values()))
        error = future.exception(30)
        if error is not None:
            out[label] = error_name(error)
            continue
        info = future.result()
        out[label] = {"offset": info.offset, "timestamp": info.timestamp}
    return out
