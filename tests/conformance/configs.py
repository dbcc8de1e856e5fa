"""DescribeConfigs of topics: values, sources, synonyms and types of the common topic configs,
at their defaults, after overrides at creation and after IncrementalAlterConfigs."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka.admin import ConfigResource

from conformance._harness import Observation, Target, plain, scenario

# The topic configs clients and stream processors read; min.insync.replicas has a scenario
# of its own (Kafka sets it for the whole cluster, see DELIBERATE).
COMMON = (
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "preallocate",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
)
OVERRIDES = {
    "retention.ms": "3600000",
    "retention.bytes": "1048576",
    "cleanup.policy": "compact",
    "segment.bytes": "1048576",
    "max.message.bytes": "2048",
    "compression.type": "zstd",
    "message.timestamp.type": "LogAppendTime",
    "min.compaction.lag.ms": "100",
}


def describe(t: Target, topic: str, keys: tuple[str, ...] | None) -> dict[str, Any]:
    """Raw DescribeConfigs v4 with synonyms: {name: entry without its name}, in name order."""
    response = t.call(
        32,
        4,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": topic,
                    "configuration_keys": list(keys) if keys is not None else None,
                }
            ],
            "include_synonyms": True,
            "include_documentation": False,
        },
    )
    result = plain(response.results[0])
    assert result["error_code"] == "NONE", result
    entries = {c.pop("name"): c for c in result["configs"]}
    return dict(sorted(entries.items()))


@scenario
def defaults(t: Target) -> Observation:
    """DescribeConfigs (with synonyms) of the common topic configs of a topic created with none
    set."""
    return describe(t, t.create_topic("defaults"), COMMON)


@scenario
def min_insync_replicas(t: Target) -> Observation:
    """DescribeConfigs of min.insync.replicas of a topic created with none set, and of one
    created with min.insync.replicas=1."""
    keys = ("min.insync.replicas",)
    return {
        "default": describe(t, t.create_topic("defaults"), keys),
        "override": describe(
            t, t.create_topic("override", configs={"min.insync.replicas": "1"}), keys
        ),
    }


@scenario
def overrides(t: Target) -> Observation:
    """DescribeConfigs of a topic created with retention.ms, retention.bytes, cleanup.policy,
    segment.bytes, max.message.bytes, compression.type, message.timestamp.type and
    min.compaction.lag.ms set."""
    name = t.create_topic("overrides", configs=OVERRIDES)
    return describe(t, name, tuple(sorted(OVERRIDES)))


@scenario
def incremental_alter(t: Target) -> Observation:
    """IncrementalAlterConfigs SET retention.ms=60000, APPEND cleanup.policy compact, then
    DELETE retention.ms; DescribeConfigs after each step."""
    name = t.create_topic("alter")
    keys = ("cleanup.policy", "retention.ms")
    steps: dict[str, Any] = {}
    for label, op, key, value, expected in (
        ("set_retention", 0, "retention.ms", "60000", "60000"),
        ("append_compact", 2, "cleanup.policy", "compact", "delete,compact"),
        ("delete_retention", 1, "retention.ms", None, "604800000"),
    ):
        response = t.call(
            44,
            1,
            {
                "resources": [
                    {
                        "resource_type": 2,
                        "resource_name": name,
                        "configs": [{"name": key, "config_operation": op, "value": value}],
                    }
                ],
                "validate_only": False,
            },
        )
        code = plain(response.responses[0])["error_code"]
        steps[label] = {"error_code": code, "configs": _eventually(t, name, keys, key, expected)}
    return steps


def _eventually(
    t: Target, topic: str, keys: tuple[str, ...], key: str, expected: str
) -> dict[str, Any]:
    """Kafka applies a config change through its metadata log: wait for the broker to see it."""
    deadline = time.monotonic() + 10
    seen = describe(t, topic, keys)
    while seen[key]["value"] != expected and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = describe(t, topic, keys)
    return seen


EXTENSION_PREFIX = "headwater."


@scenario
def config_names(t: Target) -> Observation:
    """DescribeConfigs of every config of a fresh topic: which names are there (Headwater's
    own ``headwater.*`` extensions aside), and which are read-only or sensitive."""
    entries = describe(t, t.create_topic("names"), None)
    return {
        "names": sorted(k for k in entries if not k.startswith(EXTENSION_PREFIX)),
        "read_only": sorted(k for k, v in entries.items() if v["read_only"]),
        "sensitive": sorted(k for k, v in entries.items() if v["is_sensitive"]),
    }


@scenario
def extension_configs(t: Target) -> Observation:
    """DescribeConfigs of every config of a fresh topic: the names in the ``headwater.``
    namespace, with their values."""
    entries = describe(t, t.create_topic("names"), None)
    return {k: v["value"] for k, v in entries.items() if k.startswith(EXTENSION_PREFIX)}


@scenario
def admin_client(t: Target) -> Observation:
    """AdminClient.describe_configs of a topic with retention.ms overridden: value, source and
    synonyms of retention.ms and cleanup.policy as confluent-kafka reports them."""
    name = t.create_topic("admin", configs={"retention.ms": "3600000"})
    future = t.admin().describe_configs([ConfigResource("topic", name)])
    entries = next(iter(future.values())).result(30)
    out = {}
    for key in ("retention.ms", "cleanup.policy"):
        entry = entries[key]
        out[key] = {
            "value": entry.value,
            "source": str(entry.source),
            "is_default": entry.is_default,
            "synonyms": [(s.name, s.value, str(s.source)) for s in entry.synonyms.values()],
        }
    return out


# (config, value) pairs at and around each validator's bounds; segment.bytes has its own.
VALIDATION = (
    ("cleanup.policy", ""),
    ("cleanup.policy", "compact, delete"),
    ("cleanup.policy", "delete,delete"),
    ("cleanup.policy", "none"),
    ("compression.type", "none"),
    ("compression.type", "uncompressed"),
    ("compression.type", "ZSTD"),
    ("compression.gzip.level", "-1"),
    ("compression.gzip.level", "0"),
    ("compression.gzip.level", "9"),
    ("compression.gzip.level", "10"),
    ("compression.lz4.level", "0"),
    ("compression.lz4.level", "17"),
    ("compression.lz4.level", "18"),
    ("compression.zstd.level", "-131073"),
    ("compression.zstd.level", "-131072"),
    ("compression.zstd.level", "22"),
    ("compression.zstd.level", "23"),
    ("delete.retention.ms", "-1"),
    ("errors.deadletterqueue.group.enable", "true"),
    ("errors.deadletterqueue.group.enable", "yes"),
    ("flush.messages", "0"),
    ("index.interval.bytes", "-1"),
    ("index.interval.bytes", "0"),
    ("leader.replication.throttled.replicas", "0:1"),
    ("leader.replication.throttled.replicas", "*"),
    ("leader.replication.throttled.replicas", "bogus"),
    ("local.retention.bytes", "-3"),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-3"),
    ("local.retention.ms", "-2"),
    ("max.compaction.lag.ms", "0"),
    ("max.decompressed.message.bytes", "0"),
    ("max.decompressed.message.bytes", "1"),
    ("max.decompressed.message.bytes", "abc"),
    ("max.message.bytes", "-1"),
    ("max.message.bytes", "0"),
    ("message.downconversion.enable", "true"),
    ("message.format.version", "3.0-IV1"),
    ("message.timestamp.after.max.ms", "-1"),
    ("message.timestamp.difference.max.ms", "1"),
    ("message.timestamp.type", "createtime"),
    ("min.cleanable.dirty.ratio", "-0.1"),
    ("min.cleanable.dirty.ratio", "1.0"),
    ("min.cleanable.dirty.ratio", "1.1"),
    ("min.cleanable.dirty.ratio", "abc"),
    ("min.insync.replicas", "0"),
    ("preallocate", "TRUE"),
    ("preallocate", "1"),
    ("remote.copy.lag.bytes", "-2"),
    ("remote.copy.lag.bytes", "-1"),
    ("remote.copy.lag.ms", "-2"),
    ("remote.copy.lag.ms", "0"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("retention.bytes", "-2"),
    ("retention.ms", "-2"),
    ("retention.ms", "-1"),
    ("segment.index.bytes", "3"),
    ("segment.ms", "0"),
)


def _validate(t: Target, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    out = {}
    for key, value in pairs:
        response = t.call(
            19,
            7,
            {
                "topics": [
                    {
                        "name": t.unique("validate"),
                        "num_partitions": 1,
                        "replication_factor": 1,
                        "assignments": [],
                        "configs": [{"name": key, "value": value}],
                    }
                ],
                "timeout": 10_000,
                "validate_only": True,
            },
        )
        out[f"{key}={value}"] = plain(response.topics[0].error_code)
    return out


@scenario
def validation(t: Target) -> Observation:
    """CreateTopics with validate_only, one topic config set to a value at or just past the
    bound of its validator (or a config Kafka 4 removed), for each pair of a list."""
    return _validate(t, VALIDATION)


@scenario
def segment_bytes_minimum(t: Target) -> Observation:
    """CreateTopics with validate_only and segment.bytes of 14, 4096, 1048575 and 1048576."""
    return _validate(t, tuple(("segment.bytes", v) for v in ("14", "4096", "1048575", "1048576")))


@scenario
def create_topics_response(t: Target) -> Observation:
    """CreateTopics v7 of a topic with retention.ms and cleanup.policy set: the partition
    count, replication factor and configs (values, sources, flags) the answer carries."""
    name = t.unique("created")
    response = t.call(
        19,
        7,
        {
            "topics": [
                {
                    "name": name,
                    "num_partitions": 2,
                    "replication_factor": -1,
                    "assignments": [],
                    "configs": [
                        {"name": "retention.ms", "value": "3600000"},
                        {"name": "cleanup.policy", "value": "compact"},
                    ],
                }
            ],
            "timeout": 30_000,
            "validate_only": False,
        },
    )
    topic = plain(response.topics[0])
    configs = {c.pop("name"): c for c in topic.pop("configs")}
    topic["configs"] = {k: configs[k] for k in sorted(configs) if k in COMMON}
    answer: dict[str, Any] = topic
    return answer
