"""Metadata and DescribeCluster: the shape of the answers (fields present, error codes,
is_internal), auto-creation and unknown or invalid names; the features ApiVersions
advertises."""

from __future__ import annotations

import time
from typing import Any

from conformance._harness import Observation, Target, plain, scenario


def _metadata(
    t: Target, names: list[str] | None, *, auto_create: bool = False, operations: bool = False
) -> Any:
    response = t.call(
        3,
        12,
        {
            "topics": None if names is None else [{"name": n, "topic_id": None} for n in names],
            "allow_auto_topic_creation": auto_create,
            "include_topic_authorized_operations": operations,
        },
    )
    return plain(response)


@scenario
def topic_shape(t: Target) -> Observation:
    """Metadata v12 of a 3-partition topic: brokers, controller, partitions, replicas, ISR,
    epochs and authorised-operations fields."""
    name = t.create_topic("shape", partitions=3)
    return _metadata(t, [name])


@scenario
def topic_authorized_operations(t: Target) -> Observation:
    """Metadata v12 asking for a topic's authorised operations (no authoriser configured)."""
    name = t.create_topic("operations")
    topic = _metadata(t, [name], operations=True)["topics"][0]
    return {"topic_authorized_operations": topic["topic_authorized_operations"]}


@scenario
def unknown_topic(t: Target) -> Observation:
    """Metadata v12 without auto-creation of a topic that does not exist."""
    return {"topics": _metadata(t, [t.unique("missing")])["topics"]}


@scenario
def invalid_topic_name(t: Target) -> Observation:
    """Metadata v12 with auto-creation of "bad name!" and of 250 characters."""
    return {"topics": _metadata(t, ["bad name!", "y" * 250], auto_create=True)["topics"]}


@scenario
def auto_create(t: Target) -> Observation:
    """Metadata v12 with auto-creation of a new name: the first answer, then the answer once
    the topic has a leader."""
    name = t.unique("auto")
    first = _metadata(t, [name], auto_create=True)["topics"][0]
    t.wait_for_leaders(name, 1)
    settled = _metadata(t, [name])["topics"][0]
    return {"first": first, "settled": settled}


@scenario
def all_topics_lists_created(t: Target) -> Observation:
    """Metadata v12 with topics=null after creating a topic: is it listed, and are the
    listed topics internal?"""
    name = t.create_topic("listed")
    topics = _metadata(t, None)["topics"]
    mine = [x for x in topics if x["name"] == "<listed>"]
    return {
        "listed": len(mine) == 1 and name in t.aliases,
        "is_internal": [x["is_internal"] for x in mine],
        "internal_topics": sorted(x["name"] for x in topics if x["is_internal"]),
    }


@scenario
def internal_topic(t: Target) -> Observation:
    """After a consumer group commits an offset, Metadata v12 (no auto-creation) of
    __consumer_offsets: does it exist, and is it internal?"""
    group = t.unique("group")
    deadline = time.monotonic() + 30
    while True:
        found = t.call(10, 4, {"key_type": 0, "coordinator_keys": [group]})
        if int(found.coordinators[0].error_code) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    topic = _metadata(t, ["__consumer_offsets"])["topics"][0]
    return {"error_code": topic["error_code"], "is_internal": topic["is_internal"]}


@scenario
def describe_cluster(t: Target) -> Observation:
    """DescribeCluster v1: error code, endpoint type, brokers, controller, operations."""
    response = t.call(60, 1, {"include_cluster_authorized_operations": False, "endpoint_type": 1})
    return plain(response)


@scenario
def describe_cluster_with_operations(t: Target) -> Observation:
    """DescribeCluster v1 asking for the cluster's authorised operations (no authoriser)."""
    response = t.call(60, 1, {"include_cluster_authorized_operations": True, "endpoint_type": 1})
    return plain(response)


# Finalized features a client or tool acts on and Headwater implements. Kafka 4.4 finalizes
# more (metadata.version, share.version, streams.version, eligible.leader.replicas.version)
# for machinery Headwater does not have.
CLIENT_FEATURES = ("transaction.version", "group.version")


@scenario
def api_versions_features(t: Target) -> Observation:
    """ApiVersions v3: the finalized levels of transaction.version and group.version, and the
    supported features listed from version 0 (a v3 answer leaves those out, KIP-1022)."""
    body = {"client_software_name": "conformance", "client_software_version": "1"}
    response = plain(t.call(18, 3, body))
    return {
        "finalized": {
            f["name"]: [f["min_version_level"], f["max_version_level"]]
            for f in response["finalized_features"]
            if f["name"] in CLIENT_FEATURES
        },
        "supported_from_zero": sorted(
            f["name"] for f in response["supported_features"] if f["min_version"] == 0
        ),
    }
