"""Client quotas: DescribeClientQuotas v0-1 and AlterClientQuotas v0-1 (KIP-546).

v1 of both is the flexible encoding; nothing else changes. Entities are ``user`` and
``client-id`` (a name, or null for the default); keys ``producer_byte_rate``,
``consumer_byte_rate``, ``request_percentage`` and ``controller_mutation_rate`` (stored, not
enforced). As in Kafka, an unknown entity type or key, a duplicate component, an empty entity,
a non-positive value or a fraction for a byte rate is INVALID_REQUEST; ``validate_only``
checks every entry and changes nothing. Authorises DESCRIBE_CONFIGS on the cluster
(DescribeClientQuotas) and ALTER_CONFIGS on the cluster (AlterClientQuotas, every entry).
"""

from __future__ import annotations

from typing import Any

from headwater.broker import _authorize
from headwater.broker import _quotas as q
from headwater.broker._context import RequestContext
from headwater.broker._registry import handles

INVALID_REQUEST = 42
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
_CLUSTER_DENIED = _authorize.CLUSTER_AUTHORIZATION_FAILED


def _filter(components: Any) -> dict[str, tuple[int, str | None]]:
    """The describe filter per entity type: (match type, name); raises QuotaError."""
    wanted: dict[str, tuple[int, str | None]] = {}
    for component in components or ():
        entity_type = component.entity_type
        if entity_type not in q.ENTITY_TYPES:
            raise q.QuotaError(f"Custom entity type {entity_type!r} not supported")
        if entity_type in wanted:
            raise q.QuotaError(f"Duplicate {entity_type} filter component")
        match_type, match = int(component.match_type), component.match
        if match_type == MATCH_EXACT and match is None:
            raise q.QuotaError(f"The {entity_type} filter matches a name but gives none")
        if match_type in (MATCH_DEFAULT, MATCH_SPECIFIED) and match is not None:
            raise q.QuotaError(f"The {entity_type} filter matches no name but gives one")
        if match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
            raise q.QuotaError(f"Unknown match type {match_type}")
        wanted[entity_type] = (match_type, match)
    return wanted


def _matches(ent: q.Entity, wanted: dict[str, tuple[int, str | None]], strict: bool) -> bool:
    names = dict(ent)
    if strict and set(names) != set(wanted):
        return False
    for entity_type, (match_type, match) in wanted.items():
        if entity_type not in names:
            return False
        name = names[entity_type]
        if match_type == MATCH_EXACT and name != match:
            return False
        if match_type == MATCH_DEFAULT and name is not None:
            return False
    return True


@handles(48, "DescribeClientQuotas", 0, 1)
async def describe_client_quotas(ctx: RequestContext, request: Any) -> dict[str, Any]:
    def refused(code: int, message: str) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": code, "error_message": message, "entries": None}

    if not _authorize.allowed_cluster(ctx, _authorize.DESCRIBE_CONFIGS):
        return refused(_CLUSTER_DENIED, _authorize.MESSAGES[_CLUSTER_DENIED])
    try:
        wanted = _filter(request.components)
    except q.QuotaError as exc:
        return refused(INVALID_REQUEST, str(exc))
    entries = [
        {
            "entity": [{"entity_type": t, "entity_name": n} for t, n in ent],
            "values": [{"key": k, "value": v} for k, v in sorted(values.items())],
        }
        for ent, values in ctx.broker.quotas.settings.entries.items()
        if _matches(ent, wanted, bool(request.strict))
    ]
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "entries": entries}


def _validated(entry: Any) -> tuple[q.Entity, list[tuple[str, float, bool]]]:
    """One AlterClientQuotas entry, checked as Kafka checks it; raises QuotaError."""
    ent = q.make_entity((c.entity_type, c.entity_name) for c in entry.entity or ())
    ops: list[tuple[str, float, bool]] = []
    seen: set[str] = set()
    for op in entry.ops or ():
        key = op.key
        if key in seen:
            raise q.QuotaError(f"Duplicate quota key {key}")
        seen.add(key)
        if key not in q.QUOTA_KEYS:
            raise q.QuotaError(f"Invalid configuration key {key}")
        if not op.remove:
            q.validate_value(key, float(op.value))
        ops.append((key, float(op.value), bool(op.remove)))
    return ent, ops


@handles(49, "AlterClientQuotas", 0, 1)
async def alter_client_quotas(ctx: RequestContext, request: Any) -> dict[str, Any]:
    allowed = _authorize.allowed_cluster(ctx, _authorize.ALTER_CONFIGS)
    results: list[dict[str, Any]] = []
    changes: list[tuple[q.Entity, list[tuple[str, float, bool]]]] = []
    for entry in request.entries or ():
        echo = [
            {"entity_type": c.entity_type, "entity_name": c.entity_name} for c in entry.entity or ()
        ]
        code, message = 0, None
        if not allowed:
            code, message = _CLUSTER_DENIED, _authorize.MESSAGES[_CLUSTER_DENIED]
        else:
            try:
                changes.append(_validated(entry))
            except q.QuotaError as exc:
                code, message = INVALID_REQUEST, str(exc)
        results.append({"error_code": code, "error_message": message, "entity": echo})
    if changes and not request.validate_only:
        ctx.broker.quotas.alter(changes)
    return {"throttle_time": 0, "entries": results}
