"""A snapshot of a cluster's Metadata: live brokers and each partition's leader, replicas and ISR.

Fixtures that start multi-node clusters (headwater.testing) need this to tell when every node
has joined and which node leads what, and only this package may speak confluent-kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from headwater.client._security import with_security


@dataclass(frozen=True, slots=True)
class PartitionState:
    """One partition as Metadata reports it; ``leader`` is -1 while no replica leads."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """Live (unfenced) brokers by node id and every partition, internal topics included."""

    brokers: dict[int, str]  # node id -> host:port
    controller_id: int
    partitions: dict[tuple[str, int], PartitionState]

    def leader_counts(self) -> dict[int, int]:
        """How many partitions each live broker leads, zero for brokers that lead none."""
        counts = dict.fromkeys(self.brokers, 0)
        for state in self.partitions.values():
            if state.leader >= 0:
                counts[state.leader] = counts.get(state.leader, 0) + 1
        return counts


def describe_cluster(bootstrap: str, timeout_s: float = 10.0) -> ClusterMetadata | None:
    """One Metadata request to any of ``bootstrap``, or None when no broker answered in time.

    None rather than an error, because callers poll this while nodes start or restart.
    librdkafka's own logging is off: a refused connection to a node that is down is expected.
    """
    client = AdminClient(with_security({"bootstrap.servers": bootstrap, "log_level": 0}))
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException:
        return None
    return ClusterMetadata(
        brokers={b.id: f"{b.host}:{b.port}" for b in metadata.brokers.values()},
        controller_id=metadata.controller_id,
        partitions={
            (name, p.id): PartitionState(p.leader, tuple(p.replicas), tuple(p.isrs))
            for name, topic in metadata.topics.items()
            for p in topic.partitions.values()
        },
    )
