"""Consumer groups on the KIP-848 protocol: member epochs, target assignment, reconciliation.

Sans-IO core: ``heartbeat`` takes a request and ``now_ms`` and answers at once (nothing in
this protocol waits), ``tick`` fences members whose session or revocation time ran out, and
``update_topics`` is told the topic metadata whenever it changes. One task owns an instance.

Each change to who is in the group or what they subscribe to (or to the metadata of what they
subscribe to) bumps the group epoch; the next heartbeat computes a target assignment for that
epoch with the server-side assignor; every member then reconciles towards its target on its own
heartbeats, revoking before receiving (see ``_consumer_reconcile``). Group states::

    Empty ─join─▶ Assigning ─target computed─▶ Reconciling ─all members at target─▶ Stable
                     ▲                                                               │
                     └──────────── join, leave, fencing, subscription or topics ─────┘

Members that send a wrong epoch are fenced (FENCED_MEMBER_EPOCH) and rejoin with epoch 0; a
static member (instance id) that leaves with epoch -2 keeps its partitions for one session
timeout so that a restart moves nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping

from headwater.broker._consumer_assignors import ASSIGNORS, MemberSpec
from headwater.broker._consumer_reconcile import Owned, reconcile
from headwater.broker._consumer_types import (
    JOIN_EPOCH,
    LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
    Assignment,
    ConsumerGroup,
    ConsumerGroupDescription,
    ConsumerGroupSettings,
    ConsumerMember,
    ConsumerMemberDescription,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
    TopicMeta,
)
from headwater.broker._group_errors import (
    FENCED_INSTANCE_ID,
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    INVALID_GROUP_ID,
    INVALID_REGULAR_EXPRESSION,
    INVALID_REQUEST,
    NON_EMPTY_GROUP,
    NONE,
    STALE_MEMBER_EPOCH,
    UNKNOWN_MEMBER_ID,
    UNRELEASED_INSTANCE_ID,
    UNSUPPORTED_ASSIGNOR,
    UNSUPPORTED_VERSION,
)
from headwater.broker._topic_regex import RegexError, TopicRegex, compile_regex

__all__ = ["REGEX_CACHE_MAX", "ConsumerGroupCoordinator"]

_log = logging.getLogger(__name__)

# Compiled regexes kept across groups; cleared when full, as recompiling is cheap.
REGEX_CACHE_MAX = 256


class _Refused(Exception):
    """A request Kafka answers with an error code; never escapes this module."""

    def __init__(self, error_code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _blank(value: str | None) -> bool:
    return value is not None and not value.strip()


class ConsumerGroupCoordinator:
    """Owns every consumer-protocol group of this broker."""

    def __init__(
        self,
        settings: ConsumerGroupSettings | None = None,
        *,
        member_id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.settings = settings = settings or ConsumerGroupSettings()
        if settings.max_size < 1:
            raise ValueError(f"max_size={settings.max_size}: a group needs room for one")
        if settings.session_timeout_ms <= 0 or settings.heartbeat_interval_ms <= 0:
            raise ValueError("session timeout and heartbeat interval must be positive")
        unknown = [a for a in settings.assignors if a not in ASSIGNORS]
        if not settings.assignors or unknown:
            raise ValueError(f"assignors must be some of {sorted(ASSIGNORS)}, got {unknown}")
        self._new_member_id = member_id_factory or (lambda: str(uuid.uuid4()))
        self._groups: dict[str, ConsumerGroup] = {}
        self._topics: dict[str, TopicMeta] = {}
        self._names: dict[uuid.UUID, str] = {}
        self._regexes: dict[str, TopicRegex] = {}

    # Queries the facade uses to keep one protocol per group id

    def has_groups(self) -> bool:
        return bool(self._groups)

    def has_group(self, group_id: str) -> bool:
        return group_id in self._groups

    def has_members(self, group_id: str) -> bool:
        group = self._groups.get(group_id)
        return group is not None and bool(group.members)

    def forget_if_empty(self, group_id: str) -> None:
        """An empty group is taken over by the other protocol, as Kafka converts it."""
        group = self._groups.get(group_id)
        if group is not None and not group.members:
            del self._groups[group_id]

    # ConsumerGroupHeartbeat

    def heartbeat(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResult:
        """Handle one heartbeat: join, leave, or keep alive and reconcile."""
        try:
            self._validate(req)
            if req.member_epoch in (LEAVE_EPOCH, STATIC_LEAVE_EPOCH):
                return self._leave(req)
            return self._heartbeat(req, now_ms)
        except _Refused as refused:
            return HeartbeatResult(refused.error_code, None, 0, 0, None, refused.message)

    def _validate(self, req: HeartbeatRequest) -> None:
        """Kafka's request checks, in Kafka's order (GroupCoordinatorService)."""
        epoch = req.member_epoch
        if (req.version >= 1 or epoch > 0 or epoch == LEAVE_EPOCH) and not req.member_id.strip():
            raise _Refused(INVALID_REQUEST, "MemberId can't be empty.")
        if not req.group_id.strip():
            raise _Refused(INVALID_REQUEST, "GroupId can't be empty.")
        if _blank(req.instance_id):
            raise _Refused(INVALID_REQUEST, "InstanceId can't be empty.")
        if _blank(req.rack_id):
            raise _Refused(INVALID_REQUEST, "RackId can't be empty.")
        if epoch == JOIN_EPOCH:
            if req.rebalance_timeout_ms == -1:
                raise _Refused(
                    INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request."
                )
            if req.owned is None or req.owned:
                raise _Refused(INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                raise _Refused(
                    INVALID_REQUEST,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null "
                    "when (re-)joining.",
                )
        elif epoch == STATIC_LEAVE_EPOCH:
            if req.instance_id is None:
                raise _Refused(INVALID_REQUEST, "InstanceId can't be null.")
        elif epoch < STATIC_LEAVE_EPOCH:
            raise _Refused(INVALID_REQUEST, "MemberEpoch is invalid.")
        if req.rebalance_timeout_ms < -1:
            raise _Refused(INVALID_REQUEST, "RebalanceTimeoutMs is invalid.")
        if req.server_assignor is not None and req.server_assignor not in self.settings.assignors:
            raise _Refused(
                UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {req.server_assignor} is not supported. "
                f"Supported assignors: {', '.join(self.settings.assignors)}.",
            )
        if req.subscribed_topic_regex:
            self._regex(req.subscribed_topic_regex)

    def _regex(self, pattern: str) -> TopicRegex:
        compiled = self._regexes.get(pattern)
        if compiled is None:
            try:
                compiled = compile_regex(pattern)
            except RegexError as exc:
                raise _Refused(
                    INVALID_REGULAR_EXPRESSION,
                    f"SubscribedTopicRegex `{pattern}` is not a valid regular expression: {exc}.",
                ) from None
            if len(self._regexes) >= REGEX_CACHE_MAX:
                self._regexes.clear()
            self._regexes[pattern] = compiled
        return compiled

    def _heartbeat(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResult:
        group = self._group_for(req)
        member_id = req.member_id or self._new_member_id()
        if len(group.members) >= self.settings.max_size and member_id not in group.members:
            raise _Refused(
                GROUP_MAX_SIZE_REACHED,
                f"The consumer group has reached its maximum capacity of "
                f"{self.settings.max_size} members.",
            )
        if req.instance_id is None:
            member = self._dynamic_member(group, member_id, req, now_ms)
        else:
            member = self._static_member(group, member_id, req, now_ms)
        previous_assigned = dict(member.assigned)
        changed = self._update_member(group, member, req)
        member.session_deadline_ms = now_ms + self.settings.session_timeout_ms
        if changed or group.group_epoch == 0:
            self._refresh_metadata(group)
            group.group_epoch += 1
            _log.info(
                "group epoch bumped group=%s epoch=%d member=%s",
                group.group_id,
                group.group_epoch,
                member.member_id,
            )
        if group.group_epoch > group.assignment_epoch:
            self._compute_target(group)
        self._reconcile(group, member, req.owned, changed, now_ms)
        full = (
            req.rebalance_timeout_ms != -1
            and (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None)
            and req.owned is not None
        )
        send = req.member_epoch == JOIN_EPOCH or full or previous_assigned != member.assigned
        return HeartbeatResult(
            NONE,
            member.member_id,
            member.member_epoch,
            self.settings.heartbeat_interval_ms,
            _sorted(member.assigned) if send else None,
        )

    def _group_for(self, req: HeartbeatRequest) -> ConsumerGroup:
        group = self._groups.get(req.group_id)
        if group is not None:
            return group
        if req.member_epoch != JOIN_EPOCH:
            # Kafka says GROUP_ID_NOT_FOUND; groups here do not survive a restart, so a member
            # the broker forgot is told what makes every client rejoin instead of giving up.
            raise _Refused(UNKNOWN_MEMBER_ID, f"Consumer group {req.group_id} not found.")
        group = self._groups[req.group_id] = ConsumerGroup(req.group_id)
        return group

    def _new_member(self, member_id: str, req: HeartbeatRequest, now_ms: int) -> ConsumerMember:
        return ConsumerMember(
            member_id=member_id,
            instance_id=req.instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_deadline_ms=now_ms + self.settings.session_timeout_ms,
        )

    def _dynamic_member(
        self, group: ConsumerGroup, member_id: str, req: HeartbeatRequest, now_ms: int
    ) -> ConsumerMember:
        member = group.members.get(member_id)
        if member is None:
            if req.member_epoch != JOIN_EPOCH:
                raise _Refused(
                    UNKNOWN_MEMBER_ID,
                    f"Member {member_id} is not a member of group {group.group_id}.",
                )
            member = group.members[member_id] = self._new_member(member_id, req, now_ms)
            _log.info("member joins group=%s member=%s", group.group_id, member_id)
        _check_epoch(member, req.member_epoch, req.owned)
        return member

    def _static_member(
        self, group: ConsumerGroup, member_id: str, req: HeartbeatRequest, now_ms: int
    ) -> ConsumerMember:
        instance_id = req.instance_id
        assert instance_id is not None
        existing_id = group.static.get(instance_id)
        existing = group.members.get(existing_id) if existing_id is not None else None
        if req.member_epoch != JOIN_EPOCH:
            if existing is None:
                raise _Refused(UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
            if existing.member_id != member_id:
                raise _Refused(
                    FENCED_INSTANCE_ID,
                    f"Static member {member_id} with instance id {instance_id} was fenced by "
                    f"member {existing.member_id}.",
                )
            _check_epoch(existing, req.member_epoch, req.owned)
            return existing
        if existing is None:
            member = group.members.get(member_id)
            if member is None:
                member = group.members[member_id] = self._new_member(member_id, req, now_ms)
            group.static[instance_id] = member_id
            _log.info(
                "static member joins group=%s member=%s instance=%s",
                group.group_id,
                member_id,
                instance_id,
            )
            return member
        if existing.member_epoch != STATIC_LEAVE_EPOCH:
            raise _Refused(
                UNRELEASED_INSTANCE_ID,
                f"Static member {member_id} with instance id {instance_id} cannot join the "
                f"group because the instance id is owned by {existing.member_id} member.",
            )
        return self._replace_static(group, existing, member_id, instance_id)

    def _replace_static(
        self, group: ConsumerGroup, old: ConsumerMember, member_id: str, instance_id: str
    ) -> ConsumerMember:
        """A restarted static member takes over its instance's partitions and target."""
        old_id = old.member_id
        del group.members[old_id]
        old.member_id = member_id
        old.member_epoch = old.previous_member_epoch = 0
        group.members[member_id] = old
        group.static[instance_id] = member_id
        if old_id in group.target:
            group.target[member_id] = group.target.pop(old_id)
        for key, owner in group.owners.items():
            if owner == old_id:
                group.owners[key] = member_id
        _log.info(
            "static member rejoins group=%s instance=%s old=%s new=%s",
            group.group_id,
            instance_id,
            old_id,
            member_id,
        )
        return old

    def _update_member(
        self, group: ConsumerGroup, member: ConsumerMember, req: HeartbeatRequest
    ) -> bool:
        """Apply what the request changed; True when the subscription changed."""
        member.client_id = req.client_id
        member.client_host = req.client_host
        if req.instance_id is not None:
            member.instance_id = req.instance_id
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.server_assignor is not None:
            member.server_assignor = req.server_assignor
        changed = False
        if req.subscribed_topic_names is not None:
            names = tuple(sorted(set(req.subscribed_topic_names)))
            changed = names != member.subscribed_names
            member.subscribed_names = names
        if req.subscribed_topic_regex is not None:
            regex = req.subscribed_topic_regex or None
            if regex != member.subscribed_regex:
                changed = True
                member.subscribed_regex = regex
                if regex is not None and regex not in group.regex_matches:
                    group.regex_matches[regex] = self._resolve(regex)
                _log.info(
                    "member regex group=%s member=%s regex=%s",
                    group.group_id,
                    member.member_id,
                    regex,
                )
        return changed

    def _resolve(self, pattern: str) -> frozenset[str]:
        regex = self._regex(pattern)
        return frozenset(name for name in self._topics if regex.matches(name))

    # Target assignment and reconciliation

    def _subscribed_names(self, group: ConsumerGroup, member: ConsumerMember) -> set[str]:
        names = set(member.subscribed_names)
        if member.subscribed_regex is not None:
            names |= group.regex_matches.get(member.subscribed_regex, frozenset())
        return {n for n in names if n in self._topics}

    def _refresh_metadata(self, group: ConsumerGroup) -> bool:
        """Recompute what the group subscribes to; True when it differs from before."""
        matches: dict[str, frozenset[str]] = {}
        for member in group.members.values():
            regex = member.subscribed_regex
            if regex is not None and regex not in matches:
                known = group.regex_matches.get(regex)
                matches[regex] = known if known is not None else self._resolve(regex)
        group.regex_matches = matches
        names: set[str] = set()
        for member in group.members.values():
            names |= self._subscribed_names(group, member)
        metadata = {n: self._topics[n] for n in sorted(names)}
        changed = metadata != group.metadata
        group.metadata = metadata
        return changed

    def _assignor(self, group: ConsumerGroup) -> str:
        """The server assignor most members ask for, else the first configured (Kafka's rule)."""
        votes: dict[str, int] = {}
        for member in group.members.values():
            if member.server_assignor is not None:
                votes[member.server_assignor] = votes.get(member.server_assignor, 0) + 1
        if not votes:
            return self.settings.assignors[0]
        return max(votes, key=lambda name: votes[name])

    def _compute_target(self, group: ConsumerGroup) -> None:
        name = self._assignor(group)
        specs = [
            MemberSpec(
                m.member_id,
                m.instance_id,
                frozenset(self._topics[n].topic_id for n in self._subscribed_names(group, m)),
                group.target.get(m.member_id, {}),
            )
            for m in group.members.values()
        ]
        counts = {meta.topic_id: meta.partitions for meta in group.metadata.values()}
        group.target = dict(ASSIGNORS[name](specs, counts, self._names))
        group.assignment_epoch = group.group_epoch
        _log.info(
            "target assignment group=%s epoch=%d assignor=%s members=%d",
            group.group_id,
            group.group_epoch,
            name,
            len(specs),
        )

    def _reconcile(
        self,
        group: ConsumerGroup,
        member: ConsumerMember,
        owned: Owned,
        subscription_changed: bool,
        now_ms: int,
    ) -> None:
        epoch = group.assignment_epoch
        if member.is_reconciled_to(epoch) and not subscription_changed:
            return
        subscribed = frozenset(
            self._topics[n].topic_id for n in self._subscribed_names(group, member)
        )

        def held_by_other(topic: uuid.UUID, partition: int) -> bool:
            owner = group.owners.get((topic, partition))
            return owner is not None and owner != member.member_id

        result = reconcile(
            member,
            epoch,
            group.target.get(member.member_id, {}),
            owned,
            held_by_other,
            subscribed,
            subscription_changed,
        )
        if result is None:
            return
        self._set_owned(group, member, result.assigned, result.pending_revocation)
        member.assignment_epochs = {
            (topic, p): member.assignment_epochs.get((topic, p), result.member_epoch)
            for assignment in (result.assigned, result.pending_revocation)
            for topic, partitions in assignment.items()
            for p in partitions
        }
        unchanged_epoch = result.member_epoch == member.member_epoch
        member.previous_member_epoch = member.member_epoch
        member.member_epoch = result.member_epoch
        entering_revocation = result.state is MemberState.UNREVOKED_PARTITIONS and not (
            member.state is MemberState.UNREVOKED_PARTITIONS and unchanged_epoch
        )
        member.state = result.state
        if result.state is not MemberState.UNREVOKED_PARTITIONS:
            member.revocation_deadline_ms = None
        elif entering_revocation or member.revocation_deadline_ms is None:
            member.revocation_deadline_ms = now_ms + member.rebalance_timeout_ms

    @staticmethod
    def _set_owned(
        group: ConsumerGroup, member: ConsumerMember, assigned: Assignment, pending: Assignment
    ) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic, partitions in assignment.items():
                for p in partitions:
                    if group.owners.get((topic, p)) == member.member_id:
                        del group.owners[(topic, p)]
        for assignment in (assigned, pending):
            for topic, partitions in assignment.items():
                for p in partitions:
                    previous = group.owners.setdefault((topic, p), member.member_id)
                    assert previous == member.member_id, "a partition has one owner at a time"
        member.assigned = dict(assigned)
        member.pending_revocation = dict(pending)

    # Leaving and fencing

    def _leave(self, req: HeartbeatRequest) -> HeartbeatResult:
        group = self._groups.get(req.group_id)
        if group is None:
            raise _Refused(GROUP_ID_NOT_FOUND, f"Consumer group {req.group_id} not found.")
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                raise _Refused(
                    UNKNOWN_MEMBER_ID,
                    f"Member {req.member_id} is not a member of group {group.group_id}.",
                )
        else:
            member_id = group.static.get(req.instance_id)
            if member_id is None:
                raise _Refused(UNKNOWN_MEMBER_ID, f"Instance id {req.instance_id} is unknown.")
            if member_id != req.member_id:
                raise _Refused(FENCED_INSTANCE_ID, f"Static member {req.member_id} was fenced.")
            member = group.members[member_id]
            if req.member_epoch == STATIC_LEAVE_EPOCH:
                # It keeps its partitions for one session timeout: a restart moves nothing.
                self._set_owned(group, member, member.assigned, {})
                member.member_epoch = STATIC_LEAVE_EPOCH
                member.revocation_deadline_ms = None
                _log.info(
                    "static member left temporarily group=%s member=%s",
                    group.group_id,
                    member_id,
                )
                return HeartbeatResult(NONE, member_id, STATIC_LEAVE_EPOCH, 0)
        _log.info("member left group=%s member=%s", group.group_id, member.member_id)
        self._fence(group, member)
        return HeartbeatResult(NONE, member.member_id, req.member_epoch, 0)

    def _fence(self, group: ConsumerGroup, member: ConsumerMember) -> None:
        """Remove a member; the others get a new target on their next heartbeat."""
        self._set_owned(group, member, {}, {})
        del group.members[member.member_id]
        group.target.pop(member.member_id, None)
        iid = member.instance_id
        if iid is not None and group.static.get(iid) == member.member_id:
            del group.static[iid]
        self._refresh_metadata(group)
        group.group_epoch += 1

    # Time and topic metadata

    def tick(self, now_ms: int) -> None:
        """Fence members whose session expired or who held revoked partitions too long."""
        for group in self._groups.values():
            for member in list(group.members.values()):
                revoke = member.revocation_deadline_ms
                if member.session_deadline_ms <= now_ms:
                    reason = "session expired"
                elif revoke is not None and revoke <= now_ms:
                    reason = "revocation not acknowledged within the rebalance timeout"
                else:
                    continue
                _log.info(
                    "member fenced group=%s member=%s reason=%s",
                    group.group_id,
                    member.member_id,
                    reason,
                )
                self._fence(group, member)

    def next_deadline_ms(self) -> int | None:
        """The earliest time ``tick`` has work; linear in members, which are bounded."""
        deadlines: list[int] = []
        for group in self._groups.values():
            for member in group.members.values():
                deadlines.append(member.session_deadline_ms)
                if member.revocation_deadline_ms is not None:
                    deadlines.append(member.revocation_deadline_ms)
        return min(deadlines, default=None)

    def update_topics(self, topics: Mapping[str, TopicMeta]) -> None:
        """New topic metadata: groups whose subscribed topics changed get a new epoch."""
        if topics == self._topics:
            return
        self._topics = dict(topics)
        self._names = {meta.topic_id: name for name, meta in topics.items()}
        for group in self._groups.values():
            group.regex_matches = {r: self._resolve(r) for r in group.regex_matches}
            if self._refresh_metadata(group) and group.members:
                group.group_epoch += 1
                _log.info(
                    "topic metadata changed group=%s epoch=%d", group.group_id, group.group_epoch
                )

    # ConsumerGroupDescribe, ListGroups, DeleteGroups, offsets

    def describe(self, group_id: str) -> ConsumerGroupDescription:
        """Describe a group; unknown ones are GROUP_ID_NOT_FOUND, as Kafka answers."""
        group = self._groups.get(group_id)
        if group is None:
            return ConsumerGroupDescription(
                GROUP_ID_NOT_FOUND, group_id, "", 0, 0, "", [], f"Group {group_id} not found."
            )
        members = [
            ConsumerMemberDescription(
                m.member_id,
                m.instance_id,
                m.rack_id,
                m.member_epoch,
                m.client_id,
                m.client_host,
                m.subscribed_names,
                m.subscribed_regex,
                self._named(m.assigned),
                self._named(group.target.get(m.member_id, {})),
            )
            for m in group.members.values()
        ]
        return ConsumerGroupDescription(
            NONE,
            group_id,
            group.state().value,
            group.group_epoch,
            group.assignment_epoch,
            self._assignor(group),
            members,
        )

    def _named(self, assignment: Assignment) -> list[tuple[uuid.UUID, str, tuple[int, ...]]]:
        return [
            (topic, self._names[topic], partitions)
            for topic, partitions in _sorted(assignment).items()
            if topic in self._names
        ]

    def list_groups(self) -> list[tuple[str, str]]:
        """(group_id, state) for every consumer group."""
        return [(g.group_id, g.state().value) for g in self._groups.values()]

    def delete_group(self, group_id: str) -> int:
        """Forget an Empty group; groups with members are refused."""
        if not group_id:
            return INVALID_GROUP_ID
        group = self._groups.get(group_id)
        if group is None:
            return GROUP_ID_NOT_FOUND
        if group.members:
            return NON_EMPTY_GROUP
        del self._groups[group_id]
        return NONE

    def validate_commit(
        self, group_id: str, member_id: str, epoch: int, version: int, *, transactional: bool
    ) -> int:
        """OffsetCommit against a consumer group: the member epoch stands for the generation.

        As in Kafka, a TxnOffsetCommit naming no member and no epoch is not checked (its v0-2
        cannot name one); other commits without an epoch need the group to be empty.
        """
        group = self._groups.get(group_id)
        if group is None or (epoch < 0 and not group.members):
            return NONE
        if transactional and epoch == -1 and not member_id:
            return NONE
        member = group.members.get(member_id)
        if member is None:
            return UNKNOWN_MEMBER_ID
        if version < 9 and not transactional:
            return UNSUPPORTED_VERSION  # KIP-848 members must commit with v9+
        # An older epoch is judged per partition (commit_partition_error), as Kafka 4.4 does:
        # a member that was just moved to a new epoch may still commit what it consumed.
        return STALE_MEMBER_EPOCH if epoch > member.member_epoch else NONE

    def commit_partition_error(
        self, group_id: str, member_id: str, epoch: int, topic: str, partition: int
    ) -> int:
        """For a commit with an older member epoch: the member must have held the partition."""
        group = self._groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None or epoch < 0 or epoch >= member.member_epoch:
            return NONE
        meta = self._topics.get(topic)
        given = member.assignment_epochs.get((meta.topic_id, partition)) if meta else None
        return NONE if given is not None and given <= epoch else STALE_MEMBER_EPOCH

    def validate_fetch(self, group_id: str, member_id: str | None, epoch: int) -> int:
        """OffsetFetch v9+ from a member must carry its current epoch; admin tools send none."""
        group = self._groups.get(group_id)
        if group is None or (member_id is None and epoch < 0):
            return NONE
        member = group.members.get(member_id or "")
        if member is None:
            return UNKNOWN_MEMBER_ID
        return NONE if epoch == member.member_epoch else STALE_MEMBER_EPOCH


def _check_epoch(member: ConsumerMember, epoch: int, owned: Owned) -> None:
    """Epoch 0 rejoins; a newer epoch, or an older one that is not a lost reply, is fenced."""
    if epoch == JOIN_EPOCH:
        return
    if epoch > member.member_epoch:
        raise _Refused(
            FENCED_MEMBER_EPOCH,
            f"The consumer group member has a greater member epoch ({epoch}) than the one "
            f"known by the group coordinator ({member.member_epoch}).",
        )
    if epoch < member.member_epoch and (
        epoch != member.previous_member_epoch or not _subset(owned, member.assigned)
    ):
        raise _Refused(
            FENCED_MEMBER_EPOCH,
            f"The consumer group member has a smaller member epoch ({epoch}) than the one "
            f"known by the group coordinator ({member.member_epoch}).",
        )


def _subset(owned: Owned, assigned: Assignment) -> bool:
    if owned is None:
        return False
    return all(set(ps) <= assigned.get(topic, frozenset()) for topic, ps in owned)


def _sorted(assignment: Assignment) -> dict[uuid.UUID, tuple[int, ...]]:
    return {topic: tuple(sorted(ps)) for topic, ps in assignment.items()}
