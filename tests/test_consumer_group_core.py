"""The KIP-848 consumer group core, driven with plain ``now_ms`` ints and no sockets."""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import Callable

import pytest

from headwater.broker._consumer_assignors import MemberSpec, assign_range, assign_uniform
from headwater.broker._consumer_coordinator import ConsumerGroupCoordinator
from headwater.broker._consumer_types import (
    ConsumerGroupSettings,
    HeartbeatRequest,
    HeartbeatResult,
    TopicMeta,
)
from headwater.broker._group_coordinator import GroupCoordinator, JoinRequest, JoinResult
from headwater.broker._group_errors import (
    FENCED_INSTANCE_ID,
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
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
from headwater.broker._topic_regex import PATTERN_CHARS_MAX, RegexError, compile_regex

SESSION_MS = 10_000
HEARTBEAT_MS = 1_000
REBALANCE_MS = 30_000
T1 = uuid.UUID(int=1)
T2 = uuid.UUID(int=2)
T3 = uuid.UUID(int=3)
NAMES = {T1: "t1", T2: "t2", T3: "t3"}

Owned = tuple[tuple[uuid.UUID, tuple[int, ...]], ...]


def settings(**kwargs: object) -> ConsumerGroupSettings:
    base: dict[str, object] = {
        "session_timeout_ms": SESSION_MS,
        "heartbeat_interval_ms": HEARTBEAT_MS,
    }
    base.update(kwargs)
    return ConsumerGroupSettings(**base)  # type: ignore[arg-type]


def topics(**counts: int) -> dict[str, TopicMeta]:
    ids = {"t1": T1, "t2": T2, "t3": T3}
    return {name: TopicMeta(ids.get(name, uuid.uuid5(T1, name)), n) for name, n in counts.items()}


def make(partitions: int = 6, **kwargs: object) -> ConsumerGroupCoordinator:
    ids = itertools.count(1)
    core = ConsumerGroupCoordinator(settings(**kwargs), member_id_factory=lambda: f"m{next(ids)}")
    core.update_topics(topics(t1=partitions))
    return core


def join(
    core: ConsumerGroupCoordinator,
    member_id: str,
    now_ms: int = 0,
    *,
    names: tuple[str, ...] | None = ("t1",),
    regex: str | None = None,
    instance: str | None = None,
    assignor: str | None = None,
    group: str = "g",
) -> HeartbeatResult:
    return core.heartbeat(
        HeartbeatRequest(
            group_id=group,
            member_id=member_id,
            member_epoch=0,
            instance_id=instance,
            rebalance_timeout_ms=REBALANCE_MS,
            subscribed_topic_names=names,
            subscribed_topic_regex=regex,
            server_assignor=assignor,
            owned=(),
            client_id="c",
            client_host="/127.0.0.1",
        ),
        now_ms,
    )


def beat(
    core: ConsumerGroupCoordinator,
    member_id: str,
    epoch: int,
    owned: Owned | None,
    now_ms: int = 0,
    *,
    instance: str | None = None,
    names: tuple[str, ...] | None = None,
    regex: str | None = None,
) -> HeartbeatResult:
    return core.heartbeat(
        HeartbeatRequest(
            group_id="g",
            member_id=member_id,
            member_epoch=epoch,
            instance_id=instance,
            subscribed_topic_names=names,
            subscribed_topic_regex=regex,
            owned=owned,
        ),
        now_ms,
    )


def parts(result: HeartbeatResult, topic: uuid.UUID = T1) -> set[int]:
    assert result.assignment is not None
    return set(result.assignment.get(topic, ()))


class Client:
    """A well-behaved member: revokes at once and reports exactly what it owns."""

    def __init__(self, core: ConsumerGroupCoordinator, member_id: str) -> None:
        self.core = core
        self.member_id = member_id
        self.epoch = 0
        self.owned: dict[uuid.UUID, set[int]] = {}

    def owned_wire(self) -> Owned:
        return tuple((t, tuple(sorted(ps))) for t, ps in sorted(self.owned.items()) if ps)

    def start(self, now_ms: int = 0, **kwargs: object) -> HeartbeatResult:
        result = join(self.core, self.member_id, now_ms, **kwargs)  # type: ignore[arg-type]
        self.apply(result)
        return result

    def step(self, now_ms: int = 0) -> HeartbeatResult:
        result = beat(self.core, self.member_id, self.epoch, self.owned_wire(), now_ms)
        self.apply(result)
        return result

    def apply(self, result: HeartbeatResult) -> None:
        assert result.error_code == NONE, result
        self.epoch = result.member_epoch
        if result.assignment is not None:
            self.owned = {t: set(ps) for t, ps in result.assignment.items()}


def settle(clients: list[Client], now_ms: int = 0, rounds: int = 10) -> None:
    for _ in range(rounds):
        for client in clients:
            client.step(now_ms)


def assert_exclusive(clients: list[Client]) -> None:
    seen: set[tuple[uuid.UUID, int]] = set()
    for client in clients:
        for topic, partitions in client.owned.items():
            for p in partitions:
                assert (topic, p) not in seen, f"{(topic, p)} owned twice"
                seen.add((topic, p))


# Joining, epochs and reconciliation


def test_first_member_gets_everything_and_epoch_1() -> None:
    core = make()
    result = join(core, "a")
    assert (result.error_code, result.member_id, result.member_epoch) == (NONE, "a", 1)
    assert result.heartbeat_interval_ms == HEARTBEAT_MS
    assert parts(result) == set(range(6))
    described = core.describe("g")
    assert (described.state, described.group_epoch, described.assignment_epoch) == ("Stable", 1, 1)


def test_v0_member_id_is_generated_by_the_coordinator() -> None:
    core = make()
    request = HeartbeatRequest(
        "g", "", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t1",), owned=(), version=0
    )
    result = core.heartbeat(request, 0)
    assert result.error_code == NONE and result.member_id == "m1"
    v1 = HeartbeatRequest("g", "", 0, rebalance_timeout_ms=1, subscribed_topic_names=(), owned=())
    assert core.heartbeat(v1, 0).error_code == INVALID_REQUEST


def test_second_member_waits_for_revocation_before_assignment() -> None:
    core = make()
    a = Client(core, "a")
    a.start()
    b = Client(core, "b")
    first = b.start()
    # a still owns everything: b moves to epoch 2 but is given nothing yet.
    assert first.member_epoch == 2 and parts(first) == set()
    assert core.describe("g").state == "Reconciling"
    revoke = a.step()
    assert revoke.member_epoch == 1 and len(parts(revoke)) == 3  # still epoch 1 while revoking
    # b asks before a confirmed: the partitions are still a's.
    assert b.step().assignment is None
    done = a.step()
    assert done.member_epoch == 2 and done.assignment is None
    granted = b.step()
    assert granted.member_epoch == 2 and parts(granted) == set(range(6)) - a.owned[T1]
    assert_exclusive([a, b])
    assert core.describe("g").state == "Stable"


def test_missing_owned_partitions_count_as_still_owned() -> None:
    core = make()
    a = Client(core, "a")
    a.start()
    Client(core, "b").start()
    a.step()
    # None ("unchanged since last time") cannot confirm the revocation.
    assert beat(core, "a", 1, None).member_epoch == 1


def test_three_members_leave_one_by_one_without_double_ownership() -> None:
    core = make(partitions=7)
    clients = [Client(core, m) for m in "abc"]
    for client in clients:
        client.start()
        settle(clients[: clients.index(client) + 1])
        assert_exclusive(clients)
    assert sorted(len(c.owned.get(T1, ())) for c in clients) == [2, 2, 3]
    leave = beat(core, "b", -1, None)
    assert (leave.error_code, leave.member_epoch) == (NONE, -1)
    rest = [clients[0], clients[2]]
    settle(rest)
    assert_exclusive(rest)
    assert set().union(*(c.owned[T1] for c in rest)) == set(range(7))


def test_uniform_is_sticky_when_a_member_joins() -> None:
    core = make(partitions=6)
    a, b = Client(core, "a"), Client(core, "b")
    a.start()
    b.start()
    settle([a, b])
    before = {c.member_id: set(c.owned[T1]) for c in (a, b)}
    c = Client(core, "c")
    c.start()
    settle([a, b, c])
    assert all(set(x.owned[T1]) <= before[x.member_id] for x in (a, b))
    assert len(c.owned[T1]) == 2


def test_lost_response_is_accepted_with_previous_epoch() -> None:
    core = make()
    a = Client(core, "a")
    a.start()
    b = Client(core, "b")
    b.start()
    a.step()
    a.step()  # a at epoch 2 now
    # The reply carrying epoch 2 was lost: a retries with epoch 1 and a subset of its partitions.
    retry = beat(core, "a", 1, a.owned_wire())
    assert retry.error_code == NONE and retry.member_epoch == 2


def test_fencing_wrong_epochs() -> None:
    core = make()
    a = Client(core, "a")
    a.start()
    assert beat(core, "a", 5, None).error_code == FENCED_MEMBER_EPOCH
    Client(core, "b").start()
    a.step()
    a.step()
    # Older than the previous epoch, or claiming partitions it was never given.
    assert beat(core, "a", 0 + 1, ((T1, (0, 1, 2, 3, 4, 5)),)).error_code == FENCED_MEMBER_EPOCH
    assert beat(core, "zz", 1, None).error_code == UNKNOWN_MEMBER_ID
    # A fenced member rejoins with epoch 0 and gets its assignment back in full.
    rejoin = join(core, "a")
    assert rejoin.error_code == NONE and rejoin.assignment is not None


def test_unknown_group_and_leave_errors() -> None:
    core = make()
    assert beat(core, "a", 3, None).error_code == UNKNOWN_MEMBER_ID
    assert beat(core, "a", -1, None).error_code == GROUP_ID_NOT_FOUND
    join(core, "a")
    assert beat(core, "nobody", -1, None).error_code == UNKNOWN_MEMBER_ID
    assert beat(core, "a", -2, None).error_code == INVALID_REQUEST  # -2 needs an instance id


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        ({"group_id": " "}, INVALID_REQUEST),
        ({"member_id": ""}, INVALID_REQUEST),
        ({"instance_id": ""}, INVALID_REQUEST),
        ({"rack_id": " "}, INVALID_REQUEST),
        ({"rebalance_timeout_ms": -1}, INVALID_REQUEST),
        ({"owned": None}, INVALID_REQUEST),
        ({"owned": ((T1, (0,)),)}, INVALID_REQUEST),
        ({"subscribed_topic_names": None}, INVALID_REQUEST),
        ({"member_epoch": -3}, INVALID_REQUEST),
        ({"rebalance_timeout_ms": -5}, INVALID_REQUEST),
        ({"server_assignor": "sticky"}, UNSUPPORTED_ASSIGNOR),
        ({"subscribed_topic_regex": "(a"}, INVALID_REGULAR_EXPRESSION),
        ({"subscribed_topic_regex": "(a)\\1"}, INVALID_REGULAR_EXPRESSION),
    ],
)
def test_invalid_requests_get_kafka_errors(request_kwargs: dict[str, object], error: int) -> None:
    core = make()
    fields: dict[str, object] = {
        "group_id": "g",
        "member_id": "a",
        "member_epoch": 0,
        "rebalance_timeout_ms": REBALANCE_MS,
        "subscribed_topic_names": ("t1",),
        "owned": (),
    }
    fields.update(request_kwargs)
    result = core.heartbeat(HeartbeatRequest(**fields), 0)  # type: ignore[arg-type]
    assert result.error_code == error and result.error_message
    assert result.member_epoch == 0 and result.assignment is None


