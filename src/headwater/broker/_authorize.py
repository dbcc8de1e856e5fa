"""What each API authorises, as Apache Kafka 4.x checks it, and the checks handlers call.

``CHECKS`` is the one table: per API, the ACL operations on resources it needs and what a
refusal does. Handlers ask ``allowed`` (or ``denied_topics`` for a request's topics) and
answer refusals with Kafka's codes; docs/security.md holds ``render_markdown()`` of the table
(a test keeps the two equal), and in tests every check a handler makes must be in the table.

Off by default (``authorizer_enabled``): then ``broker.authorizer`` is None and every helper
returns at once after that one attribute check, so handlers cost what they did before. A
refusal is logged (rate-limited) and counted in
``headwater_broker_authorization_denied_total{api, resource_type}``; a resource that is only
left out of a listing (Metadata of all topics, ListGroups, ...) is not a refusal, as Kafka
does not log those either. A topic the principal may not DESCRIBE is refused before the
broker looks it up, so an answer never tells whether it exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headwater.broker import _audit
from headwater.broker._metrics import api_label
from headwater.security._acl import (
    AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_NAME,
    AclOperation,
    ResourceType,
    operations_bit_field,
)

if TYPE_CHECKING:
    from headwater.broker._context import RequestContext

log = logging.getLogger(__name__)

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
OPERATION_NOT_ATTEMPTED = 55
# Kafka's default messages (``Errors.message()``), sent where Kafka sends one.
MESSAGES = {
    TOPIC_AUTHORIZATION_FAILED: "Topic authorization failed.",
    GROUP_AUTHORIZATION_FAILED: "Group authorization failed.",
    CLUSTER_AUTHORIZATION_FAILED: "Cluster authorization failed.",
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "Transactional Id authorization failed.",
}
_ERROR_NAMES = {
    TOPIC_AUTHORIZATION_FAILED: "TOPIC_AUTHORIZATION_FAILED",
    GROUP_AUTHORIZATION_FAILED: "GROUP_AUTHORIZATION_FAILED",
    CLUSTER_AUTHORIZATION_FAILED: "CLUSTER_AUTHORIZATION_FAILED",
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}

_O = AclOperation
_R = ResourceType
READ, WRITE, CREATE, DELETE, ALTER = _O.READ, _O.WRITE, _O.CREATE, _O.DELETE, _O.ALTER
DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS = _O.DESCRIBE, _O.DESCRIBE_CONFIGS, _O.ALTER_CONFIGS
IDEMPOTENT_WRITE = _O.IDEMPOTENT_WRITE
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = _R.TOPIC, _R.GROUP, _R.CLUSTER, _R.TRANSACTIONAL_ID
LEFT_OUT = 0  # a refusal that leaves the resource out of a listing instead of answering it


@dataclass(frozen=True, slots=True)
class Check:
    """One requirement of an API: any one of ``grants`` on the resource ``on`` names."""

    grants: tuple[tuple[AclOperation, ResourceType], ...]
    on: str
    error: int
    # How a refusal is answered, beyond the code; "" when the code says it all.
    effect: str = ""


def _check(
    operation: AclOperation, resource: ResourceType, on: str, error: int, effect: str = ""
) -> Check:
    return Check(((operation, resource),), on, error, effect)


_TXN = _check(WRITE, TRANSACTIONAL_ID, "the transactional id", 53, "for the whole request")
_READ_GROUP = _check(READ, GROUP, "the group", 30)
_CLUSTER_DESCRIBE = _check(DESCRIBE, CLUSTER, "the cluster", 31)
_CLUSTER_ALTER = _check(ALTER, CLUSTER, "the cluster", 31)
_OPS = "authorized operations"

# Per API name (as registered), in the order the handler checks. Kafka's KafkaApis, its
# AuthHelper and the controller APIs are the reference.
CHECKS: dict[str, tuple[Check, ...]] = {
    "Produce": (
        _check(
            WRITE,
            TRANSACTIONAL_ID,
            "the transactional id, when the request carries transactional records",
            53,
            "for every partition",
        ),
        _check(WRITE, TOPIC, "each topic", 29, "for its partitions"),
    ),
    "Fetch": (_check(READ, TOPIC, "each topic", 29, "for its partitions"),),
    "ListOffsets": (_check(DESCRIBE, TOPIC, "each topic", 29, "for its partitions"),),
    "Metadata": (
        _check(
            DESCRIBE,
            TOPIC,
            "each topic",
            29,
            "for a named topic; left out of an all-topics answer",
        ),
        Check(
            ((CREATE, CLUSTER), (CREATE, TOPIC)),
            "a topic to auto-create",
            29,
        ),
        _check(
            DESCRIBE, CLUSTER, f"the cluster, for its {_OPS} (v8-10)", LEFT_OUT, "the bit set is 0"
        ),
    ),
    "OffsetCommit": (
        _check(READ, GROUP, "the group", 30, "for every partition"),
        _check(READ, TOPIC, "each topic", 29, "for its partitions"),
    ),
    "OffsetFetch": (
        _check(DESCRIBE, GROUP, "each group", 30),
        _check(
            DESCRIBE,
            TOPIC,
            "each topic",
            29,
            "for a named partition; left out when fetching all offsets",
        ),
    ),
    "FindCoordinator": (
        _check(DESCRIBE, GROUP, "each group key", 30),
        _check(DESCRIBE, TRANSACTIONAL_ID, "each transaction key", 53),
    ),
    "JoinGroup": (_READ_GROUP,),
    "Heartbeat": (_READ_GROUP,),
    "LeaveGroup": (_READ_GROUP,),
    "SyncGroup": (_READ_GROUP,),
    "DescribeGroups": (_check(DESCRIBE, GROUP, "each group", 30),),
    "ListGroups": (
        Check(
            ((DESCRIBE, CLUSTER), (DESCRIBE, GROUP)),
            "the cluster, or else each group",
            LEFT_OUT,
            "groups it may not describe are left out",
        ),
    ),
    "CreateTopics": (
        Check(((CREATE, CLUSTER), (CREATE, TOPIC)), "each topic", 29),
        _check(
            DESCRIBE_CONFIGS,
            TOPIC,
            "each created topic, for the configs in the answer",
            29,
            "as its topic_config_error_code, configs left out",
        ),
    ),
    "DeleteTopics": (_check(DELETE, TOPIC, "each topic", 29),),
    "DeleteRecords": (_check(DELETE, TOPIC, "each topic", 29, "for its partitions"),),
    "InitProducerId": (
        _check(WRITE, TRANSACTIONAL_ID, "the transactional id, when it names one", 53),
        Check(
            ((IDEMPOTENT_WRITE, CLUSTER), (WRITE, TOPIC)),
            "the cluster, or else any topic (without a transactional id)",
            31,
        ),
    ),
    "OffsetForLeaderEpoch": (_check(DESCRIBE, TOPIC, "each topic", 29, "for its partitions"),),
    "AddPartitionsToTxn": (
        _check(WRITE, TRANSACTIONAL_ID, "the transactional id", 53, "for every partition"),
        _check(
            WRITE,
            TOPIC,
            "each topic",
            29,
            "for its partitions; the others OPERATION_NOT_ATTEMPTED (55)",
        ),
    ),
    "AddOffsetsToTxn": (_TXN, _READ_GROUP),
    "EndTxn": (_TXN,),
    "TxnOffsetCommit": (
        _check(WRITE, TRANSACTIONAL_ID, "the transactional id", 53, "for every partition"),
        _check(READ, GROUP, "the group", 30, "for every partition"),
        _check(READ, TOPIC, "each topic", 29, "for its partitions; the others are committed"),
    ),
    "DescribeAcls": (_CLUSTER_DESCRIBE,),
    "CreateAcls": (_check(ALTER, CLUSTER, "the cluster", 31, "for every creation"),),
    "DeleteAcls": (_check(ALTER, CLUSTER, "the cluster", 31, "for every filter"),),
    "DescribeConfigs": (
        _check(DESCRIBE_CONFIGS, TOPIC, "each topic resource", 29),
        _check(DESCRIBE_CONFIGS, CLUSTER, "the cluster, for each broker resource", 31),
    ),
    "AlterConfigs": (
        _check(ALTER_CONFIGS, TOPIC, "each topic resource", 29),
        _check(ALTER_CONFIGS, CLUSTER, "the cluster, for each broker resource", 31),
    ),
    "DescribeLogDirs": (_CLUSTER_DESCRIBE,),
    "CreatePartitions": (_check(ALTER, TOPIC, "each topic", 29),),
    "DeleteGroups": (_check(DELETE, GROUP, "each group", 30),),
    "IncrementalAlterConfigs": (
        _check(ALTER_CONFIGS, TOPIC, "each topic resource", 29),
        _check(ALTER_CONFIGS, CLUSTER, "the cluster, for each broker resource", 31),
    ),
    "OffsetDelete": (
        _check(DELETE, GROUP, "the group", 30),
        _check(READ, TOPIC, "each topic", 29, "for its partitions"),
    ),
    "DescribeClientQuotas": (_check(DESCRIBE_CONFIGS, CLUSTER, "the cluster", 31),),
    "AlterClientQuotas": (_check(ALTER_CONFIGS, CLUSTER, "the cluster", 31, "for every entry"),),
    "DescribeUserScramCredentials": (_CLUSTER_DESCRIBE,),
    "AlterUserScramCredentials": (_check(ALTER, CLUSTER, "the cluster", 31, "for every user"),),
    "DescribeCluster": (
        _check(DESCRIBE, CLUSTER, f"the cluster, for its {_OPS}", LEFT_OUT, "the bit set is 0"),
    ),
    "DescribeProducers": (_check(READ, TOPIC, "each topic", 29, "for its partitions"),),
    "DescribeTransactions": (
        _check(DESCRIBE, TRANSACTIONAL_ID, "each transactional id", 53),
        _check(DESCRIBE, TOPIC, "each topic in the transaction", LEFT_OUT, "left out"),
    ),
    "ListTransactions": (
        _check(DESCRIBE, TRANSACTIONAL_ID, "each transactional id", LEFT_OUT, "left out"),
    ),
    "ConsumerGroupHeartbeat": (
        _READ_GROUP,
        _check(
            DESCRIBE,
            TOPIC,
            "each subscribed topic name",
            29,
            "for the heartbeat, if any is refused",
        ),
    ),
    "ConsumerGroupDescribe": (_check(DESCRIBE, GROUP, "each group", 30),),
    "DescribeTopicPartitions": (
        _check(
            DESCRIBE,
            TOPIC,
            "each topic",
            29,
            "for a named topic; left out of an all-topics answer",
        ),
    ),
    "ApiVersions": (),
    "SaslHandshake": (),
    "SaslAuthenticate": (),
}

# The (operation, resource type) pairs each API may check: ``allowed`` asserts against it, so
# a handler cannot enforce something the table (and so the docs) does not say.
_PAIRS: dict[str, frozenset[tuple[AclOperation, ResourceType]]] = {
    api: frozenset(g for check in checks for g in check.grants) for api, checks in CHECKS.items()
}


def allowed(
    ctx: RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
    name: str,
    *,
    refusal: bool = True,
) -> bool:
    """May the caller do ``operation`` on the resource? A refusal is logged and counted
    unless ``refusal`` is False (a resource left out of a listing, or an alternative)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    api = api_label(ctx.header.api_key)
    assert (operation, resource_type) in _PAIRS.get(api, ()), (api, operation, resource_type)
    if authorizer.authorize(ctx.principal, ctx.client_host, operation, resource_type, name):
        return True
    if refusal:
        denied(ctx, api, operation, resource_type, name)
    return False


