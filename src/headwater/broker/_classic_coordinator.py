"""Consumer groups on Kafka's classic protocol: membership, rebalances, assignments.

Sans-IO core. Requests arrive with ``now_ms`` and an opaque token for the response; answers
that must wait come back later as ``Reply`` effects from whichever call unblocks them (the
last member to rejoin receives its own reply together with everyone else's). The asyncio
shell owns sockets and timers: it calls ``tick`` once ``next_deadline_ms`` has passed and
``cancel`` when a connection with a waiting request closes. One task owns an instance, so
nothing here locks. Tokens must be hashable (asyncio Futures are) and never ``None``.

Group states follow Kafka::

    Empty ─first join─▶ PreparingRebalance ─all rejoined or timeout─▶ CompletingRebalance
      ▲                    ▲        │ nobody left                          │ leader's SyncGroup
      └────────────────────┼────────┘                                      ▼
                           └──── join, leave, expiry, metadata change ── Stable

Rebalances complete the moment every known member has rejoined: holding a JoinGroup for half
a session timeout makes every consumer start slow. LeaveGroup acts at once for the same reason.
Deleted groups are forgotten, so they describe as "Dead" like unknown ones, as Kafka does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from headwater.broker._classic_types import (
    ClassicGroup,
    ClassicMember,
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
    default_member_id,
    join_error,
    select_protocol,
    supports,
    sync_error,
    validate_member,
)
from headwater.broker._group_errors import (
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
)

__all__ = ["ClassicGroupCoordinator"]

_log = logging.getLogger(__name__)


class ClassicGroupCoordinator:
    """Owns every classic consumer group of this broker."""

    def __init__(
        self,
        *,
        initial_rebalance_delay_ms: int = 0,
        max_group_size: int = 1000,
        min_session_timeout_ms: int = 1000,
        max_session_timeout_ms: int = 1_800_000,
        new_member_join_timeout_ms: int = 300_000,
        member_id_factory: Callable[[str], str] | None = None,
    ) -> None:
        if initial_rebalance_delay_ms < 0 or new_member_join_timeout_ms < 0:
            raise ValueError("group delays and timeouts must not be negative")
        if max_group_size < 1:
            raise ValueError(f"max_group_size={max_group_size}: a group needs room for one")
        if not 0 <= min_session_timeout_ms <= max_session_timeout_ms:
            raise ValueError("need 0 <= min_session_timeout_ms <= max_session_timeout_ms")
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self._max_group_size = max_group_size
        # Ids handed out with MEMBER_ID_REQUIRED live for a session timeout even if their
        # client never returns; twice the group size leaves room for a whole group restarting.
        self._pending_member_ids_max = 2 * max_group_size
        self._min_session_timeout_ms = min_session_timeout_ms
        self._max_session_timeout_ms = max_session_timeout_ms
        self._new_member_join_timeout_ms = new_member_join_timeout_ms
        self._new_member_id = member_id_factory or default_member_id
        self._groups: dict[str, ClassicGroup] = {}
        self._waiting: dict[Token, tuple[ClassicGroup, ClassicMember]] = {}
        # Replies caused by calls that cannot return them (leave); see take_replies().
        self._deferred: list[Reply] = []
        self._deferred_at_ms: int | None = None

    # JoinGroup

    def join(self, token: Token, req: JoinRequest, now_ms: int) -> list[Reply]:
        """Handle JoinGroup; the reply to ``token`` may come now or from a later call."""
        assert token is not None
        out: list[Reply] = []
        if not req.group_id:
            out.append(Reply(token, join_error(INVALID_GROUP_ID, req.member_id)))
        elif not (
            self._min_session_timeout_ms <= req.session_timeout_ms <= self._max_session_timeout_ms
        ):
            out.append(Reply(token, join_error(INVALID_SESSION_TIMEOUT, req.member_id)))
        elif not req.member_id:
            self._join_new(token, req, now_ms, out)
        else:
            self._join_known(token, req, now_ms, out)
        return out

    def _join_new(self, token: Token, req: JoinRequest, now_ms: int, out: list[Reply]) -> None:
        group = self._groups.get(req.group_id)
        members = list(group.members.values()) if group else []
        protocol_type = group.protocol_type if group else None
        iid = req.group_instance_id
        static_id = group.static.get(iid) if group and iid is not None else None
        group_full = static_id is None and len(members) >= self._max_group_size
        too_many_pending = (
            iid is None
            and req.require_known_member_id
            and group is not None
            and len(group.pending) >= self._pending_member_ids_max
        )
        error = NONE
        if not supports(members, protocol_type, req, exclude=static_id or ""):
            error = INCONSISTENT_GROUP_PROTOCOL
        elif group_full or too_many_pending:
            error = GROUP_MAX_SIZE_REACHED
        if error != NONE:
            out.append(Reply(token, join_error(error, "")))
            return
        if group is None:
            group = self._groups[req.group_id] = ClassicGroup(req.group_id)
        member_id = self._new_member_id(req.client_id)
        assert member_id and member_id not in group.members and member_id not in group.pending
        if static_id is not None:
            self._replace_static(group, static_id, member_id, token, req, now_ms, out)
        elif iid is None and req.require_known_member_id:
            group.pending[member_id] = now_ms + req.session_timeout_ms
            out.append(Reply(token, join_error(MEMBER_ID_REQUIRED, member_id)))
        else:
            self._add_member(group, member_id, token, req, now_ms, out)

    def _join_known(self, token: Token, req: JoinRequest, now_ms: int, out: list[Reply]) -> None:
        group = self._groups.get(req.group_id)
        if group is None:
            out.append(Reply(token, join_error(UNKNOWN_MEMBER_ID, req.member_id)))
            return
        if req.member_id in group.pending:
            self._join_pending(group, token, req, now_ms, out)
            return
        error = validate_member(group, req.member_id, req.group_instance_id)
        if error == NONE and not supports(
            group.members.values(), group.protocol_type, req, exclude=req.member_id
        ):
            error = INCONSISTENT_GROUP_PROTOCOL
        if error != NONE:
            out.append(Reply(token, join_error(error, req.member_id)))
            return
        member = group.members[req.member_id]
        unchanged = member.protocols == req.protocols
        state = group.state
        if unchanged and (
            state is GroupState.COMPLETING_REBALANCE
            or (state is GroupState.STABLE and member.member_id != group.leader_id)
        ):
            # A retry of a join whose answer was lost, or a follower checking in: no rebalance.
            self._touch(member, req, now_ms)
            out.append(Reply(token, self._current_join_result(group, member)))
            return
        if state is not GroupState.PREPARING_REBALANCE:
            _log.info(
                "rebalance group=%s member=%s reason=%s",
                group.group_id,
                member.member_id,
                req.reason or ("leader rejoined" if unchanged else "metadata changed"),
            )
        self._update_and_rebalance(group, member, token, req, now_ms, out)

    def _join_pending(
        self, group: ClassicGroup, token: Token, req: JoinRequest, now_ms: int, out: list[Reply]
    ) -> None:
        # Forget the pending id first: a rejected joiner must not hold up the rebalance.
        del group.pending[req.member_id]
        error = NONE
        if req.group_instance_id is not None:
            error = UNKNOWN_MEMBER_ID  # pending ids are only for dynamic members
        elif not supports(group.members.values(), group.protocol_type, req, exclude=""):
            error = INCONSISTENT_GROUP_PROTOCOL
        elif len(group.members) >= self._max_group_size:
            error = GROUP_MAX_SIZE_REACHED
        if error != NONE:
            out.append(Reply(token, join_error(error, req.member_id)))
            self._maybe_complete_join(group, now_ms, out)
            return
        self._add_member(group, req.member_id, token, req, now_ms, out)

    def _add_member(
        self,
        group: ClassicGroup,
        member_id: str,
        token: Token,
        req: JoinRequest,
        now_ms: int,
        out: list[Reply],
    ) -> None:
        member = ClassicMember(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            protocols=list(req.protocols),
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_deadline_ms=now_ms + req.session_timeout_ms,
            new_member_deadline_ms=now_ms + self._new_member_join_timeout_ms,
        )
        if not group.members:
            group.protocol_type = req.protocol_type
        group.members[member_id] = member
        if req.group_instance_id is not None:
            group.static[req.group_instance_id] = member_id
        self._wait_join(group, member, token)
        _log.info(
            "member joined group=%s member=%s instance=%s client=%s reason=%s",
            group.group_id,
            member_id,
            req.group_instance_id,
            req.client_id,
            req.reason,
        )
        if group.state is GroupState.PREPARING_REBALANCE:
            group.new_member_added = group.new_member_added or group.initial_delay
        else:
            self._prepare_rebalance(group, now_ms, out)
        self._maybe_complete_join(group, now_ms, out)

    def _replace_static(
        self,
        group: ClassicGroup,
        old_id: str,
        new_id: str,
        token: Token,
        req: JoinRequest,
        now_ms: int,
        out: list[Reply],
    ) -> None:
        """A restarted static member takes over its instance's place; the old id is fenced."""
        member = group.members[old_id]
        if member.join_token is not None:
            self._reply_join(member, join_error(FENCED_INSTANCE_ID, old_id), out)
        if member.sync_token is not None:
            self._reply_sync(member, sync_error(FENCED_INSTANCE_ID), out)
        unchanged = member.protocols == req.protocols
        group.members = {(new_id if k == old_id else k): m for k, m in group.members.items()}
        member.member_id = new_id
        assert req.group_instance_id is not None
        group.static[req.group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        if old_id in group.pending_sync:
            group.pending_sync.discard(old_id)
            group.pending_sync.add(new_id)
        _log.info(
            "static member replaced group=%s instance=%s old=%s new=%s",
            group.group_id,
            req.group_instance_id,
            old_id,
            new_id,
        )
        if group.state is GroupState.STABLE and unchanged:
            # Keep the generation and its assignment. The announced leader id goes back, as
            # Kafka does for clients without skip_assignment, so a restarted leader acts as a
            # follower and fetches its assignment instead of redoing (and losing) everyone's.
            self._touch(member, req, now_ms)
            out.append(Reply(token, self._current_join_result(group, member)))
            return
        # In CompletingRebalance the leader may be assigning under the old id, so rebalance.
        self._update_and_rebalance(group, member, token, req, now_ms, out)

    def _update_and_rebalance(
        self,
        group: ClassicGroup,
        member: ClassicMember,
        token: Token,
        req: JoinRequest,
        now_ms: int,
        out: list[Reply],
    ) -> None:
        if member.join_token is not None:
            # A retried join replaces the one still waiting; the old one is told to rejoin.
            self._reply_join(member, join_error(REBALANCE_IN_PROGRESS, member.member_id), out)
        self._touch(member, req, now_ms)
        member.protocols = list(req.protocols)
        if len(group.members) == 1:
            group.protocol_type = req.protocol_type
        self._wait_join(group, member, token)
        if group.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(group, now_ms, out)
        self._maybe_complete_join(group, now_ms, out)

    def _current_join_result(self, group: ClassicGroup, member: ClassicMember) -> JoinResult:
        is_leader = member.member_id == group.announced_leader_id
        return JoinResult(
            NONE,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            group.announced_leader_id,
            member.member_id,
            self._member_list(group) if is_leader else [],
        )

    @staticmethod
    def _member_list(group: ClassicGroup) -> list[JoinMember]:
        return [
            JoinMember(m.member_id, m.group_instance_id, m.metadata(group.protocol_name))
            for m in group.members.values()
        ]

    @staticmethod
    def _touch(member: ClassicMember, req: JoinRequest, now_ms: int) -> None:
        member.client_id = req.client_id
        member.client_host = req.client_host
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_deadline_ms = now_ms + req.session_timeout_ms

    # Rebalance

    def _prepare_rebalance(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        """Enter PreparingRebalance; members learn of it from heartbeats and waiting syncs."""
        assert group.state is not GroupState.PREPARING_REBALANCE
        if group.state is GroupState.COMPLETING_REBALANCE:
            for member in group.members.values():
                if member.sync_token is not None:
                    self._reply_sync(member, sync_error(REBALANCE_IN_PROGRESS), out)
        group.pending_sync.clear()
        group.sync_deadline_ms = None
        delay_ms = self._initial_rebalance_delay_ms
        if group.state is GroupState.EMPTY and delay_ms > 0:
            # A new group waits briefly so consumers started together share one rebalance.
            group.initial_delay = True
            group.new_member_added = False
            group.initial_remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            group.join_deadline_ms = now_ms + delay_ms
        else:
            group.join_deadline_ms = now_ms + group.rebalance_timeout_ms()
        group.state = GroupState.PREPARING_REBALANCE

    def _maybe_complete_join(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        if (
            group.state is GroupState.PREPARING_REBALANCE
            and not group.initial_delay
            and group.all_joined()
        ):
            self._complete_join(group, now_ms, out)

    def _complete_join(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        """Start the next generation with the members that rejoined.

        Dynamic members that did not rejoin are dropped. Static ones stay, as in Kafka: they
        keep their place until their session expires, so a restart costs no rebalance.
        """
        group.initial_delay = False
        for member in list(group.members.values()):
            if member.join_token is None and member.group_instance_id is None:
                _log.info(
                    "member did not rejoin group=%s member=%s", group.group_id, member.member_id
                )
                self._forget(group, member)
        joined = [m for m in group.members.values() if m.join_token is not None]
        if group.members and not joined:
            # Only absent static members are left: give them another round. The floor keeps a
            # client's zero rebalance timeout from making tick() spin.
            wait_ms = max(group.rebalance_timeout_ms(), self._min_session_timeout_ms, 1)
            group.join_deadline_ms = now_ms + wait_ms
            return
        group.generation_id += 1
        group.join_deadline_ms = None
        if not group.members:
            group.state = GroupState.EMPTY
            group.protocol_name = None
            group.leader_id = None
            group.announced_leader_id = ""
            _log.info("group empty group=%s generation=%d", group.group_id, group.generation_id)
            return
        leader = group.members.get(group.leader_id or "")
        if leader is None or leader.join_token is None:
            group.leader_id = joined[0].member_id
        assert group.leader_id is not None
        group.announced_leader_id = group.leader_id
        group.protocol_name = select_protocol(group.members.values())
        group.state = GroupState.COMPLETING_REBALANCE
        for member in group.members.values():
            member.is_new = False
            member.session_deadline_ms = now_ms + member.session_timeout_ms
            if member.join_token is not None:
                self._reply_join(member, self._current_join_result(group, member), out)
        group.pending_sync = set(group.members)
        group.sync_deadline_ms = now_ms + group.rebalance_timeout_ms()
        _log.info(
            "group stabilizing group=%s generation=%d protocol=%s leader=%s members=%d",
            group.group_id,
            group.generation_id,
            group.protocol_name,
            group.leader_id,
            len(group.members),
        )

    # SyncGroup

    def sync(self, token: Token, req: SyncRequest, now_ms: int) -> list[Reply]:
        """Handle SyncGroup; followers wait until the leader's assignments arrive."""
        assert token is not None
        out: list[Reply] = []
        group = self._groups.get(req.group_id)
        error = self._check_sync(group, req)
        if error != NONE or group is None:
            out.append(Reply(token, sync_error(error)))
            return out
        member = group.members[req.member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is GroupState.PREPARING_REBALANCE:
            out.append(Reply(token, sync_error(REBALANCE_IN_PROGRESS)))
        elif group.state is GroupState.STABLE:
            self._synced(group, member.member_id)
            out.append(
                Reply(
                    token,
                    SyncResult(NONE, group.protocol_type, group.protocol_name, member.assignment),
                )
            )
        elif group.state is GroupState.COMPLETING_REBALANCE:
            if member.sync_token is not None:
                self._reply_sync(member, sync_error(REBALANCE_IN_PROGRESS), out)
            member.sync_token = token
            self._waiting[token] = (group, member)
            self._synced(group, member.member_id)
            if member.member_id == group.leader_id:
                self._assign(group, req.assignments, now_ms, out)
        else:
            out.append(Reply(token, sync_error(UNKNOWN_MEMBER_ID)))
        return out

    @staticmethod
    def _check_sync(group: ClassicGroup | None, req: SyncRequest) -> int:
        if not req.group_id:
            return INVALID_GROUP_ID
        if group is None:
            return UNKNOWN_MEMBER_ID
        error = validate_member(group, req.member_id, req.group_instance_id)
        if error != NONE:
            return error
        if req.generation_id != group.generation_id:
            return ILLEGAL_GENERATION
        if req.protocol_type is not None and req.protocol_type != group.protocol_type:
            return INCONSISTENT_GROUP_PROTOCOL
        if req.protocol_name is not None and req.protocol_name != group.protocol_name:
            return INCONSISTENT_GROUP_PROTOCOL
        return NONE

    def _assign(
        self,
        group: ClassicGroup,
        assignments: list[tuple[str, bytes]],
        now_ms: int,
        out: list[Reply],
    ) -> None:
        """Store the leader's assignments (absent members get none) and answer waiting syncs."""
        given = dict(assignments)
        for member in group.members.values():
            member.assignment = given.get(member.member_id, b"")
        group.state = GroupState.STABLE
        for member in group.members.values():
            if member.sync_token is not None:
                member.session_deadline_ms = now_ms + member.session_timeout_ms
                self._reply_sync(
                    member,
                    SyncResult(NONE, group.protocol_type, group.protocol_name, member.assignment),
                    out,
                )
        _log.info("group stable group=%s generation=%d", group.group_id, group.generation_id)

    @staticmethod
    def _synced(group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            group.sync_deadline_ms = None

    # Heartbeat and LeaveGroup

    def heartbeat(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None,
        now_ms: int,
    ) -> int:
        """Keep a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin."""
        if not group_id:
            return INVALID_GROUP_ID
        group = self._groups.get(group_id)
        if group is None:
            return UNKNOWN_MEMBER_ID
        error = validate_member(group, member_id, group_instance_id)
        if error != NONE:
            return error
        if generation_id != group.generation_id:
            return ILLEGAL_GENERATION
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.state is GroupState.PREPARING_REBALANCE:
            return REBALANCE_IN_PROGRESS
        # CompletingRebalance counts as alive: the member has the new generation and is
        # about to sync (modern Kafka answers NONE here too).
        return NONE

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]], now_ms: int
    ) -> tuple[int, list[tuple[str, str | None, int]]]:
        """Remove members at once (LeaveGroup v3+ batch shape; v0-2 map the single error).

        An empty member id with an instance id removes that static member, as admin tools do.
        """
        if not group_id:
            return INVALID_GROUP_ID, []
        group = self._groups.get(group_id)
        if group is None:
            return NONE, [(mid, iid, UNKNOWN_MEMBER_ID) for mid, iid in members]
        results: list[tuple[str, str | None, int]] = []
        out: list[Reply] = []
        for member_id, instance_id in members:
            error = self._leave_one(group, member_id, instance_id, now_ms, out)
            results.append((member_id, instance_id, error))
        self._defer(out, now_ms)
        return NONE, results

    def _defer(self, replies: list[Reply], now_ms: int) -> None:
        if replies:
            self._deferred.extend(replies)
            if self._deferred_at_ms is None:
                self._deferred_at_ms = now_ms

    def take_replies(self) -> list[Reply]:
        """Replies that ``leave`` caused (it returns only error codes); call right after it.

        A leave can complete a rebalance that other members wait on, and a leaving member's
        own waiting JoinGroup or SyncGroup is answered UNKNOWN_MEMBER_ID. ``tick`` returns
        anything not taken, and ``next_deadline_ms`` reports it as due.
        """
        replies = self._deferred
        self._deferred = []
        self._deferred_at_ms = None
        return replies

    def _leave_one(
        self,
        group: ClassicGroup,
        member_id: str,
        instance_id: str | None,
        now_ms: int,
        out: list[Reply],
    ) -> int:
        if not member_id:
            current = group.static.get(instance_id) if instance_id is not None else None
            if current is None:
                return UNKNOWN_MEMBER_ID
            member_id = current
        elif member_id in group.pending:
            del group.pending[member_id]
            self._maybe_complete_join(group, now_ms, out)
            return NONE
        else:
            error = validate_member(group, member_id, instance_id)
            if error != NONE:
                return error
        _log.info("member left group=%s member=%s", group.group_id, member_id)
        self._remove_member(group, group.members[member_id], now_ms, out)
        return NONE

    def _remove_member(
        self, group: ClassicGroup, member: ClassicMember, now_ms: int, out: list[Reply]
    ) -> None:
        """Drop a member and rebalance the rest at once."""
        if member.join_token is not None:
            self._reply_join(member, join_error(UNKNOWN_MEMBER_ID, member.member_id), out)
        if member.sync_token is not None:
            self._reply_sync(member, sync_error(UNKNOWN_MEMBER_ID), out)
        self._forget(group, member)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, now_ms, out)
        self._maybe_complete_join(group, now_ms, out)

    @staticmethod
    def _forget(group: ClassicGroup, member: ClassicMember) -> None:
        assert member.join_token is None and member.sync_token is None
        del group.members[member.member_id]
        iid = member.group_instance_id
        if iid is not None and group.static.get(iid) == member.member_id:
            del group.static[iid]
        group.pending_sync.discard(member.member_id)
        if group.leader_id == member.member_id:
            group.leader_id = next(iter(group.members), None)

    # Time and cancellation

    def tick(self, now_ms: int) -> list[Reply]:
        """Expire sessions, pending ids, rebalance and sync deadlines, initial delays."""
        out = self.take_replies()
        for group in list(self._groups.values()):
            self._expire_pending(group, now_ms, out)
            self._expire_members(group, now_ms, out)
            self._expire_join(group, now_ms, out)
            self._expire_sync(group, now_ms, out)
        return out

    def next_deadline_ms(self) -> int | None:
        """The earliest time ``tick`` has work; linear, as groups hold at most a few thousand."""
        deadlines: list[int] = []
        if self._deferred_at_ms is not None:
            deadlines.append(self._deferred_at_ms)
        for group in self._groups.values():
            deadlines.extend(group.pending.values())
            deadlines.extend(
                d for d in (m.deadline_ms() for m in group.members.values()) if d is not None
            )
            if group.state is GroupState.PREPARING_REBALANCE and group.join_deadline_ms is not None:
                deadlines.append(group.join_deadline_ms)
            if group.sync_deadline_ms is not None:
                deadlines.append(group.sync_deadline_ms)
        return min(deadlines, default=None)

    def _expire_pending(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        expired = [mid for mid, deadline in group.pending.items() if deadline <= now_ms]
        for member_id in expired:
            del group.pending[member_id]
        if expired:
            self._maybe_complete_join(group, now_ms, out)

    def _expire_members(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        for member in list(group.members.values()):
            deadline = member.deadline_ms()
            if (
                group.members.get(member.member_id) is member
                and deadline is not None
                and deadline <= now_ms
            ):
                _log.info("session expired group=%s member=%s", group.group_id, member.member_id)
                self._remove_member(group, member, now_ms, out)

    def _expire_join(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        if (
            group.state is not GroupState.PREPARING_REBALANCE
            or group.join_deadline_ms is None
            or group.join_deadline_ms > now_ms
        ):
            return
        if group.initial_delay and group.new_member_added and group.initial_remaining_ms > 0:
            # Members are still arriving: wait another delay, up to the rebalance timeout.
            step_ms = min(self._initial_rebalance_delay_ms, group.initial_remaining_ms)
            group.initial_remaining_ms -= step_ms
            group.new_member_added = False
            group.join_deadline_ms = now_ms + step_ms
            return
        self._complete_join(group, now_ms, out)

    def _expire_sync(self, group: ClassicGroup, now_ms: int, out: list[Reply]) -> None:
        if group.sync_deadline_ms is None or group.sync_deadline_ms > now_ms:
            return
        group.sync_deadline_ms = None
        for member_id in list(group.pending_sync):
            member = group.members.get(member_id)
            if member is not None:
                _log.info("no SyncGroup group=%s member=%s", group.group_id, member_id)
                self._remove_member(group, member, now_ms, out)

    def cancel(self, token: Token) -> None:
        """The connection of a waiting request closed: the member counts as not rejoined.

        Its session runs again from its last request, so a client that does not come back is
        removed by ``tick`` after one session timeout, or earlier by the rebalance timeout.
        """
        entry = self._waiting.pop(token, None)
        if entry is None:
            return
        _, member = entry
        if member.join_token is token:
            member.join_token = None
        elif member.sync_token is token:
            member.sync_token = None

    def _wait_join(self, group: ClassicGroup, member: ClassicMember, token: Token) -> None:
        assert member.join_token is None
        member.join_token = token
        self._waiting[token] = (group, member)

    def _reply_join(self, member: ClassicMember, result: JoinResult, out: list[Reply]) -> None:
        token = member.join_token
        assert token is not None
        member.join_token = None
        del self._waiting[token]
        out.append(Reply(token, result))

    def _reply_sync(self, member: ClassicMember, result: SyncResult, out: list[Reply]) -> None:
        token = member.sync_token
        assert token is not None
        member.sync_token = None
        del self._waiting[token]
        out.append(Reply(token, result))

    # DescribeGroups, ListGroups, DeleteGroups, OffsetCommit support

    def describe(self, group_id: str) -> GroupDescription:
        """Describe a group; unknown groups are "Dead" with no error, like Kafka."""
        if not group_id:
            return GroupDescription(INVALID_GROUP_ID, group_id, "", "", "", [])
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(NONE, group_id, GroupState.DEAD.value, "", "", [])
        stable = group.state is GroupState.STABLE
        members = [
            MemberDescription(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.metadata(group.protocol_name) if stable else b"",
                m.assignment if stable else b"",
            )
            for m in group.members.values()
        ]
        return GroupDescription(
            NONE,
            group_id,
            group.state.value,
            group.protocol_type or "",
            (group.protocol_name or "") if stable else "",
            members,
        )

    def list_groups(self) -> list[tuple[str, str, str]]:
        """(group_id, protocol_type, state) for every group this coordinator knows."""
        return [(g.group_id, g.protocol_type or "", g.state.value) for g in self._groups.values()]

    def delete_group(self, group_id: str) -> int:
        """Forget an Empty group; groups with members (or mid-rebalance) are refused."""
        if not group_id:
            return INVALID_GROUP_ID
        group = self._groups.get(group_id)
        if group is None:
            return GROUP_ID_NOT_FOUND
        if group.members or group.state is not GroupState.EMPTY:
            return NON_EMPTY_GROUP
        del self._groups[group_id]
        return NONE

    def has_group(self, group_id: str) -> bool:
        return group_id in self._groups

    def forget_if_empty(self, group_id: str) -> None:
        """An Empty group is taken over by the consumer protocol, as Kafka converts it."""
        group = self._groups.get(group_id)
        if group is not None and group.state is GroupState.EMPTY and not group.members:
            del self._groups[group_id]

    def is_empty(self, group_id: str) -> bool:
        """True if the group is unknown or Empty: offsets may then be committed without members."""
        group = self._groups.get(group_id)
        return group is None or group.state is GroupState.EMPTY

    def generation(self, group_id: str) -> tuple[int, set[str]]:
        """Generation id and member ids for OffsetCommit checks; (-1, set()) when unknown."""
        group = self._groups.get(group_id)
        if group is None:
            return -1, set()
        return group.generation_id, set(group.members)