def test_group_max_size_is_reached() -> None:
    core = make(max_size=2)
    assert join(core, "a").error_code == NONE
    assert join(core, "b").error_code == NONE
    assert join(core, "c").error_code == GROUP_MAX_SIZE_REACHED
    assert join(core, "a").error_code == NONE  # a member already in is never refused


# Time: sessions and revocation deadlines


def test_session_expiry_fences_and_reassigns() -> None:
    core = make()
    a, b = Client(core, "a"), Client(core, "b")
    a.start(0)
    b.start(0)
    settle([a, b], 0)
    assert core.next_deadline_ms() == SESSION_MS
    a.step(SESSION_MS - 1)
    core.tick(SESSION_MS)
    assert [m.member_id for m in core.describe("g").members] == ["a"]
    a.step(SESSION_MS)
    assert a.owned[T1] == set(range(6))


def test_member_that_never_revokes_is_fenced_after_rebalance_timeout() -> None:
    core = make()
    a = Client(core, "a")
    a.start(0)
    b = Client(core, "b")
    b.start(0)
    revoke = beat(core, "a", 1, a.owned_wire(), 100)
    assert revoke.member_epoch == 1
    for now in range(5_000, REBALANCE_MS + 1, 5_000):
        beat(core, "a", 1, a.owned_wire(), now)  # alive, but never lets go
        b.step(now)
    assert core.next_deadline_ms() == 100 + REBALANCE_MS
    core.tick(100 + REBALANCE_MS)
    assert [m.member_id for m in core.describe("g").members] == ["b"]
    assert beat(core, "a", 1, None, 100 + REBALANCE_MS).error_code == UNKNOWN_MEMBER_ID