def allowed_cluster(ctx: RequestContext, operation: AclOperation, *, refusal: bool = True) -> bool:
    return allowed(ctx, operation, CLUSTER, CLUSTER_NAME, refusal=refusal)


def allowed_any(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType) -> bool:
    """May the caller do ``operation`` on at least one resource of the type (no logging)?"""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    api = api_label(ctx.header.api_key)
    assert (operation, resource_type) in _PAIRS.get(api, ()), (api, operation, resource_type)
    return authorizer.authorize_by_resource_type(
        ctx.principal, ctx.client_host, operation, resource_type
    )


_NOTHING: frozenset[str] = frozenset()


def denied_topics(
    ctx: RequestContext, operation: AclOperation, names: Iterable[str], *, refusal: bool = True
) -> frozenset[str]:
    """The topics among ``names`` the caller may not ``operation``; empty when all may."""
    if ctx.broker.authorizer is None:
        return _NOTHING
    return frozenset(
        name for name in set(names) if not allowed(ctx, operation, TOPIC, name, refusal=refusal)
    )


def denied(
    ctx: RequestContext, api: str, operation: AclOperation, resource_type: ResourceType, name: str
) -> None:
    """Log (rate-limited) and count one refusal."""
    broker = ctx.broker
    broker.metrics.authorization_denied.labels(api, resource_type.name).inc()
    broker.authorization_denials.warning(
        "authorization denied principal=%s host=%s operation=%s resource=%s:%s api=%s",
        ctx.principal,
        ctx.client_host,
        operation.name,
        resource_type.name,
        name,
        api,
    )
    _audit.audit_denied(broker, ctx, operation, resource_type, name)


