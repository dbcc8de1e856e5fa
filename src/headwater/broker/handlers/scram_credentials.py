"""DescribeUserScramCredentials v0 and AlterUserScramCredentials v0: SCRAM users over Kafka's
admin APIs, so ``kafka-configs --alter --add-config SCRAM-SHA-512=[...]``, the Java Admin and
confluent-kafka's AdminClient manage the broker's users.

Alter receives the salted password (the client salts and hashes; the password never crosses
the wire) and the broker keeps only StoredKey and ServerKey. Errors are per user, with
Kafka's codes: RESOURCE_NOT_FOUND for a user or credential that does not exist,
DUPLICATE_RESOURCE for a user named twice, UNACCEPTABLE_CREDENTIAL for iterations out of range
or an empty name, salt or password, UNSUPPORTED_SASL_MECHANISM for an unknown mechanism.

Authorises DESCRIBE (Describe) and ALTER (Alter) on the cluster, CLUSTER_AUTHORIZATION_FAILED
otherwise (for the request, or for every user).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from headwater.broker import _authorize
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles
from headwater.security._errors import SecurityError
from headwater.security._scram import (
    ScramCredential,
    mechanism_code,
    mechanism_name,
)

UNSUPPORTED_SASL_MECHANISM = 33
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93


@handles(50, "DescribeUserScramCredentials", 0, 0)
async def describe_user_scram_credentials(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.DESCRIBE):
        code = _authorize.CLUSTER_AUTHORIZATION_FAILED
        message = _authorize.MESSAGES[code]
        return {"throttle_time": 0, "error_code": code, "error_message": message, "results": []}
    described = ctx.broker.credentials.describe()
    if request.users is None or not request.users:
        names = sorted(described)
        counts: Counter[str] = Counter()
    else:
        names = [user.name for user in request.users]
        counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        result: dict[str, Any] = {
            "user": name,
            "error_code": 0,
            "error_message": None,
            "credential_infos": [],
        }
        if counts[name] > 1:
            result["error_code"] = DUPLICATE_RESOURCE
            result["error_message"] = (
                f"Cannot describe SCRAM credentials for the same user twice: {name}"
            )
        elif name not in described:
            result["error_code"] = RESOURCE_NOT_FOUND
            result["error_message"] = (
                f"Attempt to describe a user credential that does not exist: {name}"
            )
        else:
            result["credential_infos"] = [
                {"mechanism": mechanism_code(mechanism), "iterations": iterations}
                for mechanism, iterations in described[name]
            ]
        results.append(result)
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "results": results}


def _refusal(ctx: RequestContext, request: Any) -> dict[str, tuple[int, str]]:
    """Per user, the first reason the whole alteration for that user is refused."""
    refused: dict[str, tuple[int, str]] = {}
    seen: Counter[tuple[str, int]] = Counter(
        (item.name, item.mechanism) for item in (*request.deletions, *request.upsertions)
    )
    store = ctx.broker.credentials
    for item in (*request.deletions, *request.upsertions):
        name = item.name
        if name in refused:
            continue
        if not name:
            refused[name] = (UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
        elif mechanism_name(item.mechanism) is None:
            refused[name] = (
                UNSUPPORTED_SASL_MECHANISM,
                f"Unknown SCRAM mechanism {item.mechanism}",
            )
        elif seen[(name, item.mechanism)] > 1:
            refused[name] = (
                DUPLICATE_RESOURCE,
                f"A user credential cannot be altered twice in the same request: {name}",
            )
    for item in request.deletions:
        mechanism = mechanism_name(item.mechanism)
        if item.name not in refused and mechanism and store.get(item.name, mechanism) is None:
            refused[item.name] = (
                RESOURCE_NOT_FOUND,
                f"Attempt to delete a user credential that does not exist: {item.name}",
            )
    return refused


@handles(51, "AlterUserScramCredentials", 0, 0)
async def alter_user_scram_credentials(ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not _authorize.allowed_cluster(ctx, _authorize.ALTER):
        code = _authorize.CLUSTER_AUTHORIZATION_FAILED
        users = dict.fromkeys(item.name for item in (*request.deletions, *request.upsertions))
        answer = {"error_code": code, "error_message": _authorize.MESSAGES[code]}
        return {"throttle_time": 0, "results": [{"user": n, **answer} for n in users]}
    store = ctx.broker.credentials
    refused = _refusal(ctx, request)
    built: dict[str, list[ScramCredential]] = {}
    for item in request.upsertions:
        if item.name in refused:
            continue
        mechanism = mechanism_name(item.mechanism)
        assert mechanism is not None
        try:
            credential = ScramCredential.from_salted_password(
                mechanism, item.salt, item.salted_password, item.iterations
            )
        except (SecurityError, ValueError) as exc:
            refused[item.name] = (UNACCEPTABLE_CREDENTIAL, str(exc))
            continue
        built.setdefault(item.name, []).append(credential)
    for item in request.deletions:
        mechanism = mechanism_name(item.mechanism)
        if item.name not in refused and mechanism is not None:
            store.delete(item.name, mechanism)
    for name, credentials in built.items():
        if name not in refused:
            for credential in credentials:
                store.upsert(name, credential)
    names = dict.fromkeys(item.name for item in (*request.deletions, *request.upsertions))
    results = []
    for name in names:
        code, message = refused.get(name, (0, None))
        results.append({"user": name, "error_code": code, "error_message": message})
    return {"throttle_time": 0, "results": results}