# Static membership


def test_static_member_restart_keeps_partitions() -> None:
    core = make()
    a = Client(core, "a1")
    a.start(instance="i-a")
    b = Client(core, "b")
    b.start()
    settle([a, b])
    kept = set(a.owned[T1])
    epoch_before = core.describe("g").group_epoch
    left = beat(core, "a1", a.epoch, None, instance="i-a", names=None)
    assert beat(core, "a1", -2, None, instance="i-a").member_epoch == -2 and left.error_code == 0
    # While it is away nobody else gets its partitions and the group epoch does not move.
    b.step()
    assert core.describe("g").group_epoch == epoch_before and not (kept & b.owned[T1])
    again = join(core, "a2", instance="i-a")
    assert again.error_code == NONE and parts(again) == kept
    assert again.member_epoch == core.describe("g").assignment_epoch


def test_static_member_errors() -> None:
    core = make()
    join(core, "a1", instance="i-a")
    assert join(core, "a2", instance="i-a").error_code == UNRELEASED_INSTANCE_ID
    assert beat(core, "a2", 1, None, instance="i-a").error_code == FENCED_INSTANCE_ID
    assert beat(core, "a1", 1, None, instance="i-b").error_code == UNKNOWN_MEMBER_ID
    assert beat(core, "a2", -2, None, instance="i-a").error_code == FENCED_INSTANCE_ID
    # -1 with an instance id leaves for good: the instance can be taken at once.
    assert beat(core, "a1", -1, None, instance="i-a").member_epoch == -1
    assert join(core, "a2", instance="i-a").error_code == NONE


