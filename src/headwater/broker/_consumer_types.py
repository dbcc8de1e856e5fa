"""Consumer group protocol (KIP-848): the values the core takes and returns, and its state.

Assignments are maps of topic id to partition set, as on the wire: a topic that is deleted and
recreated under the same name is a different topic, and members must not confuse the two.
Requests keep Kafka's "null means unchanged" convention (``None`` here), so the core can tell
a full heartbeat from an incremental one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Assignment",
    "ConsumerGroup",
    "ConsumerGroupDescription",
    "ConsumerGroupSettings",
    "ConsumerGroupState",
    "ConsumerMember",
    "ConsumerMemberDescription",
    "HeartbeatRequest",
    "HeartbeatResult",
    "MemberState",
    "TopicMeta",
]

Assignment = Mapping[uuid.UUID, frozenset[int]]
"""Partitions by topic id; never holds an empty set."""

JOIN_EPOCH = 0
LEAVE_EPOCH = -1
STATIC_LEAVE_EPOCH = -2


class MemberState(StrEnum):
    """Where a member is in reconciling towards its target assignment."""

    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"  # waits for the member to give some up
    UNRELEASED_PARTITIONS = "unreleased_partitions"  # waits for others to give some up


class ConsumerGroupState(StrEnum):
    """Group states; the values are the names ListGroups and ConsumerGroupDescribe report."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class TopicMeta:
    """What the assignors need of a topic: its id and partition count."""

    topic_id: uuid.UUID
    partitions: int


@dataclass(frozen=True, slots=True)
class ConsumerGroupSettings:
    """The broker's ``group.consumer.*`` settings the core enforces."""

    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_size: int = 1000
    assignors: tuple[str, ...] = ("uniform", "range")


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    """A ConsumerGroupHeartbeat request; ``None`` fields did not change since the last one."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: tuple[tuple[uuid.UUID, tuple[int, ...]], ...] | None = None
    client_id: str = ""
    client_host: str = ""
    version: int = 1


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """A ConsumerGroupHeartbeat response; ``assignment`` is None when it did not change."""

    error_code: int
    member_id: str | None
    member_epoch: int
    heartbeat_interval_ms: int
    assignment: dict[uuid.UUID, tuple[int, ...]] | None = None
    error_message: str | None = None


@dataclass(slots=True, eq=False)
class ConsumerMember:
    """One member: its subscription, its current assignment and where it is in reconciling."""

    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_deadline_ms: int
    rack_id: str | None = None
    subscribed_names: tuple[str, ...] = ()
    subscribed_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    # The member epoch at which it was given each partition it holds: a commit carrying an
    # older member epoch is still accepted for partitions it held at that epoch (Kafka 4.4).
    assignment_epochs: dict[tuple[uuid.UUID, int], int] = field(default_factory=dict)
    # Set while the member holds partitions it was asked to revoke: past it, it is fenced so
    # a stuck member cannot keep partitions from their next owner forever.
    revocation_deadline_ms: int | None = None

    def is_reconciled_to(self, epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == epoch


@dataclass(slots=True, eq=False)
class ConsumerGroup:
    """One group: members in join order, the target assignment and who owns what now."""

    group_id: str
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, Assignment] = field(default_factory=dict)  # member id -> partitions
    # Current owner of every partition a member has assigned or pending revocation: a
    # partition is handed to its next owner only once it is absent from here.
    owners: dict[tuple[uuid.UUID, int], str] = field(default_factory=dict)
    # Metadata of the subscribed topics when the target was last computed; a difference (new
    # partitions, a new topic matching a regex, a deletion) starts a new group epoch.
    metadata: dict[str, TopicMeta] = field(default_factory=dict)
    regex_matches: dict[str, frozenset[str]] = field(default_factory=dict)

    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if all(m.is_reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.STABLE
        return ConsumerGroupState.RECONCILING


@dataclass(frozen=True, slots=True)
class ConsumerMemberDescription:
    """One member in ConsumerGroupDescribe; assignments by topic id and name."""

    member_id: str
    instance_id: str | None
    rack_id: str | None
    member_epoch: int
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    assignment: list[tuple[uuid.UUID, str, tuple[int, ...]]]
    target_assignment: list[tuple[uuid.UUID, str, tuple[int, ...]]]


@dataclass(frozen=True, slots=True)
class ConsumerGroupDescription:
    """A ConsumerGroupDescribe entry."""

    error_code: int
    group_id: str
    state: str
    group_epoch: int
    assignment_epoch: int
    assignor_name: str
    members: list[ConsumerMemberDescription]
    error_message: str | None = None
