"""Server-side assignors of the consumer group protocol: ``uniform`` and ``range``, as Kafka's.

Pure functions from the members' subscriptions and previous target to the next target. Kafka
iterates hash sets, so its ties fall by hash order; here ties fall by join order and topic
name, which makes every assignment reproducible in tests.

- ``uniform`` (the default) balances partition counts to within one and is sticky: a member
  keeps what it had up to its quota, so a join or leave moves as few partitions as possible.
  When members subscribe to different topics it keeps what it can, hands out the rest to the
  least loaded subscriber (topics with the fewest candidates first) and then evens out loads
  topic by topic, at most 16 rounds, as Kafka's heterogeneous builder does.
- ``range`` gives each subscriber a contiguous range of every topic, static members first by
  instance id and then dynamic ones by member id, so equally partitioned topics are
  co-partitioned (the same member gets partition N of each).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from headwater.broker._consumer_types import Assignment

__all__ = ["ASSIGNORS", "AssignorFn", "MemberSpec", "assign_range", "assign_uniform"]

# Rounds of the heterogeneous balancing pass; each roughly halves the imbalance (Kafka's bound).
BALANCE_ROUNDS_MAX = 16


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """A member as an assignor sees it: existing subscribed topics and its previous target."""

    member_id: str
    instance_id: str | None
    topics: frozenset[uuid.UUID]
    current: Assignment


TargetAssignment = dict[str, dict[uuid.UUID, frozenset[int]]]
AssignorFn = Callable[
    [Sequence[MemberSpec], Mapping[uuid.UUID, int], Mapping[uuid.UUID, str]], TargetAssignment
]


def assign_uniform(
    members: Sequence[MemberSpec], counts: Mapping[uuid.UUID, int], names: Mapping[uuid.UUID, str]
) -> TargetAssignment:
    """Balanced and sticky; see the module docstring."""
    if not members:
        return {}
    first = members[0].topics
    if all(m.topics == first for m in members):
        return _uniform_homogeneous(members, counts, names)
    return _uniform_heterogeneous(members, counts, names)


def _uniform_homogeneous(
    members: Sequence[MemberSpec], counts: Mapping[uuid.UUID, int], names: Mapping[uuid.UUID, str]
) -> TargetAssignment:
    topics = sorted(members[0].topics, key=lambda t: names.get(t, ""))
    total = sum(counts[t] for t in topics)
    min_quota, extra = divmod(total, len(members))
    taken: set[tuple[uuid.UUID, int]] = set()
    result: TargetAssignment = {}
    unfilled: list[tuple[str, int]] = []
    released: list[tuple[uuid.UUID, int]] = []
    for member in members:
        quota = min_quota + (1 if extra > 0 else 0)
        extra -= 1 if extra > 0 else 0
        kept: dict[uuid.UUID, frozenset[int]] = {}
        for topic in topics:
            valid = sorted(
                p
                for p in member.current.get(topic, ())
                if p < counts[topic] and (topic, p) not in taken
            )
            keep = valid[:quota]
            quota -= len(keep)
            released.extend((topic, p) for p in valid[len(keep) :])
            taken.update((topic, p) for p in keep)
            if keep:
                kept[topic] = frozenset(keep)
        result[member.member_id] = kept
        if quota > 0:
            unfilled.append((member.member_id, quota))
    free = [(t, p) for t in topics for p in range(counts[t]) if (t, p) not in taken]
    free_set = set(free)
    free.extend(tp for tp in released if tp not in free_set)
    index = 0
    for member_id, quota in unfilled:
        grant = free[index : index + quota]
        index += len(grant)
        _add(result[member_id], grant)
    assert index == len(free), "quotas add up to the partition count"
    return result


def _add(assignment: dict[uuid.UUID, frozenset[int]], grant: list[tuple[uuid.UUID, int]]) -> None:
    for topic, partition in grant:
        assignment[topic] = assignment.get(topic, frozenset()) | {partition}


def _uniform_heterogeneous(
    members: Sequence[MemberSpec], counts: Mapping[uuid.UUID, int], names: Mapping[uuid.UUID, str]
) -> TargetAssignment:
    subscribers: dict[uuid.UUID, list[int]] = {}
    for index, member in enumerate(members):
        for topic in member.topics:
            subscribers.setdefault(topic, []).append(index)
    load = [0] * len(members)
    # held[topic][member index] = partitions of that topic the member has in the new target
    held: dict[uuid.UUID, dict[int, set[int]]] = {t: {} for t in subscribers}
    owned = _keep_current(members, counts, held, load)

    def order(topic: uuid.UUID) -> tuple[float, int, str]:
        subs = len(subscribers[topic])
        return (-counts[topic] / subs, subs, names.get(topic, ""))

    topics = sorted(subscribers, key=order)
    for topic in topics:
        for p in range(counts[topic]):
            if (topic, p) not in owned:
                target = min(subscribers[topic], key=lambda i: (load[i], i))
                held[topic].setdefault(target, set()).add(p)
                load[target] += 1
    for _ in range(BALANCE_ROUNDS_MAX):
        if not any(_balance_topic(held[t], subscribers[t], load) for t in topics):
            break
    result: TargetAssignment = {m.member_id: {} for m in members}
    for topic, by_member in held.items():
        for index, partitions in by_member.items():
            if partitions:
                result[members[index].member_id][topic] = frozenset(partitions)
    return result


def _keep_current(
    members: Sequence[MemberSpec],
    counts: Mapping[uuid.UUID, int],
    held: dict[uuid.UUID, dict[int, set[int]]],
    load: list[int],
) -> set[tuple[uuid.UUID, int]]:
    """Stickiness: every member keeps what it had of topics it still subscribes to."""
    owned: set[tuple[uuid.UUID, int]] = set()
    for index, member in enumerate(members):
        for topic, partitions in member.current.items():
            if topic not in member.topics:
                continue
            for p in partitions:
                if p < counts[topic] and (topic, p) not in owned:
                    owned.add((topic, p))
                    held[topic].setdefault(index, set()).add(p)
                    load[index] += 1
    return owned


def _balance_topic(held: dict[int, set[int]], subscribers: list[int], load: list[int]) -> bool:
    """Move partitions of one topic from its most to its least loaded subscriber; any moved?"""
    if len(subscribers) < 2:
        return False
    moved = False
    while True:
        least = min(subscribers, key=lambda i: (load[i], i))
        donors = [i for i in subscribers if held.get(i) and load[i] > load[least] + 1]
        if not donors:
            return moved
        most = max(donors, key=lambda i: (load[i], -i))
        partition = max(held[most])
        held[most].discard(partition)
        held.setdefault(least, set()).add(partition)
        load[most] -= 1
        load[least] += 1
        moved = True


def assign_range(
    members: Sequence[MemberSpec], counts: Mapping[uuid.UUID, int], names: Mapping[uuid.UUID, str]
) -> TargetAssignment:
    """Contiguous ranges per topic; see the module docstring."""
    ordered = sorted(
        members, key=lambda m: (m.instance_id is None, m.instance_id or "", m.member_id)
    )
    subscribers: dict[uuid.UUID, int] = {}
    for member in ordered:
        for topic in member.topics:
            subscribers[topic] = subscribers.get(topic, 0) + 1
    quotas = {t: list(divmod(counts[t], n)) for t, n in subscribers.items()}
    next_start = dict.fromkeys(subscribers, 0)
    result: TargetAssignment = {}
    for member in ordered:
        assignment: dict[uuid.UUID, frozenset[int]] = {}
        for topic in sorted(member.topics, key=lambda t: names.get(t, "")):
            quota_extra = quotas[topic]
            quota = quota_extra[0] + (1 if quota_extra[1] > 0 else 0)
            quota_extra[1] -= 1 if quota_extra[1] > 0 else 0
            start = next_start[topic]
            end = min(start + quota, counts[topic])
            next_start[topic] = end
            if start < end:
                assignment[topic] = frozenset(range(start, end))
        result[member.member_id] = assignment
    return result


ASSIGNORS: dict[str, AssignorFn] = {"uniform": assign_uniform, "range": assign_range}
