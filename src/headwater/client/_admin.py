"""Typed admin operations over confluent-kafka's AdminClient, with errors users can act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    OffsetSpec,
)

from headwater.client._replication import (
    Replication,
    ReplicationError,
    new_topic,
    replication_of,
    wait_until_led,
    with_factor,
)
from headwater.client._security import with_security

_TIMEOUT_S = 30.0


class AdminError(RuntimeError):
    """An admin operation the cluster refused; the message says what and why, ``code`` is
    Kafka's error code when the cluster gave one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    earliest: int
    latest: int


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: list[PartitionInfo]
    configs: dict[str, tuple[str, bool]]  # name -> (value, is_default)


@dataclass(frozen=True, slots=True)
class GroupOffsets:
    group_id: str
    state: str
    members: list[tuple[str, str, list[tuple[str, int]]]]  # (member id, client id, assignment)
    offsets: list[tuple[str, int, int, int]]  # (topic, partition, committed, lag)


def _result(future: Any) -> Any:
    try:
        return future.result(timeout=_TIMEOUT_S)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError):
            raise AdminError(error.str(), error.code()) from None
        raise AdminError(str(exc)) from None


class Admin:
    """Topic, config and group administration against any Kafka-compatible cluster."""

    def __init__(self, bootstrap: str, extra: dict[str, Any] | None = None) -> None:
        self._bootstrap = bootstrap
        self._client = AdminClient(with_security({"bootstrap.servers": bootstrap, **(extra or {})}))
        self._replication: Replication | None = None

    def replication(self) -> Replication:
        """Replication for new topics: min(3, brokers), ``min.insync.replicas=2`` at 3.

        Asked once per Admin: the broker count does not change between the topics one
        component creates at start-up.
        """
        if self._replication is None:
            try:
                self._replication = replication_of(self._client, _TIMEOUT_S)
            except ReplicationError as exc:
                raise AdminError(str(exc)) from None
        return self._replication

    def create_topic(
        self,
        name: str,
        partitions: int,
        configs: dict[str, str],
        *,
        replication_factor: int | None = None,
    ) -> None:
        """Create ``name``; without ``replication_factor`` it follows the cluster's size.

        ``configs`` win over the replication defaults, so an explicit ``min.insync.replicas``
        is kept as given.
        """
        replication = (
            self.replication() if replication_factor is None else with_factor(replication_factor)
        )
        futures = self._client.create_topics(
            [new_topic(name, partitions, configs, replication)], operation_timeout=_TIMEOUT_S
        )
        _result(futures[name])
        # Returning before every broker knows the topic would let the caller's first read
        # of it fail on a multi-node cluster.
        wait_until_led(self._client, [name], _TIMEOUT_S)

    def ensure_topic(self, name: str, partitions: int, configs: dict[str, str]) -> bool:
        """Create ``name`` unless it exists (an existing topic is left as it is); True if
        this call created it. Another client creating it at the same moment is no error."""
        try:
            if name in self._client.list_topics(timeout=_TIMEOUT_S).topics:
                return False
        except KafkaException as exc:
            raise AdminError(f"cannot list topics: {exc.args[0] if exc.args else exc}") from None
        try:
            self.create_topic(name, partitions, configs)
        except AdminError as exc:
            if exc.code == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise
        return True

    def delete_topic(self, name: str) -> None:
        _result(self._client.delete_topics([name], operation_timeout=_TIMEOUT_S)[name])

    def list_topics(self) -> dict[str, int]:
        try:
            metadata = self._client.list_topics(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            raise AdminError(f"cannot list topics: {exc.args[0] if exc.args else exc}") from None
        return {
            name: len(t.partitions)
            for name, t in sorted(metadata.topics.items())
            if not name.startswith("__")
        }

    def add_partitions(self, name: str, total: int) -> None:
        _result(self._client.create_partitions([NewPartitions(name, total)])[name])

    def alter_configs(self, name: str, set_: dict[str, str], delete: list[str]) -> None:
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in set_.items()
        ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in delete]
        resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=entries)
        for future in self._client.incremental_alter_configs([resource]).values():
            _result(future)

    def describe_topic(self, name: str) -> TopicInfo:
        metadata = self._client.list_topics(topic=name, timeout=_TIMEOUT_S)
        topic = metadata.topics.get(name)
        if topic is None or topic.error is not None:
            reason = topic.error.str() if topic is not None and topic.error else "unknown"
            raise AdminError(f"topic {name!r} cannot be described: {reason}")
        partitions = sorted(topic.partitions)
        earliest = self._offsets(name, partitions, OffsetSpec.earliest())
        latest = self._offsets(name, partitions, OffsetSpec.latest())
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = _result(self._client.describe_configs([resource])[resource])
        return TopicInfo(
            name=name,
            partitions=[
                PartitionInfo(p, topic.partitions[p].leader, earliest[p], latest[p])
                for p in partitions
            ],
            configs={k: (v.value, bool(v.is_default)) for k, v in sorted(configs.items())},
        )

    def _offsets(self, topic: str, partitions: list[int], spec: Any) -> dict[int, int]:
        request = {TopicPartition(topic, p): spec for p in partitions}
        futures = self._client.list_offsets(request)
        return {tp.partition: _result(f).offset for tp, f in futures.items()}

    def list_groups(self) -> list[tuple[str, str]]:
        result = _result(self._client.list_consumer_groups())
        return sorted((g.group_id, str(g.state.name)) for g in result.valid)

    def describe_group(self, group_id: str) -> GroupOffsets:
        desc = _result(self._client.describe_consumer_groups([group_id])[group_id])
        committed = self.committed(group_id)
        topics = sorted({t for t, _ in committed})
        latest: dict[tuple[str, int], int] = {}
        for topic in topics:
            parts = [p for t, p in committed if t == topic]
            for p, off in self._offsets(topic, parts, OffsetSpec.latest()).items():
                latest[(topic, p)] = off
        return GroupOffsets(
            group_id=group_id,
            state=str(desc.state.name),
            members=[
                (
                    m.member_id,
                    m.client_id,
                    [(tp.topic, tp.partition) for tp in m.assignment.topic_partitions],
                )
                for m in desc.members
            ],
            offsets=[
                (t, p, off, max(0, latest.get((t, p), off) - off) if off >= 0 else -1)
                for (t, p), off in sorted(committed.items())
            ],
        )

    def committed(self, group_id: str) -> dict[tuple[str, int], int]:
        request = [ConsumerGroupTopicPartitions(group_id)]
        result = _result(self._client.list_consumer_group_offsets(request)[group_id])
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}

    def reset_offsets(
        self, group_id: str, topic: str, to: str, value: int | None
    ) -> dict[int, int]:
        """Move a group's committed offsets; ``to`` is earliest, latest, offset or timestamp."""
        metadata = self._client.list_topics(topic=topic, timeout=_TIMEOUT_S)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise AdminError(f"topic {topic!r} does not exist")
        partitions = sorted(metadata.topics[topic].partitions)
        if to == "earliest":
            targets = self._offsets(topic, partitions, OffsetSpec.earliest())
        elif to == "latest":
            targets = self._offsets(topic, partitions, OffsetSpec.latest())
        elif to == "offset" and value is not None:
            targets = dict.fromkeys(partitions, value)
        elif to == "timestamp" and value is not None:
            targets = self._offsets(topic, partitions, OffsetSpec.for_timestamp(value))
            latest = self._offsets(topic, partitions, OffsetSpec.latest())
            targets = {p: (o if o >= 0 else latest[p]) for p, o in targets.items()}
        else:
            raise AdminError(f"unknown reset target {to!r}")
        request = [
            ConsumerGroupTopicPartitions(
                group_id, [TopicPartition(topic, p, o) for p, o in targets.items()]
            )
        ]
        _result(self._client.alter_consumer_group_offsets(request)[group_id])
        return targets
