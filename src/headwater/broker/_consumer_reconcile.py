"""Reconciliation: one member's next current assignment on the way to its target (KIP-848).

A pure function, Kafka's ``CurrentAssignmentBuilder``. The rule that keeps a partition from
having two consumers: a member first revokes what it must give up, staying at its epoch, and
only once it no longer reports those partitions as owned does it move to the target epoch and
receive new ones; a partition still held by another member is withheld ("unreleased") until
that member has let it go.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from headwater.broker._consumer_types import Assignment, ConsumerMember, MemberState

__all__ = ["Owned", "Reconciled", "reconcile"]

Owned = tuple[tuple[uuid.UUID, tuple[int, ...]], ...] | None
"""Partitions the member reports owning; None means "unchanged" and counts as still owning."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    """The member's next state, epoch and current assignment."""

    state: MemberState
    member_epoch: int
    assigned: dict[uuid.UUID, frozenset[int]]
    pending_revocation: dict[uuid.UUID, frozenset[int]]


def reconcile(
    member: ConsumerMember,
    target_epoch: int,
    target: Assignment,
    owned: Owned,
    held_by_other: Callable[[uuid.UUID, int], bool],
    subscribed: frozenset[uuid.UUID],
    subscription_changed: bool,
) -> Reconciled | None:
    """The member's next step, or None when it stays as it is."""
    state = member.state
    if state is MemberState.STABLE:
        if member.member_epoch != target_epoch:
            return _next(
                member, member.member_epoch, target_epoch, target, owned, held_by_other, subscribed
            )
        return _drop_unsubscribed(member, owned, subscribed) if subscription_changed else None
    if state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(owned, member.pending_revocation):
            return _drop_unsubscribed(member, owned, subscribed) if subscription_changed else None
        return _next(
            member, member.member_epoch, target_epoch, target, owned, held_by_other, subscribed
        )
    return _next(
        member, member.member_epoch, target_epoch, target, owned, held_by_other, subscribed
    )


def _owns_any(owned: Owned, partitions: Assignment) -> bool:
    if owned is None:
        return True
    return any(p in partitions.get(topic, ()) for topic, ps in owned for p in ps)


def _next(
    member: ConsumerMember,
    member_epoch: int,
    target_epoch: int,
    target: Assignment,
    owned: Owned,
    held_by_other: Callable[[uuid.UUID, int], bool],
    subscribed: frozenset[uuid.UUID],
) -> Reconciled:
    assigned: dict[uuid.UUID, frozenset[int]] = {}
    revoking: dict[uuid.UUID, frozenset[int]] = {}
    granting: dict[uuid.UUID, frozenset[int]] = {}
    unreleased = False
    for topic in _topics(target, member.assigned):
        wanted = target.get(topic, frozenset()) if topic in subscribed else frozenset()
        current = member.assigned.get(topic, frozenset())
        keep = current & wanted
        own_pending = member.pending_revocation.get(topic, frozenset())
        free = {p for p in wanted - keep if p in own_pending or not held_by_other(topic, p)}
        unreleased = unreleased or len(free) < len(wanted - keep)
        _put(assigned, topic, keep)
        _put(revoking, topic, current - keep)
        _put(granting, topic, frozenset(free))
    if revoking and _owns_any(owned, revoking):
        return Reconciled(MemberState.UNREVOKED_PARTITIONS, member_epoch, assigned, revoking)
    for topic, partitions in granting.items():
        assigned[topic] = assigned.get(topic, frozenset()) | partitions
    next_state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return Reconciled(next_state, target_epoch, assigned, {})


def _drop_unsubscribed(
    member: ConsumerMember, owned: Owned, subscribed: frozenset[uuid.UUID]
) -> Reconciled | None:
    """After a subscription change, give up unsubscribed topics without waiting for a target."""
    dropped = {t: ps for t, ps in member.assigned.items() if t not in subscribed}
    if not dropped:
        return None
    assigned = {t: ps for t, ps in member.assigned.items() if t in subscribed}
    pending = dict(member.pending_revocation)
    for topic, partitions in dropped.items():
        pending[topic] = pending.get(topic, frozenset()) | partitions
    if _owns_any(owned, pending):
        return Reconciled(MemberState.UNREVOKED_PARTITIONS, member.member_epoch, assigned, pending)
    return Reconciled(member.state, member.member_epoch, assigned, dict(member.pending_revocation))


def _topics(*assignments: Assignment) -> list[uuid.UUID]:
    seen: dict[uuid.UUID, None] = {}
    for assignment in assignments:
        seen.update(dict.fromkeys(assignment))
    return list(seen)


def _put(out: dict[uuid.UUID, frozenset[int]], topic: uuid.UUID, parts: Iterable[int]) -> None:
    partitions = frozenset(parts)
    if partitions:
        out[topic] = partitions
