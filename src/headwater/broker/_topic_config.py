"""The standard Kafka topic configuration set: names, types, defaults and validation.

Stream processors and admin tools read these through DescribeConfigs (Quix Streams reads
``retention.ms`` before it creates changelogs), so every standard key is answered with its
value and source, not only the ones the broker acts on. The set, the defaults and the bounds
are Apache Kafka 4.4's (tests/conformance checks them against a Kafka node); Kafka 4.0 removed
message.format.version, message.downconversion.enable and message.timestamp.difference.max.ms,
so they are unknown here too. One deliberate difference: segment.bytes may be as small as 14
bytes (Kafka 4 wants 1 MiB), so tests and small deployments see segments roll.
"""

from __future__ import annotations

import re
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
LONG_MAX = str(2**63 - 1)
_BOUNDS = {INT: (-(2**31), 2**31 - 1), SHORT: (-(2**15), 2**15 - 1), LONG: (-(2**63), 2**63 - 1)}
_INTEGER = re.compile(r"[+-]?\d+")
_REPLICA = re.compile(r"\d+:\d+")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One topic config: its type, default and what values are valid.

    ``choices`` are the allowed strings (for a list, the allowed items); numbers must lie in
    ``minimum``..``maximum`` unless they are one of ``special``.
    """

    name: str
    type: int
    default: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    special: tuple[int, ...] = ()


TOPIC_CONFIGS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey(
            "cleanup.policy",
            LIST,
            "delete",
            "delete, compact, both or none",
            choices=("compact", "delete"),
        ),
        ConfigKey(
            "compression.gzip.level", INT, "-1", "gzip level", minimum=1, maximum=9, special=(-1,)
        ),
        ConfigKey("compression.lz4.level", INT, "9", "lz4 level", minimum=1, maximum=17),
        ConfigKey(
            "compression.type",
            STRING,
            "producer",
            "codec the broker expects",
            choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ),
        ConfigKey("compression.zstd.level", INT, "3", "zstd level", minimum=-131072, maximum=22),
        ConfigKey("delete.retention.ms", LONG, "86400000", "how long tombstones stay", minimum=0),
        ConfigKey("errors.deadletterqueue.group.enable", BOOLEAN, "false", "share groups (unused)"),
        ConfigKey("file.delete.delay.ms", LONG, "60000", "delay before deleting files", minimum=0),
        ConfigKey("flush.messages", LONG, LONG_MAX, "fsync every N messages", minimum=1),
        ConfigKey("flush.ms", LONG, LONG_MAX, "fsync interval", minimum=0),
        ConfigKey("follower.replication.throttled.replicas", LIST, "", "unused on one node"),
        ConfigKey("index.interval.bytes", INT, "4096", "bytes between index entries", minimum=0),
        ConfigKey("leader.replication.throttled.replicas", LIST, "", "unused on one node"),
        ConfigKey("local.retention.bytes", LONG, "-2", "tiered storage (unused)", minimum=-2),
        ConfigKey("local.retention.ms", LONG, "-2", "tiered storage (unused)", minimum=-2),
        ConfigKey("max.compaction.lag.ms", LONG, LONG_MAX, "compaction lag bound", minimum=1),
        ConfigKey(
            "max.decompressed.message.bytes",
            INT,
            "2147483639",
            "largest decompressed batch (unused: batches are never decompressed)",
            minimum=1,
        ),
        ConfigKey("max.message.bytes", INT, "1048588", "largest record batch accepted", minimum=0),
        ConfigKey(
            "message.timestamp.after.max.ms",
            LONG,
            "3600000",
            "how far ahead of the broker's clock a CreateTime timestamp may be",
            minimum=0,
        ),
        ConfigKey(
            "message.timestamp.before.max.ms",
            LONG,
            LONG_MAX,
            "how far behind the broker's clock a CreateTime timestamp may be",
            minimum=0,
        ),
        ConfigKey(
            "message.timestamp.type",
            STRING,
            "CreateTime",
            "CreateTime or LogAppendTime",
            choices=("CreateTime", "LogAppendTime"),
        ),
        ConfigKey(
            "min.cleanable.dirty.ratio",
            DOUBLE,
            "0.5",
            "compaction trigger ratio",
            minimum=0,
            maximum=1,
        ),
        ConfigKey("min.compaction.lag.ms", LONG, "0", "minimum age before compaction", minimum=0),
        ConfigKey("min.insync.replicas", INT, "1", "one node: always 1", minimum=1),
        ConfigKey("preallocate", BOOLEAN, "false", "unused"),
        ConfigKey("remote.copy.lag.bytes", LONG, "-1", "tiered storage (unused)", minimum=-1),
        ConfigKey("remote.copy.lag.ms", LONG, "0", "tiered storage (unused)", minimum=-1),
        ConfigKey("remote.log.copy.disable", BOOLEAN, "false", "tiered storage (unused)"),
        ConfigKey("remote.log.delete.on.disable", BOOLEAN, "false", "tiered storage (unused)"),
        ConfigKey(
            "remote.storage.enable",
            BOOLEAN,
            "false",
            "tiered storage (not supported)",
            choices=("false",),
        ),
        ConfigKey("retention.bytes", LONG, "-1", "size limit per partition, negative: none"),
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
        ),
        ConfigKey("unclean.leader.election.enable", BOOLEAN, "false", "unused on one node"),
    )
}


# The broker config Kafka names as each topic config's synonym in DescribeConfigs (a broker
# setting of that name would be the topic's default), and the ones whose built-in default
# Kafka does not list as a synonym (their broker configs default to null: log.retention.ms
# falls back to log.retention.hours, log.roll.ms to log.roll.hours, ...).
BROKER_SYNONYMS = {
    "cleanup.policy": "log.cleanup.policy",
    "compression.gzip.level": "compression.gzip.level",
    "compression.lz4.level": "compression.lz4.level",
    "compression.type": "compression.type",
    "compression.zstd.level": "compression.zstd.level",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
    "index.interval.bytes": "log.index.interval.bytes",
    "local.retention.bytes": "log.local.retention.bytes",
    "local.retention.ms": "log.local.retention.ms",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "max.decompressed.message.bytes": "max.decompressed.message.bytes",
    "max.message.bytes": "message.max.bytes",
    "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
    "message.timestamp.type": "log.message.timestamp.type",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "min.insync.replicas": "min.insync.replicas",
    "preallocate": "log.preallocate",
    "remote.copy.lag.bytes": "log.remote.copy.lag.bytes",
    "remote.copy.lag.ms": "log.remote.copy.lag.ms",
    "retention.bytes": "log.retention.bytes",
    "retention.ms": "log.retention.ms",
    "segment.bytes": "log.segment.bytes",
    "segment.index.bytes": "log.index.size.max.bytes",
    "segment.jitter.ms": "log.roll.jitter.ms",
    "segment.ms": "log.roll.ms",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
}
_DEFAULT_NOT_LISTED = frozenset({"flush.ms", "retention.ms", "segment.jitter.ms", "segment.ms"})


class InvalidConfigError(ValueError):
    """A config name or value that Kafka would reject."""


def validate(name: str, value: str | None) -> None:
    """Check one topic config as Kafka 4.4 does; raise InvalidConfigError with a reason."""
    key = TOPIC_CONFIGS.get(name)
    if key is None:
        raise InvalidConfigError(f"unknown topic config {name!r}")
    if value is None:
        return
    text = value.strip()
    if key.type == BOOLEAN:
        if text.lower() not in (key.choices or ("true", "false")):
            allowed = " or ".join(key.choices or ("true", "false"))
            raise InvalidConfigError(f"{name}={value!r}: must be {allowed}")
    elif key.type in _BOUNDS:
        _check_integer(key, value, text)
    elif key.type == DOUBLE:
        try:
            number = float(text)
        except ValueError:
            raise InvalidConfigError(f"{name}={value!r}: not a number") from None
        _check_range(key, value, number)
    elif key.type == LIST:
        _check_list(key, value, [item.strip() for item in text.split(",") if item.strip()])
    elif key.choices and text not in key.choices:
        raise InvalidConfigError(f"{name}={value!r}: must be one of {', '.join(key.choices)}")


def _check_integer(key: ConfigKey, value: str, text: str) -> None:
    low, high = _BOUNDS[key.type]
    if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
        raise InvalidConfigError(f"{key.name}={value!r}: not an integer of its type")
    if int(text) not in key.special:
        _check_range(key, value, int(text))


def _check_range(key: ConfigKey, value: str, number: float) -> None:
    if key.minimum is not None and number < key.minimum:
        raise InvalidConfigError(f"{key.name}={value!r}: must be at least {key.minimum}")
    if key.maximum is not None and number > key.maximum:
        raise InvalidConfigError(f"{key.name}={value!r}: must be at most {key.maximum}")


def _check_list(key: ConfigKey, value: str, items: list[str]) -> None:
    if key.name.endswith(".throttled.replicas"):
        # Kafka's ThrottledReplicaListValidator: "*" or partition:broker pairs.
        if items != ["*"] and not all(_REPLICA.fullmatch(item) for item in items):
            raise InvalidConfigError(f"{key.name}={value!r}: must be '*' or partition:broker pairs")
    elif key.choices and not set(items) <= set(key.choices):
        raise InvalidConfigError(f"{key.name}={value!r}: items must be in {key.choices}")


def cleanup_policy(value: str) -> str:
    """The storage form of a cleanup.policy value: its distinct items in a fixed order; ""
    (neither delete nor compact: kept forever) when the list is empty."""
    items = {item.strip() for item in value.split(",") if item.strip()}
    return ",".join(sorted(items))


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


def synonyms(
    name: str, overrides: Mapping[str, str], broker_defaults: Mapping[str, str]
) -> list[tuple[str, str, int]]:
    """(name, value, source) of every place ``name``'s value could come from, highest
    precedence first, as Kafka's DescribeConfigs lists them: the topic override, the broker
    setting (under its broker config name), the built-in default."""
    out = []
    if name in overrides:
        out.append((name, overrides[name], SOURCE_DYNAMIC_TOPIC))
    broker = BROKER_SYNONYMS.get(name)
    if broker is not None:
        if name in broker_defaults:
            out.append((broker, broker_defaults[name], SOURCE_STATIC_BROKER))
        if name not in _DEFAULT_NOT_LISTED:
            out.append((broker, TOPIC_CONFIGS[name].default, SOURCE_DEFAULT))
    return out


def log_config(values: Mapping[str, str]) -> LogConfig:
    """The storage settings carried by a topic's effective configs."""
    return LogConfig(
        segment_bytes=int(values["segment.bytes"]),
        segment_ms=int(values["segment.ms"]),
        index_interval_bytes=int(values["index.interval.bytes"]),
        retention_ms=int(values["retention.ms"]),
        # Kafka reads any negative retention.bytes as "no limit".
        retention_bytes=max(int(values["retention.bytes"]), -1),
        cleanup_policy=cleanup_policy(values["cleanup.policy"]),
        delete_retention_ms=int(values["delete.retention.ms"]),
        min_compaction_lag_ms=int(values["min.compaction.lag.ms"]),
    )
