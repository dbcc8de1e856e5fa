"""Classic consumer groups, request by request: unknown member ids, illegal generations and
rebalances in progress (Heartbeat, SyncGroup, OffsetCommit), and the states DescribeGroups
shows along a group's life (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead);
and what both describe APIs, DescribeGroups and KIP-848's ConsumerGroupDescribe, answer for
the authorised operations."""

from __future__ import annotations

import struct
import time
import uuid
from typing import Any

from conformance._harness import Connection, Observation, Target, plain, scenario

SESSION_MS = 10_000
# A ConsumerProtocolSubscription v0 with no topics and an empty assignment: valid "consumer"
# protocol bytes, which Kafka's coordinator parses.
SUBSCRIPTION = struct.pack(">hii", 0, 0, -1)
ASSIGNMENT = struct.pack(">hii", 0, 0, -1)


def find_coordinator(t: Target, group: str) -> None:
    """Kafka creates __consumer_offsets on first use: wait until it coordinates ``group``."""
    t.settle(
        10,
        4,
        {"key_type": 0, "coordinator_keys": [group]},
        lambda r: str(plain(r.coordinators[0].error_code)),
    )


def join_body(group: str, member_id: str) -> dict[str, Any]:
    return {
        "group_id": group,
        "session_timeout": SESSION_MS,
        "rebalance_timeout": SESSION_MS,
        "member_id": member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": SUBSCRIPTION}],
    }


def join(conn: Connection, group: str, member_id: str = "") -> dict[str, Any]:
    """JoinGroup v5; a new member first gets MEMBER_ID_REQUIRED and joins again with its id."""
    answer: dict[str, Any] = plain(conn.call(11, 5, join_body(group, member_id)))
    if answer["error_code"] == "MEMBER_ID_REQUIRED":
        answer = plain(conn.call(11, 5, join_body(group, str(answer["member_id"]))))
    return answer


def sync(conn: Connection, group: str, member_id: str, generation: int, leader: bool = True) -> str:
    assignments = [{"member_id": member_id, "assignment": ASSIGNMENT}] if leader else []
    response = conn.call(
        14,
        5,
        {
            "group_id": group,
            "generation_id": generation,
            "member_id": member_id,
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocol_name": "range",
            "assignments": assignments,
        },
    )
    return str(plain(response.error_code))


def heartbeat(conn: Connection, group: str, member_id: str, generation: int) -> str:
    response = conn.call(
        12,
        4,
        {
            "group_id": group,
            "generation_id": generation,
            "member_id": member_id,
            "group_instance_id": None,
        },
    )
    return str(plain(response.error_code))


