"""Bad requests: unknown topics and partitions, invalid partition counts and configs, records
over ``max.message.bytes``, fetch offsets out of range."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

from conformance._harness import (
    Observation,
    Target,
    error_name,
    now_ms,
    plain,
    scenario,
    wait_for,
)
from headwater.protocol import NewRecord, build_batch, decode_batch, iter_batches


def _batch(*values: bytes) -> bytes:
    return bytes(build_batch([NewRecord(None, v, now_ms()) for v in values]))


def records_of(partition: Any) -> list[list[Any]]:
    """The data records of a fetched partition as [offset, value] pairs (control batches
    skipped), so answers compare by content rather than by stored bytes."""
    data = bytes(partition.records or b"")
    out: list[list[Any]] = []
    for pos, header in iter_batches(data):
        if header.is_control:
            continue
        _, records = decode_batch(data, pos)
        out.extend([r.offset, (r.value or b"").decode()] for r in records)
    return out


def fetched(partition: Any) -> dict[str, Any]:
    """A fetched partition, plain, with its records decoded."""
    answer: dict[str, Any] = plain(partition)
    answer["records"] = records_of(partition)
    return answer


def _topic_exists(t: Target, name: str) -> str:
    response = t.call(
        3,
        12,
        {
            "topics": [{"name": name, "topic_id": None}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
    )
    return str(plain(response.topics[0].error_code))


@scenario
def produce_unknown_topic(t: Target) -> Observation:
    """Raw Produce v9 to a topic that does not exist (auto-creation on), then Metadata without
    auto-creation: does a produce create the topic?"""
    name = t.unique("missing")
    answer = t.produce_raw(name, _batch(b"a"))
    return {"produce": answer, "metadata_after": _topic_exists(t, name)}


@scenario
def produce_unknown_partition(t: Target) -> Observation:
    """Raw Produce v9 to partition 3 of a one-partition topic."""
    name = t.create_topic("one")
    return {"produce": t.produce_raw(name, _batch(b"a"), partition=3)}


@scenario
def fetch_unknown_topic(t: Target) -> Observation:
    """Raw Fetch v12 of a topic that does not exist."""
    return {"fetch": fetched(t.fetch(t.unique("missing"), 0))}


@scenario
def fetch_unknown_partition(t: Target) -> Observation:
    """Raw Fetch v12 of partition 3 of a one-partition topic."""
    name = t.create_topic("one")
    return {"fetch": fetched(t.fetch(name, 0, partition=3))}


@scenario
def list_offsets_unknown_topic(t: Target) -> Observation:
    """Raw ListOffsets v7 (latest) of a topic that does not exist."""
    return {"list_offsets": t.list_offsets(t.unique("missing"), -1)}


@scenario
def list_offsets_unknown_partition(t: Target) -> Observation:
    """Raw ListOffsets v7 (earliest) of partition 3 of a one-partition topic."""
    name = t.create_topic("one")
    return {"list_offsets": t.list_offsets(name, -2, partition=3)}


@scenario
def describe_configs_unknown_topic(t: Target) -> Observation:
    """AdminClient.describe_configs of a topic that does not exist, and the raw answer."""
    name = t.unique("missing")
    future = t.admin().describe_configs([ConfigResource("topic", name)])
    client = error_name(next(iter(future.values())).exception(30))
    response = t.call(
        32,
        4,
        {
            "resources": [{"resource_type": 2, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": True,
            "include_documentation": False,
        },
    )
    return {"client": client, "raw": plain(response.results[0])}


def _delete_records(t: Target, topic: str, partition: int, offset: int) -> dict[str, Any]:
    response = t.call(
        21,
        2,
        {
            "topics": [
                {"name": topic, "partitions": [{"partition_index": partition, "offset": offset}]}
            ],
            "timeout": 10_000,
        },
    )
    answer: dict[str, Any] = plain(response.topics[0].partitions[0])
    return answer


@scenario
def delete_records_unknown_topic(t: Target) -> Observation:
    """Raw DeleteRecords v2 on a topic that does not exist, and through AdminClient."""
    name = t.unique("missing")
    future = t.admin().delete_records([TopicPartition(name, 0, 1)])
    client = error_name(next(iter(future.values())).exception(30))
    return {"client": client, "raw": _delete_records(t, name, 0, 1)}


@scenario
def delete_records_unknown_partition(t: Target) -> Observation:
    """Raw DeleteRecords v2 on partition 3 of a one-partition topic."""
    name = t.create_topic("one")
    return {"raw": _delete_records(t, name, 3, 0)}


@scenario
def delete_records_beyond_end(t: Target) -> Observation:
    """DeleteRecords up to offset 10 of a partition holding 3 records, then up to -1 (the
    high watermark)."""
    name = t.create_topic("three")
    t.produce_values(name, [b"a", b"b", b"c"])
    return {
        "beyond_end": _delete_records(t, name, 0, 10),
        "to_high_watermark": _delete_records(t, name, 0, -1),
    }


def _create_raw(t: Target, name: str, partitions: int, rf: int = 1, **configs: str) -> Any:
    response = t.call(
        19,
        7,
        {
            "topics": [
                {
                    "name": name,
                    "num_partitions": partitions,
                    "replication_factor": rf,
                    "assignments": [],
                    "configs": [{"name": k, "value": v} for k, v in configs.items()],
                }
            ],
            "timeout": 30_000,
            "validate_only": False,
        },
    )
    topic = plain(response.topics[0])
    return {k: topic[k] for k in ("error_code", "num_partitions", "replication_factor")}


def _create_client(t: Target, topic: NewTopic) -> str:
    future = t.admin().create_topics([topic], operation_timeout=30)
    return error_name(future[topic.topic].exception(30))


@scenario
def create_topic_zero_partitions(t: Target) -> Observation:
    """CreateTopics with 0 partitions through AdminClient and raw."""
    name = t.unique("zero")
    return {
        "client": _create_client(t, NewTopic(name, num_partitions=0, replication_factor=1)),
        "raw": _create_raw(t, name, 0),
    }


@scenario
def create_topic_negative_partitions(t: Target) -> Observation:
    """Raw CreateTopics with -5 partitions (AdminClient refuses to send it)."""
    return {"raw": _create_raw(t, t.unique("negative"), -5)}


@scenario
def create_topic_bad_replication(t: Target) -> Observation:
    """Raw CreateTopics with replication factor 0 and -5."""
    return {
        "rf_0": _create_raw(t, t.unique("rf0"), 1, rf=0),
        "rf_minus_5": _create_raw(t, t.unique("rf-5"), 1, rf=-5),
    }


@scenario
def create_topic_already_exists(t: Target) -> Observation:
    """CreateTopics of a name that exists, through AdminClient and raw."""
    name = t.create_topic("exists")
    return {
        "client": _create_client(t, NewTopic(name, num_partitions=1, replication_factor=1)),
        "raw": _create_raw(t, name, 1),
    }


@scenario
def create_topic_invalid_names(t: Target) -> Observation:
    """Raw CreateTopics named "bad name!", ".." and 250 characters."""
    return {
        "space_and_bang": _create_raw(t, "bad name!", 1),
        "dot_dot": _create_raw(t, "..", 1),
        "too_long": _create_raw(t, "x" * 250, 1),
    }


@scenario
def create_partitions_decrease(t: Target) -> Observation:
    """CreatePartitions of a 3-partition topic to 2 and to 3 (AdminClient), and of a topic that
    does not exist."""
    name = t.create_topic("three", partitions=3)
    admin = t.admin()

    def grow(topic: str, count: int) -> str:
        future = admin.create_partitions([NewPartitions(topic, count)], operation_timeout=30)
        return error_name(future[topic].exception(30))

    return {
        "to_2": grow(name, 2),
        "to_3": grow(name, 3),
        "unknown_topic": grow(t.unique("missing"), 2),
    }


@scenario
def create_topic_unknown_config(t: Target) -> Observation:
    """CreateTopics with config "no.such.config=1" (AdminClient and raw)."""
    name = t.unique("unknown-config")
    config = {"no.such.config": "1"}
    return {
        "client": _create_client(t, NewTopic(name, 1, 1, config=config)),
        "raw": _create_raw(t, name, 1, **config),
    }


@scenario
def create_topic_bad_config_values(t: Target) -> Observation:
    """CreateTopics with retention.ms=abc, cleanup.policy=bogus, segment.bytes=1 and
    compression.type=brotli, one topic each."""
    out = {}
    for key, value in (
        ("retention.ms", "abc"),
        ("cleanup.policy", "bogus"),
        ("segment.bytes", "1"),
        ("compression.type", "brotli"),
    ):
        name = t.unique("bad-config")
        out[f"{key}={value}"] = {
            "client": _create_client(t, NewTopic(name, 1, 1, config={key: value})),
            "raw": _create_raw(t, t.unique("bad-config"), 1, **{key: value}),
        }
    return out


def _incremental(t: Target, topic: str, name: str, value: str | None, op: int = 0) -> Any:
    response = t.call(
        44,
        1,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": topic,
                    "configs": [{"name": name, "config_operation": op, "value": value}],
                }
            ],
            "validate_only": False,
        },
    )
    return plain(response.responses[0])["error_code"]


@scenario
def alter_configs_invalid(t: Target) -> Observation:
    """Raw IncrementalAlterConfigs: an unknown name, retention.ms=abc, cleanup.policy=bogus,
    and a valid change on a topic that does not exist."""
    name = t.create_topic("alter")
    return {
        "unknown_name": _incremental(t, name, "no.such.config", "1"),
        "retention_abc": _incremental(t, name, "retention.ms", "abc"),
        "cleanup_bogus": _incremental(t, name, "cleanup.policy", "bogus"),
        "unknown_topic": _incremental(t, t.unique("missing"), "retention.ms", "1000"),
    }


@scenario
def fetch_offset_out_of_range(t: Target) -> Observation:
    """Raw Fetch v12 of a 3-record partition at offsets 10, 3 (the end) and -1."""
    name = t.create_topic("three")
    t.produce_values(name, [b"a", b"b", b"c"])
    return {str(o): fetched(t.fetch(name, o)) for o in (10, 3, -1)}


@scenario
def fetch_below_log_start(t: Target) -> Observation:
    """DeleteRecords up to offset 2 of a 3-record partition, then raw Fetch at offset 0 and 2."""
    name = t.create_topic("three")
    t.produce_values(name, [b"a", b"b", b"c"])
    _delete_records(t, name, 0, 2)
    return {str(o): fetched(t.fetch(name, o)) for o in (0, 2)}


@scenario
def consumer_offset_out_of_range(t: Target) -> Observation:
    """A confluent-kafka consumer assigned at offset 10 of a 3-record partition, with
    auto.offset.reset=error and with earliest."""
    name = t.create_topic("three")
    t.produce_values(name, [b"a", b"b", b"c"])
    out = {}
    for reset in ("error", "earliest"):
        consumer = t.consumer(**{"auto.offset.reset": reset})
        consumer.assign([TopicPartition(name, 0, 10)])
        seen: list[Any] = []
        for _ in range(50):
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            seen.append(error_name(error) if error else [msg.offset(), bytes(msg.value()).decode()])
            if len(seen) == 3 or error:
                break
        consumer.close()
        out[reset] = seen
    return out


@scenario
def delete_topics(t: Target) -> Observation:
    """DeleteTopics v6 of a topic that does not exist and of one that does, then Metadata of
    the deleted one."""
    name = t.create_topic("doomed")
    missing = t.unique("missing")
    response = t.call(
        20,
        6,
        {
            "topics": [{"name": missing, "topic_id": None}, {"name": name, "topic_id": None}],
            "timeout": 30_000,
        },
    )
    codes = {r["name"]: r["error_code"] for r in plain(response.responses)}
    # Kafka's broker learns of the deletion from its controller a moment later.
    wait_for(lambda: _topic_exists(t, name) != "NONE", f"{name} to be gone", timeout_s=10)
    return {"missing": codes[missing], "existing": codes[name], "after": _topic_exists(t, name)}
