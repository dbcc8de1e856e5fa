"""ACL administration: DescribeAcls v1-3, CreateAcls v1-3 and DeleteAcls v1-3.

v1 adds resource pattern types (KIP-290: LITERAL and PREFIXED bindings, ANY and MATCH
filters), v2 is the first flexible version, v3 adds the USER resource type (KIP-554). v0,
literal-only, is gone from Kafka 4 and so from here.

The bindings live in ``broker.acls`` (``headwater.security._acl_store.AclStore``). Errors are
per binding (CreateAcls) or per filter (DeleteAcls): INVALID_REQUEST with Kafka's message for
a binding or filter Kafka refuses.

Authorises DESCRIBE on the cluster (DescribeAcls) and ALTER on it (CreateAcls, DeleteAcls),
CLUSTER_AUTHORIZATION_FAILED otherwise. With the authorizer off anyone may call them (Kafka
answers SECURITY_DISABLED then; here the ACLs can be prepared before they are enforced).
"""

from __future__ import annotations

import logging
from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.security._acl import (
    INVALID_REQUEST,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    from_code,
)

log = logging.getLogger(__name__)

UNKNOWN_SERVER_ERROR = -1
_CLUSTER_REFUSED = _authorize.CLUSTER_AUTHORIZATION_FAILED
_REFUSED = {"error_code": _CLUSTER_REFUSED, "error_message": _authorize.MESSAGES[_CLUSTER_REFUSED]}


def _filter(
    resource_type: int,
    resource_name: str | None,
    pattern_type: int,
    principal: str | None,
    host: str | None,
    operation: int,
    permission: int,
) -> AclBindingFilter:
    return AclBindingFilter(
        resource_type=from_code(ResourceType, resource_type),
        resource_name=resource_name,
        pattern_type=from_code(PatternType, pattern_type),
        principal=principal,
        host=host,
        operation=from_code(AclOperation, operation),
        permission=from_code(PermissionType, permission),
    )


def _binding(creation: Any) -> AclBinding:
    # Strings a schema marks non-nullable can still arrive null from a hostile client; an
    # empty name or principal then fails validation with Kafka's message.
    return AclBinding(
        resource_type=from_code(ResourceType, creation.resource_type),
        resource_name=creation.resource_name or "",
        pattern_type=from_code(PatternType, creation.resource_pattern_type),
        principal=creation.principal or "",
        host=creation.host or "",
        operation=from_code(AclOperation, creation.operation),
        permission=from_code(PermissionType, creation.permission_type),
    )


@handles(29, "DescribeAcls", 1, 3)
async def describe_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.DESCRIBE):
        return {"throttle_time": 0, **_REFUSED, "resources": []}
    acl_filter = _filter(
        request.resource_type_filter,
        request.resource_name_filter,
        request.pattern_type_filter,
        request.principal_filter,
        request.host_filter,
        request.operation,
        request.permission_type,
    )
    problem = acl_filter.problem()
    if problem is not None:
        return {
            "throttle_time": 0,
            "error_code": INVALID_REQUEST,
            "error_message": problem,
            "resources": [],
        }
    resources: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for b in ctx.broker.acls.describe(acl_filter):
        key = (int(b.resource_type), b.resource_name, int(b.pattern_type))
        resources.setdefault(key, []).append(
            {
                "principal": b.principal,
                "host": b.host,
                "operation": int(b.operation),
                "permission_type": int(b.permission),
            }
        )
    return {
        "throttle_time": 0,
        "error_code": 0,
        "error_message": None,
        "resources": [
            {"resource_type": t, "resource_name": n, "pattern_type": p, "acls": acls}
            for (t, n, p), acls in resources.items()
        ],
    }


@handles(30, "CreateAcls", 1, 3)
async def create_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.ALTER):
        return {"throttle_time": 0, "results": [_REFUSED for _ in request.creations]}
    bindings = [_binding(c) for c in request.creations]
    results = ctx.broker.acls.create(bindings)
    for binding, (code, _) in zip(bindings, results, strict=True):
        if code == 0:
            log.info(
                "acl created principal=%s resource=%s:%s:%s operation=%s permission=%s "
                "host=%s by=%s",
                binding.principal,
                binding.resource_type.name,
                binding.pattern_type.name,
                binding.resource_name,
                binding.operation.name,
                binding.permission.name,
                binding.host,
                ctx.principal,
            )
    return {
        "throttle_time": 0,
        "results": [{"error_code": code, "error_message": message} for code, message in results],
    }


@handles(31, "DeleteAcls", 1, 3)
async def delete_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.ALTER):
        refused = {**_REFUSED, "matching_acls": []}
        return {"throttle_time": 0, "filter_results": [refused for _ in request.filters]}
    filters = [
        _filter(
            f.resource_type_filter,
            f.resource_name_filter,
            f.pattern_type_filter,
            f.principal_filter,
            f.host_filter,
            f.operation,
            f.permission_type,
        )
        for f in request.filters
    ]
    problems = [f.problem() for f in filters]
    valid = [f for f, problem in zip(filters, problems, strict=True) if problem is None]
    try:
        deleted = iter(ctx.broker.acls.delete(valid))
    except OSError as exc:
        message = f"cannot write the ACL file: {exc}"
        return {
            "throttle_time": 0,
            "filter_results": [
                {
                    "error_code": INVALID_REQUEST if problem else UNKNOWN_SERVER_ERROR,
                    "error_message": problem or message,
                    "matching_acls": [],
                }
                for problem in problems
            ],
        }
    out = []
    for problem in problems:
        if problem is not None:
            out.append(
                {"error_code": INVALID_REQUEST, "error_message": problem, "matching_acls": []}
            )
            continue
        matched = next(deleted)
        if matched:
            log.info("acls deleted count=%d by=%s", len(matched), ctx.principal)
        out.append(
            {
                "error_code": 0,
                "error_message": None,
                "matching_acls": [_matching(b) for b in matched],
            }
        )
    return {"throttle_time": 0, "filter_results": out}


def _matching(b: AclBinding) -> dict[str, Any]:
    return {
        "error_code": 0,
        "error_message": None,
        "resource_type": int(b.resource_type),
        "resource_name": b.resource_name,
        "pattern_type": int(b.pattern_type),
        "principal": b.principal,
        "host": b.host,
        "operation": int(b.operation),
        "permission_type": int(b.permission),
    }