def operations(ctx: RequestContext, resource_type: ResourceType, name: str) -> int | None:
    """The authorized-operations bit set of the resource, or None with the authorizer off
    (then handlers answer every operation, as Kafka without an authorizer)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return None
    ops = authorizer.authorized_operations(ctx.principal, ctx.client_host, resource_type, name)
    return operations_bit_field(ops)


def cluster_operations(ctx: RequestContext, every: int) -> int:
    """The cluster's bit set as Metadata and DescribeCluster answer it: 0 without DESCRIBE."""
    if ctx.broker.authorizer is None:
        return every
    if not allowed_cluster(ctx, DESCRIBE, refusal=False):
        return 0
    bits = operations(ctx, CLUSTER, CLUSTER_NAME)
    assert bits is not None
    return bits


def render_markdown() -> str:
    """The table as docs/security.md shows it (one row per check, APIs by key)."""
    from headwater.broker._registry import HANDLERS

    rows = ["| API | needs | on | refused with |", "|---|---|---|---|"]
    for handler in sorted(HANDLERS.values(), key=lambda h: h.api_key):
        checks = CHECKS[handler.name]
        if not checks:
            rows.append(f"| {handler.name} ({handler.api_key}) | nothing | | |")
        for i, check in enumerate(checks):
            api = f"{handler.name} ({handler.api_key})" if i == 0 else ""
            needs = " or ".join(f"{op.name} on {rt.name}" for op, rt in check.grants)
            if check.error == LEFT_OUT:
                refused = check.effect
            else:
                refused = f"{_ERROR_NAMES[check.error]} ({check.error})"
                if check.effect:
                    refused += f" {check.effect}"
            rows.append(f"| {api} | {needs} | {check.on} | {refused} |")
    return "\n".join(rows) + "\n"


__all__ = [
    "AUTHORIZED_OPERATIONS_OMITTED",
    "CHECKS",
    "MESSAGES",
    "allowed",
    "allowed_any",
    "allowed_cluster",
    "cluster_operations",
    "denied_topics",
    "operations",
    "render_markdown",
]