def test_static_member_that_does_not_return_expires() -> None:
    core = make()
    join(core, "a1", 0, instance="i-a")
    beat(core, "a1", -2, None, 10, instance="i-a")
    core.tick(SESSION_MS)
    assert core.describe("g").members == []
    assert join(core, "a2", SESSION_MS, instance="i-a").error_code == NONE


# Topic metadata and subscriptions


def test_new_partitions_start_a_new_target() -> None:
    core = make(partitions=2)
    a = Client(core, "a")
    a.start()
    epoch = core.describe("g").group_epoch
    core.update_topics(topics(t1=4))
    assert core.describe("g").group_epoch == epoch + 1
    a.step()
    assert a.owned[T1] == {0, 1, 2, 3}


def test_regex_subscription_follows_new_topics() -> None:
    core = make()
    a = Client(core, "a")
    a.start(names=None, regex="t[0-9]")
    assert set(a.owned) == {T1}
    core.update_topics(topics(t1=6, t2=2, other=3))
    a.step()
    assert set(a.owned) == {T1, T2} and a.owned[T2] == {0, 1}
    core.update_topics(topics(t2=2, other=3))  # t1 deleted
    a.step()
    a.step()
    assert set(a.owned) == {T2}


def test_subscription_change_revokes_unsubscribed_topics() -> None:
    core = make()
    core.update_topics(topics(t1=2, t2=2))
    a = Client(core, "a")
    a.start(names=("t1", "t2"))
    assert set(a.owned) == {T1, T2}
    changed = beat(core, "a", a.epoch, a.owned_wire(), names=("t2",))
    assert changed.assignment is not None and set(changed.assignment) == {T2}
    a.apply(changed)
    a.step()
    assert set(a.owned) == {T2}


