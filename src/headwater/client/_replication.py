"""How many copies of each partition the topics headwater creates get: as many as the cluster
has brokers, up to three.

Every layer that creates a topic (demo topics, streams changelogs and outputs, dead-letter
topics, the registry's ``_schemas``) asks this module, so the same code writes one copy on the
embedded single-node broker and three on an Apache Kafka cluster: only ``bootstrap.servers``
changes. Three replicas with ``min.insync.replicas=2`` is the usual safe pair: an ``acks=all``
write is on two brokers before it is acknowledged, and one broker can be down without
stopping writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.client._security import with_security

#: More copies cost disk and network without surviving more than the usual one-node failure.
REPLICATION_FACTOR_MAX = 3
#: With three replicas, two in sync: one node down still takes acks=all writes.
MIN_INSYNC_REPLICAS_AT_MAX = 2


class ReplicationError(RuntimeError):
    """The cluster could not be asked how many brokers it has."""


@dataclass(frozen=True, slots=True)
class Replication:
    """A replication factor and the topic configs that go with it."""

    factor: int
    configs: dict[str, str] = field(default_factory=dict)

    def topic_configs(self, configs: dict[str, str] | None = None) -> dict[str, str]:
        """``configs`` with this replication's defaults underneath (the caller's win)."""
        return {**self.configs, **(configs or {})}


def replication_for(brokers: int) -> Replication:
    """min(3, brokers) replicas, with ``min.insync.replicas=2`` when that is 3."""
    return with_factor(max(1, min(REPLICATION_FACTOR_MAX, brokers)))


def with_factor(factor: int) -> Replication:
    """An explicit replication factor, with the min ISR that suits it."""
    if factor < 1:
        raise ValueError(f"a replication factor is at least 1, not {factor}")
    configs: dict[str, str] = {}
    if factor >= REPLICATION_FACTOR_MAX:
        configs["min.insync.replicas"] = str(MIN_INSYNC_REPLICAS_AT_MAX)
    return Replication(factor, configs)


def replication_of(client: AdminClient, timeout_s: float = 30.0) -> Replication:
    """The replication for new topics on ``client``'s cluster, from one Metadata request.

    Metadata lists live brokers only: with one of three down a new topic gets two replicas
    rather than failing, since Kafka refuses a factor larger than the live broker count.
    """
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ReplicationError(f"cannot read the cluster's brokers: {exc}") from None
    return replication_for(len(metadata.brokers))


def cluster_replication(bootstrap: str, timeout_s: float = 30.0) -> Replication:
    """:func:`replication_of` for a cluster given by its bootstrap servers."""
    return replication_of(AdminClient(with_security({"bootstrap.servers": bootstrap})), timeout_s)


def new_topic(
    name: str, partitions: int, configs: dict[str, str] | None, replication: Replication
) -> NewTopic:
    """A CreateTopics entry with ``replication``'s factor and configs under ``configs``."""
    return NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication.factor,
        config=replication.topic_configs(configs),
    )


def wait_until_led(
    client: AdminClient, topics: Iterable[str], timeout_s: float = 30.0
) -> list[str]:
    """Wait until Metadata shows every one of ``topics`` with a leader for each partition.

    CreateTopics answers once the controller has recorded the topic; on a multi-node cluster
    the brokers learn of it a moment later, and until then a read of the new topic is refused
    with UNKNOWN_TOPIC_OR_PARTITION. Returns the topics still not led when time ran out.
    """
    waiting = set(topics)
    deadline = time.monotonic() + timeout_s
    while waiting:
        try:
            metadata = client.list_topics(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
        except KafkaException:
            metadata = None
        if metadata is not None:
            for name in list(waiting):
                found = metadata.topics.get(name)
                if (
                    found is not None
                    and found.error is None
                    and found.partitions
                    and all(p.leader >= 0 for p in found.partitions.values())
                ):
                    waiting.discard(name)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return sorted(waiting)
