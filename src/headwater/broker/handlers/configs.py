"""Configs and disks: DescribeConfigs v1-4, AlterConfigs v0-2, IncrementalAlterConfigs v0-1,
DescribeLogDirs v1-4.

DescribeConfigs v1 adds synonyms and sources, v3 types and documentation, v4 flexible
encoding. Every standard topic config is answered with its value and source, and with Kafka's
synonyms: the override, then the broker config of Kafka's name for it (``log.retention.bytes``
for retention.bytes). Broker configs are described read-only (set by file, env or flag).

Authorises DESCRIBE_CONFIGS (DescribeConfigs) or ALTER_CONFIGS (AlterConfigs,
IncrementalAlterConfigs) on each topic resource (TOPIC_AUTHORIZATION_FAILED) or on the cluster
for broker resources (CLUSTER_AUTHORIZATION_FAILED), and DESCRIBE on the cluster
(DescribeLogDirs).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from headwater.broker import _authorize
from headwater.broker import _topic_config as tc
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles

TOPIC = 2
BROKER = 4
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_CONFIG = 40
INVALID_REQUEST = 42
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
BROKER_LOGGER = 8


def _config_refusal(ctx: RequestContext, operation: Any, resource: Any) -> int:
    """Kafka's check of one config resource: the topic's, or the cluster's for a broker."""
    if ctx.broker.authorizer is None:
        return 0
    if resource.resource_type == TOPIC:
        if ctx.allowed(operation, _authorize.TOPIC, resource.resource_name):
            return 0
        return _authorize.TOPIC_AUTHORIZATION_FAILED
    if resource.resource_type in (BROKER, BROKER_LOGGER):
        if _authorize.allowed_cluster(ctx, operation):
            return 0
        return _authorize.CLUSTER_AUTHORIZATION_FAILED
    return 0


def _broker_configs(ctx: RequestContext) -> dict[str, tuple[str, int]]:
    config = ctx.broker.config
    defaults = {f"log.{k}": v for k, v in config.topic_defaults.items()}
    values = {
        "broker.id": str(config.node_id),
        "node.id": str(config.node_id),
        "log.dirs": str(config.data_dir),
        "num.partitions": str(config.num_partitions),
        "auto.create.topics.enable": str(config.auto_create_topics).lower(),
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "min.insync.replicas": "1",
        "message.max.bytes": str(config.message_max_bytes),
        "socket.request.max.bytes": str(config.frame_bytes_max),
        "max.connections": str(config.connections_max),
        "group.initial.rebalance.delay.ms": str(config.group_initial_rebalance_delay_ms),
        "group.min.session.timeout.ms": str(config.group_min_session_timeout_ms),
        "group.max.session.timeout.ms": str(config.group_max_session_timeout_ms),
        "group.max.size": str(config.group_max_size),
        "log.retention.ms": config.topic_defaults.get(
            "retention.ms", tc.TOPIC_CONFIGS["retention.ms"].default
        ),
        "log.retention.bytes": config.topic_defaults.get("retention.bytes", "-1"),
        "log.segment.bytes": config.topic_defaults.get("segment.bytes", "1073741824"),
        "log.cleanup.policy": config.topic_defaults.get("cleanup.policy", "delete"),
        "log.retention.check.interval.ms": str(config.retention_check_interval_ms),
        "headwater.fsync.policy": config.fsync_policy,
    }
    return {k: (v, tc.SOURCE_STATIC_BROKER) for k, v in {**defaults, **values}.items()}


def _entry(
    name: str,
    value: str | None,
    source: int,
    read_only: bool,
    synonyms: Sequence[tuple[str, str | None, int]] | None,
) -> dict[str, Any]:
    """One DescribeConfigs entry; ``synonyms`` None when the request did not ask for them."""
    key = tc.TOPIC_CONFIGS.get(name)
    return {
        "name": name,
        "value": value,
        "read_only": read_only,
        "config_source": source,
        "is_default": source == tc.SOURCE_DEFAULT,
        "is_sensitive": False,
        "synonyms": [{"name": n, "value": v, "source": src} for n, v, src in (synonyms or [])],
        "config_type": key.type if key else tc.STRING,
        "documentation": key.doc if key else None,
    }