def commit(t: Target, group: str, member_id: str, generation: int, topic: str) -> str:
    response = t.call(
        8,
        8,
        {
            "group_id": group,
            "generation_id_or_member_epoch": generation,
            "member_id": member_id,
            "group_instance_id": None,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {
                            "partition_index": 0,
                            "committed_offset": 1,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        },
    )
    return str(plain(response.topics[0].partitions[0].error_code))


def leave(t: Target, group: str, *member_ids: str) -> str:
    response = t.call(
        13,
        4,
        {
            "group_id": group,
            "members": [{"member_id": m, "group_instance_id": None} for m in member_ids],
        },
    )
    return str(plain(response.error_code))


def describe(t: Target, group: str, version: int = 5) -> dict[str, Any]:
    """DescribeGroups (v5) of one group: error, state, protocol and the members' count."""
    response = t.call(15, version, {"groups": [group], "include_authorized_operations": False})
    found = plain(response.groups[0])
    return {
        "error_code": found["error_code"],
        "group_state": found["group_state"],
        "protocol_type": found["protocol_type"],
        "protocol_data": found["protocol_data"],
        "members": len(found["members"]),
    }


def stable_member(t: Target, conn: Connection, group: str) -> tuple[str, int]:
    """One member joined and synced: (member id, generation)."""
    find_coordinator(t, group)
    joined = join(conn, group)
    assert joined["error_code"] == "NONE", joined
    member, generation = str(joined["member_id"]), int(joined["generation_id"])
    assert sync(conn, group, member, generation) == "NONE"
    return member, generation


@scenario
def unknown_group(t: Target) -> Observation:
    """Heartbeat, SyncGroup and OffsetCommit naming member "ghost", generation 1, of a group
    that does not exist, and DescribeGroups of it."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    find_coordinator(t, group)
    with t.connection() as conn:
        return {
            "heartbeat": heartbeat(conn, group, "ghost", 1),
            "sync_group": sync(conn, group, "ghost", 1),
            "offset_commit": commit(t, group, "ghost", 1, topic),
            "describe": describe(t, group),
        }


@scenario
def unknown_member(t: Target) -> Observation:
    """A stable one-member group; Heartbeat, SyncGroup, OffsetCommit and LeaveGroup naming
    member "ghost" with the current generation."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    with t.connection() as conn:
        member, generation = stable_member(t, conn, group)
        out = {
            "heartbeat": heartbeat(conn, group, "ghost", generation),
            "sync_group": sync(conn, group, "ghost", generation),
            "offset_commit": commit(t, group, "ghost", generation, topic),
            "leave_group": leave(t, group, "ghost"),
        }
        leave(t, group, member)
    return out


@scenario
def illegal_generation(t: Target) -> Observation:
    """A stable one-member group at generation 1; Heartbeat, SyncGroup and OffsetCommit by
    that member with generation 7, then with the right one."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    with t.connection() as conn:
        member, generation = stable_member(t, conn, group)
        out = {
            "generation": generation,
            "heartbeat_wrong": heartbeat(conn, group, member, generation + 6),
            "sync_group_wrong": sync(conn, group, member, generation + 6),
            "offset_commit_wrong": commit(t, group, member, generation + 6, topic),
            "heartbeat_right": heartbeat(conn, group, member, generation),
            "offset_commit_right": commit(t, group, member, generation, topic),
        }
        leave(t, group, member)
    return out


@scenario
def standalone_commit_to_active_group(t: Target) -> Observation:
    """OffsetCommit with generation -1 and no member id (as an assign() consumer commits) to
    a group that has a stable member, and to a group that does not exist."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    with t.connection() as conn:
        member, _ = stable_member(t, conn, group)
        out = {
            "active_group": commit(t, group, "", -1, topic),
            "new_group": commit(t, t.unique("group"), "", -1, topic),
        }
        leave(t, group, member)
    return out


def _await_state(t: Target, group: str, state: str) -> str:
    deadline = time.monotonic() + 10
    seen = describe(t, group)["group_state"]
    while seen != state and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = describe(t, group)["group_state"]
    return str(seen)


@scenario
def rebalance_in_progress(t: Target) -> Observation:
    """Member A is stable; member B joins (its JoinGroup waits). While the group prepares the
    rebalance, A's Heartbeat, SyncGroup and OffsetCommit with generation 1; then A rejoins and
    both get generation 2."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    with t.connection() as conn_a, t.connection() as conn_b:
        member_a, generation = stable_member(t, conn_a, group)
        first_b = plain(conn_b.call(11, 5, join_body(group, "")))
        member_b = str(first_b["member_id"])
        conn_b.send(11, 5, join_body(group, member_b))
        out: dict[str, Any] = {
            "b_first_join": first_b["error_code"],
            "state": _await_state(t, group, "PreparingRebalance"),
            "heartbeat": heartbeat(conn_a, group, member_a, generation),
            "sync_group": sync(conn_a, group, member_a, generation),
            "offset_commit": commit(t, group, member_a, generation, topic),
        }
        rejoin_a = join(conn_a, group, member_a)
        rejoin_b = plain(conn_b.receive())
        out["rejoin"] = {
            "a": [rejoin_a["error_code"], rejoin_a["generation_id"], len(rejoin_a["members"])],
            "b": [rejoin_b["error_code"], rejoin_b["generation_id"], len(rejoin_b["members"])],
        }
        leave(t, group, member_a, member_b)
    return out


@scenario
def group_states(t: Target) -> Observation:
    """DescribeGroups along a group's life: before it exists, after A joins, after A syncs,
    while B's join waits, after A rejoins, after both leave, after DeleteGroups."""
    group = t.unique("group")
    find_coordinator(t, group)
    states: dict[str, Any] = {"unknown": describe(t, group)}
    with t.connection() as conn_a, t.connection() as conn_b:
        joined = join(conn_a, group)
        member_a, generation = str(joined["member_id"]), int(joined["generation_id"])
        states["joined"] = describe(t, group)
        sync(conn_a, group, member_a, generation)
        states["synced"] = describe(t, group)
        member_b = str(plain(conn_b.call(11, 5, join_body(group, "")))["member_id"])
        conn_b.send(11, 5, join_body(group, member_b))
        _await_state(t, group, "PreparingRebalance")
        states["second_member_joining"] = describe(t, group)
        join(conn_a, group, member_a)
        conn_b.receive()
        states["rejoined"] = describe(t, group)
        states["leave"] = leave(t, group, member_a, member_b)
        states["left"] = describe(t, group)
    deleted = t.call(42, 2, {"groups_names": [group]})
    states["delete_groups"] = plain(deleted.results[0].error_code)
    states["deleted"] = describe(t, group)
    return states


@scenario
def join_errors(t: Target) -> Observation:
    """JoinGroup v5 with a session timeout of 1 ms, with an empty group id, and with protocol
    type "connect" into a stable "consumer" group."""
    group = t.unique("group")
    with t.connection() as conn:
        member, _ = stable_member(t, conn, group)
        short = {**join_body(t.unique("group"), ""), "session_timeout": 1}
        other = {**join_body(group, ""), "protocol_type": "connect"}
        out = {
            "session_timeout_1ms": plain(conn.call(11, 5, short).error_code),
            "empty_group_id": plain(conn.call(11, 5, join_body("", "")).error_code),
            "other_protocol_type": plain(conn.call(11, 5, other).error_code),
        }
        leave(t, group, member)
    return out


@scenario
def delete_groups(t: Target) -> Observation:
    """DeleteGroups v2 of a group that does not exist, of a group with a stable member, and of
    an empty group holding a committed offset; DescribeGroups after the last."""
    active = t.unique("group")
    committed = t.unique("group")
    topic = t.create_topic("offsets")
    find_coordinator(t, committed)
    commit(t, committed, "", -1, topic)
    with t.connection() as conn:
        member, _ = stable_member(t, conn, active)
        roles = {t.unique("group"): "missing", active: "active", committed: "committed"}
        response = t.call(42, 2, {"groups_names": list(roles)})
        # Kafka answers in its own order: match the results by group id.
        codes = {roles[r.group_id]: plain(r.error_code) for r in response.results}
        out = {"codes": dict(sorted(codes.items())), "after": describe(t, committed)}
        leave(t, active, member)
    return out


@scenario
def offset_fetch(t: Target) -> Observation:
    """OffsetFetch v8 of a group that does not exist (one partition named, and all), then of a
    group after a standalone commit of offset 1."""
    topic = t.create_topic("offsets")
    missing = t.unique("group")
    group = t.unique("group")
    find_coordinator(t, group)
    commit(t, group, "", -1, topic)

    def fetch(group_id: str, topics: list[dict[str, Any]] | None) -> Any:
        body = {"groups": [{"group_id": group_id, "topics": topics}], "require_stable": True}
        return plain(t.call(9, 8, body).groups[0])

    named = [{"name": topic, "partition_indexes": [0]}]
    return {
        "missing_named": fetch(missing, named),
        "missing_all": fetch(missing, None),
        "committed_named": fetch(group, named),
        "committed_all": fetch(group, None),
    }


@scenario
def list_groups(t: Target) -> Observation:
    """ListGroups v4 filtered to Stable and to Empty, after one group gets a stable member and
    another only a committed offset: how each of the two is listed."""
    stable = t.unique("group")
    empty = t.unique("group")
    topic = t.create_topic("offsets")
    find_coordinator(t, empty)
    commit(t, empty, "", -1, topic)
    out: dict[str, Any] = {}
    with t.connection() as conn:
        member, _ = stable_member(t, conn, stable)
        for state in ("Stable", "Empty"):
            response = plain(t.call(16, 4, {"states_filter": [state]}))
            mine = [g for g in response["groups"] if g["group_id"] in (stable, empty)]
            out[state] = {"error_code": response["error_code"], "groups": mine}
        leave(t, stable, member)
    return out


@scenario
def committed_only_group(t: Target) -> Observation:
    """DescribeGroups v5 and v6 of a group that only a standalone offset commit created (no
    member ever joined)."""
    group = t.unique("group")
    topic = t.create_topic("offsets")
    find_coordinator(t, group)
    commit(t, group, "", -1, topic)
    return {"v5": describe(t, group), "v6": describe(t, group, version=6)}


@scenario
def describe_authorized_operations(t: Target) -> Observation:
    """DescribeGroups v5 asking for the authorised operations of a stable group (no
    authoriser configured)."""
    group = t.unique("group")
    with t.connection() as conn:
        member, _ = stable_member(t, conn, group)
        response = t.call(15, 5, {"groups": [group], "include_authorized_operations": True})
        out = {"authorized_operations": plain(response.groups[0].authorized_operations)}
        leave(t, group, member)
    return out


@scenario
def consumer_group_authorized_operations(t: Target) -> Observation:
    """ConsumerGroupDescribe v0 of a KIP-848 group with one member, asking for the authorised
    operations and not asking (no authoriser configured)."""
    group = t.unique("group")
    topic = t.create_topic("subscribed")
    find_coordinator(t, group)
    member = str(uuid.uuid4())
    heartbeat = {
        "group_id": group,
        "member_id": member,
        "member_epoch": 0,
        "instance_id": None,
        "rack_id": None,
        "rebalance_timeout": SESSION_MS,
        "subscribed_topic_names": [topic],
        "server_assignor": None,
        "topic_partitions": [],
    }
    with t.connection() as conn:
        joined = plain(conn.call(68, 0, heartbeat).error_code)
        out: dict[str, Any] = {"heartbeat": joined}
        for asked in (True, False):
            body = {"group_ids": [group], "include_authorized_operations": asked}
            found = conn.call(69, 0, body).groups[0]
            out[f"asked_{str(asked).lower()}"] = {
                "error_code": plain(found.error_code),
                "authorized_operations": plain(found.authorized_operations),
            }
        conn.call(68, 0, {**heartbeat, "member_epoch": -1, "subscribed_topic_names": None})
    return out