def test_regex_and_names_together() -> None:
    core = make()
    core.update_topics(topics(t1=1, t2=1, t3=1))
    a = Client(core, "a")
    a.start(names=("t3",), regex="t1")
    assert set(a.owned) == {T1, T3}


def test_range_assignor_is_chosen_by_members() -> None:
    core = make(partitions=4)
    a, b = Client(core, "a"), Client(core, "b")
    a.start(assignor="range")
    b.start(assignor="range")
    settle([a, b])
    assert core.describe("g").assignor_name == "range"
    assert a.owned[T1] == {0, 1} and b.owned[T1] == {2, 3}


# Assignors


def spec(member_id: str, topics_: set[uuid.UUID], current: dict[uuid.UUID, set[int]] | None = None,
         instance: str | None = None) -> MemberSpec:  # fmt: skip
    cur = {t: frozenset(ps) for t, ps in (current or {}).items()}
    return MemberSpec(member_id, instance, frozenset(topics_), cur)


def test_uniform_homogeneous_balance_and_stickiness() -> None:
    counts = {T1: 5, T2: 2}
    first = assign_uniform([spec("a", {T1, T2}), spec("b", {T1, T2})], counts, NAMES)
    sizes = sorted(sum(len(ps) for ps in a.values()) for a in first.values())
    assert sizes == [3, 4]
    current = {m: {t: set(ps) for t, ps in a.items()} for m, a in first.items()}
    members = [spec(m, {T1, T2}, current[m]) for m in ("a", "b")] + [spec("c", {T1, T2})]
    second = assign_uniform(members, counts, NAMES)
    for m in ("a", "b"):
        for topic, partitions in second[m].items():
            assert partitions <= first[m].get(topic, frozenset())
    assert sorted(sum(len(ps) for ps in a.values()) for a in second.values()) == [2, 2, 3]


def test_uniform_heterogeneous_respects_subscriptions() -> None:
    counts = {T1: 4, T2: 4}
    result = assign_uniform([spec("a", {T1}), spec("b", {T1, T2}), spec("c", {T2})], counts, NAMES)
    assert T2 not in result["a"] and T1 not in result["c"]
    loads = sorted(sum(len(ps) for ps in a.values()) for a in result.values())
    assert loads == [2, 3, 3]
    everything = [(t, p) for a in result.values() for t, ps in a.items() for p in ps]
    assert len(everything) == len(set(everything)) == 8


def test_range_copartitions_and_orders_static_first() -> None:
    counts = {T1: 3, T2: 3}
    result = assign_range(
        [spec("m-b", {T1, T2}), spec("m-a", {T1, T2}, instance="z")], counts, NAMES
    )
    assert result["m-b"] == {T1: frozenset({2}), T2: frozenset({2})}
    assert result["m-a"] == {T1: frozenset({0, 1}), T2: frozenset({0, 1})}


