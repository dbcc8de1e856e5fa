"""The standard Kafka topic configuration set: names, types, defaults and validation.

Stream processors and admin tools read these through DescribeConfigs (Quix Streams reads
``retention.ms`` before it creates changelogs), so every standard key is answered with its
value and source, not only the ones the broker acts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from headwater.storage import LogConfig

# DescribeConfigs config types (v3+).
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST = 1, 2, 3, 4, 5, 6, 7
# DescribeConfigs config sources.
SOURCE_DYNAMIC_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5

WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One topic config: its type, default and what values are valid."""

    name: str
    type: int
    default: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None


TOPIC_CONFIGS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey(
            "cleanup.policy",
            LIST,
            "delete",
            "delete, compact or both",
            ("delete", "compact", "compact,delete", "delete,compact"),
        ),
        ConfigKey(
            "compression.type",
            STRING,
            "producer",
            "codec the broker expects",
            ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
        ),
        ConfigKey("delete.retention.ms", LONG, "86400000", "how long tombstones stay", minimum=0),
        ConfigKey("file.delete.delay.ms", LONG, "60000", "delay before deleting files", minimum=0),
        ConfigKey(
            "flush.messages", LONG, "9223372036854775807", "fsync every N messages", minimum=1
        ),
        ConfigKey("flush.ms", LONG, "9223372036854775807", "fsync interval", minimum=0),
        ConfigKey("follower.replication.throttled.replicas", LIST, "", "unused on one node"),
        ConfigKey("index.interval.bytes", INT, "4096", "bytes between index entries", minimum=1),
        ConfigKey("leader.replication.throttled.replicas", LIST, "", "unused on one node"),
        ConfigKey("local.retention.bytes", LONG, "-2", "tiered storage (not supported)"),
        ConfigKey("local.retention.ms", LONG, "-2", "tiered storage (not supported)"),
        ConfigKey(
            "max.compaction.lag.ms", LONG, "9223372036854775807", "compaction lag bound", minimum=1
        ),
        ConfigKey("max.message.bytes", INT, "1048588", "largest record batch accepted", minimum=0),
        ConfigKey("message.downconversion.enable", BOOLEAN, "true", "unused", ("true", "false")),
        ConfigKey("message.format.version", STRING, "3.0-IV1", "record format (always v2)"),
        ConfigKey(
            "message.timestamp.after.max.ms",
            LONG,
            "9223372036854775807",
            "allowed future skew",
            minimum=0,
        ),
        ConfigKey(
            "message.timestamp.before.max.ms",
            LONG,
            "9223372036854775807",
            "allowed past skew",
            minimum=0,
        ),
        ConfigKey(
            "message.timestamp.difference.max.ms",
            LONG,
            "9223372036854775807",
            "allowed skew",
            minimum=0,
        ),
        ConfigKey(
            "message.timestamp.type",
            STRING,
            "CreateTime",
            "CreateTime or LogAppendTime",
            ("CreateTime", "LogAppendTime"),
        ),
        ConfigKey("min.cleanable.dirty.ratio", DOUBLE, "0.5", "compaction trigger ratio"),
        ConfigKey("min.compaction.lag.ms", LONG, "0", "minimum age before compaction", minimum=0),
        ConfigKey("min.insync.replicas", INT, "1", "one node: always 1", minimum=1),
        ConfigKey("preallocate", BOOLEAN, "false", "unused", ("true", "false")),
        ConfigKey(
            "remote.storage.enable", BOOLEAN, "false", "tiered storage (not supported)", ("false",)
        ),
        ConfigKey("retention.bytes", LONG, "-1", "size limit per partition, -1 none", minimum=-1),
        ConfigKey("retention.ms", LONG, str(WEEK_MS), "time limit, -1 forever", minimum=-1),
        ConfigKey("segment.bytes", INT, "1073741824", "segment file size", minimum=14),
        ConfigKey("segment.index.bytes", INT, "10485760", "index file size", minimum=4),
        ConfigKey("segment.jitter.ms", LONG, "0", "roll jitter", minimum=0),
        ConfigKey("segment.ms", LONG, str(WEEK_MS), "segment age before roll", minimum=1),
        ConfigKey(
            "headwater.schema.validation",
            BOOLEAN,
            "false",
            "refuse record values without a schema id registered for <topic>-value",
            ("true", "false"),
        ),
        ConfigKey(
            "unclean.leader.election.enable",
            BOOLEAN,
            "false",
            "unused on one node",
            ("true", "false"),
        ),
    )
}


class InvalidConfigError(ValueError):
    """A config name or value that Kafka would reject."""


def validate(name: str, value: str | None) -> None:
    """Check one topic config; raise InvalidConfigError with a reason users can act on."""
    key = TOPIC_CONFIGS.get(name)
    if key is None:
        raise InvalidConfigError(f"unknown topic config {name!r}")
    if value is None:
        return
    if key.choices and value.replace(" ", "") not in key.choices:
        raise InvalidConfigError(f"{name}={value!r}: must be one of {', '.join(key.choices)}")
    if key.type in (INT, LONG, SHORT):
        try:
            number = int(value)
        except ValueError:
            raise InvalidConfigError(f"{name}={value!r}: not an integer") from None
        if key.minimum is not None and number < key.minimum:
            raise InvalidConfigError(f"{name}={value!r}: must be at least {key.minimum}")
    if key.type == DOUBLE:
        try:
            float(value)
        except ValueError:
            raise InvalidConfigError(f"{name}={value!r}: not a number") from None


def effective(overrides: Mapping[str, str], broker_defaults: Mapping[str, str]) -> dict[str, str]:
    """Every topic config's value: topic override, else broker default, else Kafka default."""
    out = {}
    for name, key in TOPIC_CONFIGS.items():
        out[name] = overrides.get(name, broker_defaults.get(name, key.default))
    return out


def source_of(name: str, overrides: Mapping[str, str], broker_defaults: Mapping[str, str]) -> int:
    if name in overrides:
        return SOURCE_DYNAMIC_TOPIC
    if name in broker_defaults:
        return SOURCE_STATIC_BROKER
    return SOURCE_DEFAULT


def log_config(values: Mapping[str, str]) -> LogConfig:
    """The storage settings carried by a topic's effective configs."""
    return LogConfig(
        segment_bytes=int(values["segment.bytes"]),
        segment_ms=int(values["segment.ms"]),
        index_interval_bytes=int(values["index.interval.bytes"]),
        retention_ms=int(values["retention.ms"]),
        retention_bytes=int(values["retention.bytes"]),
        cleanup_policy=values["cleanup.policy"].replace(" ", ""),
        delete_retention_ms=int(values["delete.retention.ms"]),
        min_compaction_lag_ms=int(values["min.compaction.lag.ms"]),
    )
