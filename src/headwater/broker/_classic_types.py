"""Classic group protocol: the messages the core takes and returns, and its member and group state.

Requests and results are frozen values shaped like the union of every JoinGroup and SyncGroup
version; the handler fills what old versions lack. ``ClassicMember`` and ``ClassicGroup`` are
the core's mutable state, kept here so the coordinator module holds only transitions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

from headwater.broker._group_errors import FENCED_INSTANCE_ID, NONE, UNKNOWN_MEMBER_ID

__all__ = [
    "ClassicGroup",
    "ClassicMember",
    "GroupDescription",
    "GroupState",
    "JoinMember",
    "JoinRequest",
    "JoinResult",
    "MemberDescription",
    "Reply",
    "SyncRequest",
    "SyncResult",
    "Token",
    "default_member_id",
    "join_error",
    "select_protocol",
    "supports",
    "sync_error",
    "validate_member",
]

Token: TypeAlias = object
"""Opaque handle the shell uses to find a waiting request, e.g. its Future."""


class GroupState(StrEnum):
    """Group states; the values are the names DescribeGroups and ListGroups report."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A JoinGroup request, any version; the handler fills what old versions lack."""

    group_id: str
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: list[tuple[str, bytes]]  # (name, metadata) in client preference order
    session_timeout_ms: int
    rebalance_timeout_ms: int  # v0 has none: the handler passes the session timeout
    client_id: str
    client_host: str
    require_known_member_id: bool  # JoinGroup v4+ (KIP-394)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JoinMember:
    """One member as the leader sees it, with its metadata for the chosen protocol."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    """A JoinGroup response; only the leader gets the member list."""

    error_code: int
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader: str
    member_id: str
    members: list[JoinMember]
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """A SyncGroup request; only the leader's carries assignments."""

    group_id: str
    member_id: str
    generation_id: int
    group_instance_id: str | None
    protocol_type: str | None
    protocol_name: str | None
    assignments: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class SyncResult:
    """A SyncGroup response carrying this member's assignment."""

    error_code: int
    protocol_type: str | None
    protocol_name: str | None
    assignment: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """An effect: send ``result`` to the request waiting on ``token``."""

    token: Token
    result: JoinResult | SyncResult


@dataclass(frozen=True, slots=True)
class MemberDescription:
    """One member in DescribeGroups; metadata and assignment are filled only when Stable."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A DescribeGroups entry."""

    error_code: int
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberDescription]


@dataclass(slots=True, eq=False)
class ClassicMember:
    """A member and the requests it is blocked on."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    session_deadline_ms: int
    # A member that never finished a join is dropped after this even while it waits, so a
    # client that vanished mid-join cannot hold the group (KIP-394's new-member timeout).
    new_member_deadline_ms: int
    is_new: bool = True
    assignment: bytes = b""
    join_token: Token | None = None
    sync_token: Token | None = None

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def deadline_ms(self) -> int | None:
        """A client blocked in JoinGroup or SyncGroup cannot heartbeat, so waiting is liveness."""
        if self.join_token is not None:
            return self.new_member_deadline_ms if self.is_new else None
        if self.sync_token is not None:
            return None
        return self.session_deadline_ms


@dataclass(slots=True, eq=False)
class ClassicGroup:
    """One group's state; members keep join order, which picks the leader."""

    group_id: str
    state: GroupState = GroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    # The leader this generation was announced with. A static leader that restarts takes
    # over as leader_id, but replies for the same generation keep naming the announced one,
    # so no client mistakes itself for a leader whose assignment would never be used.
    announced_leader_id: str = ""
    members: dict[str, ClassicMember] = field(default_factory=dict)
    # KIP-394 member ids handed out with MEMBER_ID_REQUIRED, with their expiry; a rebalance
    # waits for them because their clients rejoin within milliseconds.
    pending: dict[str, int] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    join_deadline_ms: int | None = None
    initial_delay: bool = False
    initial_remaining_ms: int = 0
    new_member_added: bool = False
    # Members that got the new generation but have not sent SyncGroup yet, and when they lose
    # their place: a leader that never sends assignments must not stall the group forever.
    pending_sync: set[str] = field(default_factory=set)
    sync_deadline_ms: int | None = None

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def all_joined(self) -> bool:
        return not self.pending and all(m.join_token is not None for m in self.members.values())


def default_member_id(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4()}"


def join_error(error_code: int, member_id: str) -> JoinResult:
    return JoinResult(error_code, -1, None, None, "", member_id, [])


def sync_error(error_code: int) -> SyncResult:
    return SyncResult(error_code, None, None, b"")


def supports(
    members: Iterable[ClassicMember],
    group_protocol_type: str | None,
    req: JoinRequest,
    exclude: str,
) -> bool:
    """A joiner must share the protocol type and at least one protocol with everyone else.

    The joiner's own previous protocols are left out (Kafka counts them), so a lone member can
    switch protocols. Checking each change against all others keeps the group's common set
    non-empty, which protocol selection relies on.
    """
    if not req.protocol_type or not req.protocols:
        return False
    others = [m for m in members if m.member_id != exclude]
    if not others:
        return True
    if req.protocol_type != group_protocol_type:
        return False
    common = {name for name, _ in req.protocols}
    for member in others:
        common.intersection_update(name for name, _ in member.protocols)
    return bool(common)


def select_protocol(members: Iterable[ClassicMember]) -> str:
    """Kafka's vote: each member picks its favourite common protocol; ties go to the earliest."""
    members = list(members)
    common = {name for name, _ in members[0].protocols}
    for member in members[1:]:
        common.intersection_update(name for name, _ in member.protocols)
    assert common, "every join is checked against the common protocols"
    votes: dict[str, int] = {}
    for member in members:
        choice = next(name for name, _ in member.protocols if name in common)
        votes[choice] = votes.get(choice, 0) + 1
    return max(votes, key=lambda name: votes[name])


def validate_member(group: ClassicGroup, member_id: str, group_instance_id: str | None) -> int:
    """Kafka checks the instance id first, so a replaced static member learns it was fenced."""
    if group_instance_id is not None:
        current = group.static.get(group_instance_id)
        if current is None:
            return UNKNOWN_MEMBER_ID
        return FENCED_INSTANCE_ID if current != member_id else NONE
    return NONE if member_id in group.members else UNKNOWN_MEMBER_ID