def test_assignors_randomized() -> None:
    seed = int(os.environ.get("HEADWATER_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    for _ in range(200):
        counts = {t: rng.randint(1, 9) for t in (T1, T2, T3)}
        members = [
            spec(f"m{i}", set(rng.sample([T1, T2, T3], rng.randint(1, 3))))
            for i in range(rng.randint(1, 6))
        ]
        for assignor in (assign_uniform, assign_range):
            result = assignor(members, counts, NAMES)
            flat = [(t, p) for a in result.values() for t, ps in a.items() for p in ps]
            assert len(flat) == len(set(flat)), (seed, assignor)
            for m in members:
                assert set(result[m.member_id]) <= m.topics
            wanted = {(t, p) for m in members for t in m.topics for p in range(counts[t])}
            assert set(flat) == wanted, (seed, assignor)


def test_reconciliation_randomized_never_double_assigns() -> None:
    seed = int(os.environ.get("HEADWATER_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    core = make(partitions=12)
    clients: dict[str, Client] = {}
    now = 0
    for step in range(400):
        now += rng.randint(0, 300)
        action = rng.random()
        if action < 0.15 and len(clients) < 6:
            client = Client(core, f"c{step}")
            client.start(now)
            clients[client.member_id] = client
        elif action < 0.22 and clients:
            gone = clients.pop(rng.choice(sorted(clients)))
            assert beat(core, gone.member_id, -1, None, now).member_epoch == -1
        elif clients:
            rng.choice(list(clients.values())).step(now)
        assert_exclusive(list(clients.values()))
    for _ in range(12):
        for client in clients.values():
            client.step(now)
    if clients:
        owned = set().union(*(c.owned.get(T1, set()) for c in clients.values()))
        assert owned == set(range(12)), seed
        assert core.describe("g").state == "Stable"


# Regex engine


def test_regex_engine_matches_python_on_common_subset() -> None:
    import re

    patterns = [r"orders-.*", r"t[0-9]{1,2}", r"(eu|us)\.v[12]?", r"\w+_\d", r"a*?b+", r"^x$"]
    rng = random.Random(7)
    for pattern in patterns:
        ours, theirs = compile_regex(pattern), re.compile(pattern)
        for _ in range(500):
            name = "".join(rng.choice("abeustvorders-._0129x") for _ in range(rng.randint(0, 12)))
            assert ours.matches(name) == bool(theirs.fullmatch(name)), (pattern, name)


def test_regex_engine_bounds() -> None:
    assert not compile_regex("(a+)+$").matches("a" * 249 + "!")  # linear, no backtracking
    with pytest.raises(RegexError):
        compile_regex("a" * (PATTERN_CHARS_MAX + 1))
    with pytest.raises(RegexError):
        compile_regex("(a{1000}){1000}")
    for unsupported in ["(?=a)", "(?i)a", "[[:alpha:]]", "a++", "(?>a)", r"(a)\1"]:
        with pytest.raises(RegexError):
            compile_regex(unsupported)


# The facade: one protocol per group id, offsets


def classic_join(gc: GroupCoordinator, group: str = "g") -> JoinResult:
    replies = gc.join(
        "tok",
        JoinRequest(group, "", None, "consumer", [("range", b"")], 10_000, 10_000, "c", "h", False),
        0,
    )
    result = replies[0].result
    assert isinstance(result, JoinResult)
    return result


def consumer_join(gc: GroupCoordinator, member_id: str, group: str = "g") -> HeartbeatResult:
    return gc.consumer_heartbeat(
        HeartbeatRequest(group, member_id, 0, rebalance_timeout_ms=1000,
                         subscribed_topic_names=("t1",), owned=()),
        0,
    )  # fmt: skip


def facade() -> GroupCoordinator:
    gc = GroupCoordinator(consumer=settings())
    gc.update_topics(topics(t1=2))
    return gc


def test_protocols_do_not_mix_on_one_group_id() -> None:
    gc = facade()
    assert consumer_join(gc, "a").error_code == NONE
    assert classic_join(gc).error_code == INCONSISTENT_GROUP_PROTOCOL
    assert classic_join(gc, "other").error_code == NONE
    assert consumer_join(gc, "b", "other").error_code == GROUP_ID_NOT_FOUND
    listed = sorted(gc.list_groups())
    assert listed == [
        ("g", "consumer", "Stable", "consumer"),
        ("other", "consumer", "CompletingRebalance", "classic"),
    ]
    assert gc.describe("g").error_code == GROUP_ID_NOT_FOUND
    assert gc.consumer_describe("other").error_code == GROUP_ID_NOT_FOUND
    assert gc.delete_group("g") == NON_EMPTY_GROUP


def test_empty_group_is_taken_over_by_the_other_protocol() -> None:
    gc = facade()
    consumer_join(gc, "a")
    gc.consumer_heartbeat(HeartbeatRequest("g", "a", -1), 0)
    assert classic_join(gc).error_code == NONE
    assert gc.group_type("g") == "classic"


def test_offset_commit_and_fetch_with_member_epochs() -> None:
    gc = facade()
    joined = consumer_join(gc, "a")
    epoch = joined.member_epoch
    assert gc.validate_commit("g", "a", epoch, 9) == NONE
    assert gc.validate_commit("g", "a", epoch + 1, 9) == STALE_MEMBER_EPOCH
    assert gc.validate_commit("g", "a", epoch, 8) == UNSUPPORTED_VERSION
    assert gc.validate_commit("g", "a", epoch, 3, transactional=True) == NONE
    assert gc.validate_commit("g", "x", epoch, 9) == UNKNOWN_MEMBER_ID
    assert gc.validate_commit("g", "", -1, 9) == UNKNOWN_MEMBER_ID  # group has members
    assert gc.validate_commit("g", "", -1, 3, transactional=True) == NONE  # names no member
    assert gc.validate_fetch("g", None, -1) == NONE
    assert gc.validate_fetch("g", "a", epoch) == NONE
    assert gc.validate_fetch("g", "a", epoch - 1) == STALE_MEMBER_EPOCH
    gc.consumer_heartbeat(HeartbeatRequest("g", "a", -1), 0)
    assert gc.validate_commit("g", "", -1, 9) == NONE  # empty group: admin commits are fine
    classic = classic_join(gc, "c")
    assert gc.validate_commit("c", classic.member_id, 99, 9) == ILLEGAL_GENERATION


def test_settings_are_validated() -> None:
    bad: list[Callable[[], object]] = [
        lambda: ConsumerGroupCoordinator(settings(max_size=0)),
        lambda: ConsumerGroupCoordinator(settings(assignors=("sticky",))),
        lambda: ConsumerGroupCoordinator(settings(session_timeout_ms=0)),
    ]
    for build in bad:
        with pytest.raises(ValueError):
            build()


def test_commit_with_an_older_epoch_is_judged_per_partition() -> None:
    gc = facade()
    gc.update_topics(topics(t1=4))
    a = consumer_join(gc, "a")  # epoch 1, all four partitions
    owned = ((T1, (0, 1, 2, 3)),)
    gc.consumer_heartbeat(HeartbeatRequest("g", "a", 1, owned=owned), 0)
    consumer_join(gc, "b")
    kept = gc.consumer_heartbeat(HeartbeatRequest("g", "a", 1, owned=owned), 0)
    assert kept.assignment is not None
    kept_parts = set(kept.assignment[T1])
    kept_wire = ((T1, tuple(sorted(kept_parts))),)
    moved = gc.consumer_heartbeat(HeartbeatRequest("g", "a", 1, owned=kept_wire), 0)
    assert (a.member_epoch, moved.member_epoch) == (1, 2)  # revoked, then on to epoch 2
    # A commit still carrying epoch 1 is fine for partitions a held at epoch 1.
    assert gc.validate_commit("g", "a", 1, 9) == NONE
    partition = min(kept_parts)
    assert gc.commit_partition_error("g", "a", 1, "t1", partition) == NONE
    given_back = ({0, 1, 2, 3} - kept_parts).pop()
    assert gc.commit_partition_error("g", "a", 1, "t1", given_back) == STALE_MEMBER_EPOCH
    assert gc.validate_commit("g", "a", moved.member_epoch + 1, 9) == STALE_MEMBER_EPOCH


def test_regex_cache_is_bounded() -> None:
    from headwater.broker._consumer_coordinator import REGEX_CACHE_MAX

    core = make()
    epoch = join(core, "a", names=None, regex="t1").member_epoch
    for i in range(REGEX_CACHE_MAX + 5):
        result = beat(core, "a", epoch, ((T1, tuple(range(6))),), regex=f"t{i}|t1")
        assert result.error_code == NONE
        epoch = result.member_epoch
        assert len(core._regexes) <= REGEX_CACHE_MAX
    assert core.describe("g").members[0].subscribed_topic_regex == f"t{REGEX_CACHE_MAX + 4}|t1"


def test_hostile_regex_does_not_stall_the_coordinator() -> None:
    core = make()
    core.update_topics({"a" * 249: TopicMeta(T2, 1), **topics(t1=1)})
    result = join(core, "a", names=None, regex="(a+)+b")
    assert result.error_code == NONE and result.assignment == {}


def test_regex_dfa_cache_is_bounded() -> None:
    from headwater.broker._topic_regex import DFA_STEPS_MAX

    # The textbook DFA blow-up: 2^13 state sets, far more steps than the cache keeps.
    regex = compile_regex("[ab]*a[ab]{12}")
    rng = random.Random(3)
    sizes: list[int] = []
    for _ in range(400):
        name = "".join(rng.choice("ab") for _ in range(60))
        assert regex.matches(name) == (name[-13] == "a")
        sizes.append(len(regex._steps))
    assert max(sizes) <= DFA_STEPS_MAX
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes)), "cleared"
