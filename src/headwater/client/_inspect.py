"""A cluster's data-safety settings, read in one go: brokers, their configs, every topic's
configs, and each partition's leader, replicas and in-sync replicas.

``headwater doctor`` judges these (``headwater.governance``); reading them needs
confluent-kafka, which only this package may import. DescribeCluster gives the cluster id
and controller, Metadata the partitions, DescribeConfigs the broker and topic settings.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

from headwater.client._cluster import PartitionState
from headwater.client._security import with_security

#: ConfigSource names as the doctor reports them: where a value was set.
_SOURCES = {
    ConfigSource.DYNAMIC_TOPIC_CONFIG: "topic",
    ConfigSource.DYNAMIC_BROKER_CONFIG: "broker (dynamic)",
    ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG: "cluster default (dynamic)",
    ConfigSource.STATIC_BROKER_CONFIG: "broker (server.properties)",
    ConfigSource.DEFAULT_CONFIG: "Kafka default",
}


class InspectError(RuntimeError):
    """The cluster could not be read at all; the message says why."""


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One config's effective value and where it was set (``topic``, ``Kafka default``, …)."""

    value: str | None
    source: str


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """A topic's partitions as Metadata reports them and its effective configs."""

    name: str
    partitions: dict[int, PartitionState]
    configs: dict[str, ConfigValue]
    config_error: str | None = None

    @property
    def internal(self) -> bool:
        """Kafka's own topics (group offsets, transaction state) start with two underscores."""
        return self.name.startswith("__")

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions.values()), default=0)


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """Everything ``headwater doctor`` checks, as one snapshot."""

    bootstrap: str
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, str]  # live brokers: node id -> host:port
    broker_configs: dict[int, dict[str, ConfigValue]]
    topics: dict[str, TopicSettings]
    errors: list[str] = field(default_factory=list)  # what could not be read, in words

    @property
    def known_brokers(self) -> set[int]:
        """Live brokers and those only named in replica lists (down, or fenced)."""
        ids = set(self.brokers)
        for topic in self.topics.values():
            for state in topic.partitions.values():
                ids.update(state.replicas)
        return ids


def _wait(future: Future[Any], timeout_s: float) -> Any:
    try:
        return future.result(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        raise InspectError(str(error.str() if hasattr(error, "str") else error)) from None


def _source(raw: Any) -> str:
    # librdkafka hands the source over as a plain int.
    try:
        return _SOURCES.get(ConfigSource(raw), "unknown")
    except ValueError:
        return "unknown"


def _configs(entries: dict[str, Any]) -> dict[str, ConfigValue]:
    return {
        name: ConfigValue(entry.value, _source(entry.source)) for name, entry in entries.items()
    }


def inspect_cluster(bootstrap: str, timeout_s: float = 30.0) -> ClusterSettings:
    """Read the cluster's brokers, broker configs, topics, topic configs and partitions.

    Raises ``InspectError`` when no broker answers Metadata. A broker or topic whose configs
    cannot be read is noted in ``errors`` instead, because a doctor that stops at the first
    broker that is down would say nothing when it matters most.
    """
    client = AdminClient(with_security({"bootstrap.servers": bootstrap, "log_level": 0}))
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise InspectError(f"no broker at {bootstrap} answered: {exc.args[0]}") from None
    errors: list[str] = []
    cluster_id: str | None = None
    try:
        described = _wait(client.describe_cluster(request_timeout=timeout_s), timeout_s)
        cluster_id = described.cluster_id
    except InspectError as exc:
        errors.append(f"DescribeCluster failed: {exc}")
    brokers = {b.id: f"{b.host}:{b.port}" for b in metadata.brokers.values()}
    broker_resources = {
        node: ConfigResource(ConfigResource.Type.BROKER, str(node)) for node in sorted(brokers)
    }
    topic_resources = {
        name: ConfigResource(ConfigResource.Type.TOPIC, name) for name in sorted(metadata.topics)
    }
    # librdkafka sends a BROKER resource to that broker, so it takes one per call; the topics
    # all go in one more.
    broker_futures = {
        node: client.describe_configs([resource], request_timeout=timeout_s)[resource]
        for node, resource in broker_resources.items()
    }
    futures = (
        client.describe_configs(list(topic_resources.values()), request_timeout=timeout_s)
        if topic_resources
        else {}
    )
    broker_configs: dict[int, dict[str, ConfigValue]] = {}
    for node, future in broker_futures.items():
        try:
            broker_configs[node] = _configs(_wait(future, timeout_s))
        except InspectError as exc:
            errors.append(f"configs of broker {node} could not be read: {exc}")
    topics: dict[str, TopicSettings] = {}
    for name, topic in sorted(metadata.topics.items()):
        configs: dict[str, ConfigValue] = {}
        config_error = None
        try:
            configs = _configs(_wait(futures[topic_resources[name]], timeout_s))
        except InspectError as exc:
            config_error = str(exc)
            errors.append(f"configs of topic {name} could not be read: {exc}")
        topics[name] = TopicSettings(
            name=name,
            partitions={
                p.id: PartitionState(p.leader, tuple(p.replicas), tuple(p.isrs))
                for p in topic.partitions.values()
            },
            configs=configs,
            config_error=config_error,
        )
    return ClusterSettings(
        bootstrap=bootstrap,
        cluster_id=cluster_id,
        controller_id=metadata.controller_id,
        brokers=brokers,
        broker_configs=broker_configs,
        topics=topics,
        errors=errors,
    )
