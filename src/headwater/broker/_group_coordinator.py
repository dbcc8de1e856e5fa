"""Every group of the broker, classic and consumer protocol, behind one sans-IO facade.

Two cores, one per protocol, each a pure state machine (``_classic_coordinator`` for
JoinGroup/SyncGroup, ``_consumer_coordinator`` for KIP-848's ConsumerGroupHeartbeat). This
facade keeps a group id to one protocol at a time, as Kafka does with its group migration
disabled: a classic join to a consumer group that has members is INCONSISTENT_GROUP_PROTOCOL,
a consumer heartbeat to a classic group that has members is GROUP_ID_NOT_FOUND, and an empty
group of either kind is taken over by the other. It also answers the questions that span both
(DescribeGroups, ListGroups, DeleteGroups and the membership checks of the offset APIs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from headwater.broker._classic_coordinator import ClassicGroupCoordinator
from headwater.broker._classic_types import (
    GroupDescription,
    GroupState,
    JoinMember,
    JoinRequest,
    JoinResult,
    MemberDescription,
    Reply,
    SyncRequest,
    SyncResult,
    Token,
    join_error,
)
from headwater.broker._consumer_coordinator import ConsumerGroupCoordinator
from headwater.broker._consumer_types import (
    ConsumerGroupDescription,
    ConsumerGroupSettings,
    HeartbeatRequest,
    HeartbeatResult,
    TopicMeta,
)
from headwater.broker._group_errors import (
    COORDINATOR_NOT_AVAILABLE,
    FENCED_INSTANCE_ID,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NON_EMPTY_GROUP,
    NONE,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_SERVER_ERROR,
)

__all__ = [
    "COORDINATOR_NOT_AVAILABLE",
    "FENCED_INSTANCE_ID",
    "GROUP_ID_NOT_FOUND",
    "GROUP_MAX_SIZE_REACHED",
    "ILLEGAL_GENERATION",
    "INCONSISTENT_GROUP_PROTOCOL",
    "INVALID_GROUP_ID",
    "INVALID_SESSION_TIMEOUT",
    "MEMBER_ID_REQUIRED",
    "NONE",
    "NON_EMPTY_GROUP",
    "REBALANCE_IN_PROGRESS",
    "UNKNOWN_MEMBER_ID",
    "UNKNOWN_SERVER_ERROR",
    "GroupCoordinator",
    "GroupDescription",
    "GroupState",
    "JoinMember",
    "JoinRequest",
    "JoinResult",
    "ListedGroup",
    "MemberDescription",
    "Reply",
    "SyncRequest",
    "SyncResult",
    "Token",
]

CLASSIC = "classic"
CONSUMER = "consumer"
# The first OffsetCommit and TxnOffsetCommit versions that may answer GROUP_ID_NOT_FOUND.
COMMIT_NOT_FOUND_VERSION = 9
TXN_COMMIT_NOT_FOUND_VERSION = 6

ListedGroup = tuple[str, str, str, str]
"""(group_id, protocol_type, state, group_type) as ListGroups v5 reports them."""


class GroupCoordinator:
    """Routes each group request to the core of its protocol and keeps ids to one protocol."""

    def __init__(
        self,
        *,
        initial_rebalance_delay_ms: int = 0,
        max_group_size: int = 1000,
        min_session_timeout_ms: int = 1000,
        max_session_timeout_ms: int = 1_800_000,
        new_member_join_timeout_ms: int = 300_000,
        member_id_factory: Callable[[str], str] | None = None,
        consumer: ConsumerGroupSettings | None = None,
        consumer_member_id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.classic = ClassicGroupCoordinator(
            initial_rebalance_delay_ms=initial_rebalance_delay_ms,
            max_group_size=max_group_size,
            min_session_timeout_ms=min_session_timeout_ms,
            max_session_timeout_ms=max_session_timeout_ms,
            new_member_join_timeout_ms=new_member_join_timeout_ms,
            member_id_factory=member_id_factory,
        )
        self.consumer = ConsumerGroupCoordinator(
            consumer, member_id_factory=consumer_member_id_factory
        )

    # Classic protocol

    def join(self, token: Token, req: JoinRequest, now_ms: int) -> list[Reply]:
        """JoinGroup; refused while the id is a consumer group with members."""
        if req.group_id and self.consumer.has_members(req.group_id):
            return [Reply(token, join_error(INCONSISTENT_GROUP_PROTOCOL, req.member_id))]
        self.consumer.forget_if_empty(req.group_id)
        return self.classic.join(token, req, now_ms)

    def sync(self, token: Token, req: SyncRequest, now_ms: int) -> list[Reply]:
        return self.classic.sync(token, req, now_ms)

    def heartbeat(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None,
        now_ms: int,
    ) -> int:
        return self.classic.heartbeat(group_id, member_id, generation_id, group_instance_id, now_ms)

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]], now_ms: int
    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        return self.classic.leave(group_id, members, now_ms)

    def take_replies(self) -> list[Reply]:
        return self.classic.take_replies()

    def cancel(self, token: Token) -> None:
        self.classic.cancel(token)

    # Consumer protocol

    def consumer_heartbeat(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResult:
        """ConsumerGroupHeartbeat; refused while the id is a classic group with members."""
        if req.group_id and not self.classic.is_empty(req.group_id):
            return HeartbeatResult(
                GROUP_ID_NOT_FOUND,
                None,
                0,
                0,
                None,
                f"Group {req.group_id} is not a consumer group.",
            )
        if req.member_epoch == 0:
            self.classic.forget_if_empty(req.group_id)
        return self.consumer.heartbeat(req, now_ms)

    def consumer_describe(self, group_id: str) -> ConsumerGroupDescription:
        if self.classic.has_group(group_id):
            return ConsumerGroupDescription(
                GROUP_ID_NOT_FOUND,
                group_id,
                "",
                0,
                0,
                "",
                [],
                f"Group {group_id} is not a consumer group.",
            )
        return self.consumer.describe(group_id)

    def update_topics(self, topics: Mapping[str, TopicMeta]) -> None:
        self.consumer.update_topics(topics)

    # Time

    def tick(self, now_ms: int) -> list[Reply]:
        self.consumer.tick(now_ms)
        return self.classic.tick(now_ms)

    def next_deadline_ms(self) -> int | None:
        deadlines = [self.classic.next_deadline_ms(), self.consumer.next_deadline_ms()]
        return min((d for d in deadlines if d is not None), default=None)

    # Both protocols

    def describe(self, group_id: str) -> GroupDescription:
        """DescribeGroups describes classic groups; a consumer group answers as Kafka's: Dead."""
        if self.consumer.has_group(group_id):
            return GroupDescription(GROUP_ID_NOT_FOUND, group_id, "Dead", "", "", [])
        return self.classic.describe(group_id)

    def group_type(self, group_id: str) -> str | None:
        if self.consumer.has_group(group_id):
            return CONSUMER
        return CLASSIC if self.classic.has_group(group_id) else None

    def list_groups(self) -> list[ListedGroup]:
        """Every group with its protocol type, state and group type."""
        out = [(g, ptype, state, CLASSIC) for g, ptype, state in self.classic.list_groups()]
        out.extend((g, CONSUMER, state, CONSUMER) for g, state in self.consumer.list_groups())
        return out

    def delete_group(self, group_id: str) -> int:
        if self.consumer.has_group(group_id):
            return self.consumer.delete_group(group_id)
        return self.classic.delete_group(group_id)

    def is_empty(self, group_id: str) -> bool:
        """True if the group is unknown or has no members."""
        return self.classic.is_empty(group_id) and not self.consumer.has_members(group_id)

    def generation(self, group_id: str) -> tuple[int, set[str]]:
        return self.classic.generation(group_id)

    def validate_commit(
        self,
        group_id: str,
        member_id: str,
        generation_or_epoch: int,
        version: int,
        *,
        transactional: bool = False,
        has_offsets: bool = False,
    ) -> int:
        """OffsetCommit's (and TxnOffsetCommit's) membership check, Kafka's rules for each protocol.

        ``has_offsets`` says the group holds committed offsets: for Kafka such a group exists
        (an Empty classic group) even if no member ever joined, but Headwater keeps it only in
        its offsets log, which this core does not see.
        """
        if not group_id:
            return INVALID_GROUP_ID
        if self.consumer.has_group(group_id):
            return self.consumer.validate_commit(
                group_id, member_id, generation_or_epoch, version, transactional=transactional
            )
        if generation_or_epoch >= 0 and not (has_offsets or self.classic.has_group(group_id)):
            # Kafka creates a group for a commit without a generation only; one naming a
            # generation finds none, which versions before GROUP_ID_NOT_FOUND call stale.
            first = TXN_COMMIT_NOT_FOUND_VERSION if transactional else COMMIT_NOT_FOUND_VERSION
            return GROUP_ID_NOT_FOUND if version >= first else ILLEGAL_GENERATION
        if generation_or_epoch < 0 and self.classic.is_empty(group_id):
            return NONE  # a standalone commit (assign() consumers, admin tools)
        if generation_or_epoch < 0 and not member_id:
            # Only an Empty group takes standalone commits, so they cannot overwrite what
            # members commit. TxnOffsetCommit is exempt, as in Kafka: v0-2 name no member.
            return NONE if transactional else UNKNOWN_MEMBER_ID
        current, members = self.classic.generation(group_id)
        if member_id not in members:
            return UNKNOWN_MEMBER_ID
        return NONE if generation_or_epoch == current else ILLEGAL_GENERATION

    def commit_partition_error(
        self, group_id: str, member_id: str, epoch: int, topic: str, partition: int
    ) -> int:
        """Per-partition part of OffsetCommit's check (consumer groups with an older epoch)."""
        if not self.consumer.has_group(group_id):
            return NONE
        return self.consumer.commit_partition_error(group_id, member_id, epoch, topic, partition)

    def validate_fetch(self, group_id: str, member_id: str | None, epoch: int) -> int:
        """OffsetFetch v9's member check; members of classic groups are checked by generation."""
        if self.consumer.has_group(group_id):
            return self.consumer.validate_fetch(group_id, member_id, epoch)
        if (member_id is None and epoch < 0) or not self.classic.has_group(group_id):
            return NONE
        current, members = self.classic.generation(group_id)
        if member_id not in members:
            return UNKNOWN_MEMBER_ID
        return NONE if epoch == current else ILLEGAL_GENERATION