@handles(32, "DescribeConfigs", 1, 4)
async def describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = ctx.broker.topics
    synonyms = bool(getattr(request, "include_synonyms", False))
    results = []
    for resource in request.resources:
        result: dict[str, Any] = {
            "error_code": 0,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        keys = set(resource.configuration_keys) if resource.configuration_keys else None
        refused = _config_refusal(ctx, _authorize.DESCRIBE_CONFIGS, resource)
        if refused:
            result["error_code"] = refused
        elif resource.resource_type == TOPIC:
            topic = topics.topics.get(resource.resource_name)
            if topic is None:
                result["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
                result["error_message"] = f"topic {resource.resource_name!r} does not exist"
            else:
                values = topics.effective_configs(topic)
                result["configs"] = [
                    _entry(
                        k,
                        v,
                        topics.config_source(topic, k),
                        False,
                        topics.config_synonyms(topic, k) if synonyms else None,
                    )
                    for k, v in values.items()
                    if keys is None or k in keys
                ]
        elif resource.resource_type == BROKER:
            result["configs"] = [
                _entry(k, v, src, True, [(k, v, src)] if synonyms else None)
                for k, (v, src) in _broker_configs(ctx).items()
                if keys is None or k in keys
            ]
        else:
            result["error_code"] = INVALID_REQUEST
            result["error_message"] = f"resource type {resource.resource_type} not supported"
        results.append(result)
    return {"throttle_time": 0, "results": results}


def _alter(
    ctx: RequestContext, resource: Any, configs: dict[str, str], validate_only: bool
) -> dict[str, Any]:
    topics = ctx.broker.topics
    out: dict[str, Any] = {
        "error_code": 0,
        "error_message": None,
        "resource_type": resource.resource_type,
        "resource_name": resource.resource_name,
    }
    refused = _config_refusal(ctx, _authorize.ALTER_CONFIGS, resource)
    if refused:
        out["error_code"] = refused
        return out
    if resource.resource_type != TOPIC:
        out["error_code"] = INVALID_REQUEST
        out["error_message"] = "only topic configs can be altered at run time"
        return out
    topic = topics.topics.get(resource.resource_name)
    if topic is None:
        out["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
        out["error_message"] = f"topic {resource.resource_name!r} does not exist"
        return out
    try:
        topics.set_configs(topic, configs, validate_only=validate_only)
    except tc.InvalidConfigError as exc:
        out["error_code"] = INVALID_CONFIG
        out["error_message"] = str(exc)
    return out


@handles(33, "AlterConfigs", 0, 2)
async def alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Replaces a topic's whole override set, as Kafka's legacy AlterConfigs does."""
    return {
        "throttle_time": 0,
        "responses": [
            _alter(
                ctx,
                r,
                {c.name: c.value for c in r.configs if c.value is not None},
                request.validate_only,
            )
            for r in request.resources
        ],
    }


@handles(44, "IncrementalAlterConfigs", 0, 1)
async def incremental_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    responses = []
    for resource in request.resources:
        topic = ctx.broker.topics.topics.get(resource.resource_name)
        current = dict(topic.configs) if topic is not None else {}
        for change in resource.configs:
            key = tc.TOPIC_CONFIGS.get(change.name)
            if change.config_operation == SET and change.value is not None:
                current[change.name] = change.value
            elif change.config_operation == DELETE:
                current.pop(change.name, None)
            elif change.config_operation in (APPEND, SUBTRACT) and key and key.type == tc.LIST:
                items = [i for i in current.get(change.name, key.default).split(",") if i]
                for item in (change.value or "").split(","):
                    if change.config_operation == APPEND and item not in items:
                        items.append(item)
                    if change.config_operation == SUBTRACT and item in items:
                        items.remove(item)
                current[change.name] = ",".join(items)
        responses.append(_alter(ctx, resource, current, request.validate_only))
    return {"throttle_time": 0, "responses": responses}


@handles(35, "DescribeLogDirs", 1, 4)
async def describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.DESCRIBE):
        return {
            "throttle_time": 0,
            "error_code": _authorize.CLUSTER_AUTHORIZATION_FAILED,
            "results": [],
        }
    topics = ctx.broker.topics
    wanted: dict[str, list[int]] | None = None
    if request.topics is not None:
        wanted = {t.topic: list(t.partitions) for t in request.topics}
    entries = []
    for topic in topics.topics.values():
        if wanted is not None and topic.name not in wanted:
            continue
        indexes = wanted[topic.name] if wanted is not None else range(len(topic.partitions))
        entries.append(
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": i,
                        "partition_size": topic.partitions[i].log.size_bytes,
                        "offset_lag": 0,
                        "is_future_key": False,
                    }
                    for i in indexes
                    if 0 <= i < len(topic.partitions)
                ],
            }
        )
    usage = shutil.disk_usage(ctx.broker.config.data_dir)
    return {
        "throttle_time": 0,
        "error_code": 0,
        "results": [
            {
                "error_code": 0,
                "log_dir": str(ctx.broker.config.data_dir.resolve()),
                "topics": entries,
                "total_bytes": usage.total,
                "usable_bytes": usage.free,
            }
        ],
    }
