"""What each audited admin API changed, per resource, read from its request and its answer.

One function per API: ``(request, response) -> [Change]``, one Change per resource the request
named, with the error code the handler answered for it. They read request entities (kio, or
anything with the same attribute names) and the plain dicts handlers return, and copy only
names, counts, offsets and codes: a salted password, a salt or a record never leaves here, and
config values pass through ``config_value``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from headwater.security._acl import AclOperation, PatternType, PermissionType, ResourceType
from headwater.security._audit import config_value
from headwater.security._scram import mechanism_name

# Config resource types of (Incremental)AlterConfigs, as Kafka numbers them.
CONFIG_RESOURCE_TYPES = {2: "TOPIC", 4: "BROKER", 8: "BROKER_LOGGER"}
CONFIG_OPERATIONS = {0: "SET", 1: "DELETE", 2: "APPEND", 3: "SUBTRACT"}


@dataclass(frozen=True, slots=True)
class Change:
    """One audited change of one resource."""

    action: str  # the event type after ``io.headwater.admin.``, e.g. "topics.create"
    operation: str  # the ACL operation Kafka authorises it with
    resource_type: str
    resource_name: str | None
    error_code: int
    change: Mapping[str, Any] | None = None


Builder = Callable[[Any, Mapping[str, Any]], list[Change]]


def _name(enum: type[IntEnum], code: int | None) -> str:
    if code is None:
        return "UNKNOWN"
    try:
        return enum(code).name
    except ValueError:
        return str(code)


def _first_error(codes: Iterable[int]) -> int:
    return next((code for code in codes if code), 0)


def _answers(response: Mapping[str, Any], key: str, count: int) -> list[Mapping[str, Any]]:
    """The handler's per-resource answers in request order: exactly ``count`` of them (a
    resource left unanswered reads as UNKNOWN_SERVER_ERROR)."""
    answers: list[Mapping[str, Any]] = list(response.get(key) or ())[:count]
    return answers + [{"error_code": -1}] * (count - len(answers))


def _dry_run(request: Any, change: dict[str, Any]) -> dict[str, Any]:
    if getattr(request, "validate_only", False):
        change["validate_only"] = True
    return change


def create_topics(request: Any, response: Mapping[str, Any]) -> list[Change]:
    out = []
    for want, got in zip(
        request.topics, _answers(response, "topics", len(request.topics)), strict=True
    ):
        change: dict[str, Any] = {
            "num_partitions": got.get("num_partitions", -1)
            if got.get("num_partitions", -1) > 0
            else want.num_partitions,
            "replication_factor": want.replication_factor,
            "configs": {c.name: config_value(c.name, c.value) for c in want.configs},
        }
        if got.get("topic_id") is not None:
            change["topic_id"] = str(got["topic_id"])
        code = got.get("error_code", 0)
        out.append(
            Change("topics.create", "CREATE", "TOPIC", want.name, code, _dry_run(request, change))
        )
    return out


def delete_topics(request: Any, response: Mapping[str, Any]) -> list[Change]:
    out = []
    for got in response.get("responses") or ():
        topic_id = got.get("topic_id")
        change = {"topic_id": None if topic_id is None else str(topic_id)}
        out.append(
            Change("topics.delete", "DELETE", "TOPIC", got.get("name"), got["error_code"], change)
        )
    return out


def create_partitions(request: Any, response: Mapping[str, Any]) -> list[Change]:
    answers = _answers(response, "results", len(request.topics))
    return [
        Change(
            "partitions.create",
            "ALTER",
            "TOPIC",
            want.name,
            got.get("error_code", 0),
            _dry_run(request, {"partition_count": want.count}),
        )
        for want, got in zip(request.topics, answers, strict=True)
    ]


def delete_records(request: Any, response: Mapping[str, Any]) -> list[Change]:
    out = []
    for want, got in zip(
        request.topics, _answers(response, "topics", len(request.topics)), strict=True
    ):
        answered = {p["partition_index"]: p for p in got.get("partitions") or ()}
        partitions = []
        for p in want.partitions:
            entry = answered.get(p.partition_index, {"low_watermark": -1, "error_code": -1})
            partitions.append(
                {
                    "partition": p.partition_index,
                    "offset": p.offset,
                    "low_watermark": entry["low_watermark"],
                    "error_code": entry["error_code"],
                }
            )
        code = _first_error(p["error_code"] for p in partitions)
        out.append(
            Change("records.delete", "DELETE", "TOPIC", want.name, code, {"partitions": partitions})
        )
    return out


def _config_resource(
    action: str, resource: Any, got: Mapping[str, Any], change: dict[str, Any]
) -> Change:
    kind = CONFIG_RESOURCE_TYPES.get(resource.resource_type, str(resource.resource_type))
    code = got.get("error_code", 0)
    return Change(action, "ALTER_CONFIGS", kind, resource.resource_name, code, change)


def alter_configs(request: Any, response: Mapping[str, Any]) -> list[Change]:
    """Legacy AlterConfigs replaces the resource's whole override set with these values."""
    answers = _answers(response, "responses", len(request.resources))
    out = []
    for resource, got in zip(request.resources, answers, strict=True):
        configs = [
            {"name": c.name, "value": config_value(c.name, c.value)} for c in resource.configs
        ]
        change = _dry_run(request, {"mode": "replace", "configs": configs})
        out.append(_config_resource("configs.alter", resource, got, change))
    return out


def incremental_alter_configs(request: Any, response: Mapping[str, Any]) -> list[Change]:
    answers = _answers(response, "responses", len(request.resources))
    out = []
    for resource, got in zip(request.resources, answers, strict=True):
        configs = []
        for c in resource.configs:
            operation = CONFIG_OPERATIONS.get(c.config_operation, str(c.config_operation))
            entry: dict[str, Any] = {"name": c.name, "operation": operation}
            if operation != "DELETE":
                entry["value"] = config_value(c.name, c.value)
            configs.append(entry)
        change = _dry_run(request, {"mode": "incremental", "configs": configs})
        out.append(_config_resource("configs.incremental-alter", resource, got, change))
    return out


def _binding(b: Any) -> dict[str, Any]:
    """An ACL binding (or filter) of a request, with its codes as Kafka's names."""
    pattern = getattr(b, "resource_pattern_type", None)
    if pattern is None:
        pattern = getattr(b, "pattern_type_filter", None)
    return {
        "resource_type": _name(ResourceType, _field(b, "resource_type")),
        "resource_name": _field(b, "resource_name"),
        "pattern_type": _name(PatternType, pattern),
        "principal": _field(b, "principal"),
        "host": _field(b, "host"),
        "operation": _name(AclOperation, b.operation),
        "permission": _name(PermissionType, b.permission_type),
    }


def _field(b: Any, name: str) -> Any:
    """A binding's field, or a filter's (``<name>_filter``)."""
    return getattr(b, name) if hasattr(b, name) else getattr(b, f"{name}_filter", None)


def _matched(m: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "resource_type": _name(ResourceType, m["resource_type"]),
        "resource_name": m["resource_name"],
        "pattern_type": _name(PatternType, m["pattern_type"]),
        "principal": m["principal"],
        "host": m["host"],
        "operation": _name(AclOperation, m["operation"]),
        "permission": _name(PermissionType, m["permission_type"]),
    }


def create_acls(request: Any, response: Mapping[str, Any]) -> list[Change]:
    answers = _answers(response, "results", len(request.creations))
    out = []
    for creation, got in zip(request.creations, answers, strict=True):
        binding = _binding(creation)
        out.append(
            Change(
                "acls.create",
                "ALTER",
                binding["resource_type"],
                binding["resource_name"],
                got.get("error_code", 0),
                {"binding": binding},
            )
        )
    return out


def delete_acls(request: Any, response: Mapping[str, Any]) -> list[Change]:
    answers = _answers(response, "filter_results", len(request.filters))
    out = []
    for acl_filter, got in zip(request.filters, answers, strict=True):
        wanted = _binding(acl_filter)
        deleted = [_matched(m) for m in got.get("matching_acls") or ()]
        out.append(
            Change(
                "acls.delete",
                "ALTER",
                wanted["resource_type"],
                wanted["resource_name"],
                got.get("error_code", 0),
                {"filter": wanted, "deleted": deleted},
            )
        )
    return out


def _mechanism(code: int) -> str:
    return mechanism_name(code) or str(code)


def alter_user_scram_credentials(request: Any, response: Mapping[str, Any]) -> list[Change]:
    """Per user: which mechanisms were set (with iterations) or removed; never salt or key."""
    users: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for item in request.deletions:
        entry = users.setdefault(item.name, {"upserted": [], "deleted": []})
        entry["deleted"].append({"mechanism": _mechanism(item.mechanism)})
    for item in request.upsertions:
        entry = users.setdefault(item.name, {"upserted": [], "deleted": []})
        entry["upserted"].append(
            {"mechanism": _mechanism(item.mechanism), "iterations": item.iterations}
        )
    codes = {r["user"]: r.get("error_code", 0) for r in response.get("results") or ()}
    return [
        Change("users.alter-scram-credentials", "ALTER", "USER", name, codes.get(name, -1), change)
        for name, change in users.items()
    ]


def alter_client_quotas(request: Any, response: Mapping[str, Any]) -> list[Change]:
    """Per quota entity (e.g. ``user=alice,client-id=<default>``): the keys set or removed."""
    answers = _answers(response, "entries", len(request.entries or ()))
    changes = []
    for entry, got in zip(request.entries or (), answers, strict=True):
        name = ",".join(
            f"{c.entity_type}={'<default>' if c.entity_name is None else c.entity_name}"
            for c in entry.entity or ()
        )
        ops = [
            {"key": op.key, "remove": bool(op.remove)}
            | ({} if op.remove else {"value": float(op.value)})
            for op in entry.ops or ()
        ]
        change = _dry_run(request, {"ops": ops})
        changes.append(
            Change("quotas.alter", "ALTER_CONFIGS", "CLIENT_QUOTA", name, got["error_code"], change)
        )
    return changes


def delete_groups(request: Any, response: Mapping[str, Any]) -> list[Change]:
    return [
        Change("groups.delete", "DELETE", "GROUP", got["group_id"], got["error_code"])
        for got in response.get("results") or ()
    ]


def _group_partitions(
    topics: Sequence[Any], answered: Iterable[Mapping[str, Any]], offsets: bool
) -> list[dict[str, Any]]:
    codes = {
        (t["name"], p["partition_index"]): p["error_code"]
        for t in answered
        for p in t.get("partitions") or ()
    }
    out = []
    for topic in topics:
        for p in topic.partitions:
            entry: dict[str, Any] = {"topic": topic.name, "partition": p.partition_index}
            if offsets:
                entry["offset"] = p.committed_offset
            entry["error_code"] = codes.get((topic.name, p.partition_index), -1)
            out.append(entry)
    return out


def offset_delete(request: Any, response: Mapping[str, Any]) -> list[Change]:
    partitions = _group_partitions(request.topics, response.get("topics") or (), offsets=False)
    code = response.get("error_code", 0) or _first_error(p["error_code"] for p in partitions)
    if response.get("error_code", 0):
        partitions = [{"topic": p["topic"], "partition": p["partition"]} for p in partitions]
    change = {"partitions": partitions}
    return [Change("offsets.delete", "DELETE", "GROUP", request.group_id, code, change)]


def is_offset_reset(request: Any) -> bool:
    """An OffsetCommit from outside the group (a tool resetting offsets): no member, no
    generation. Consumers that assign partitions themselves commit so too."""
    return not request.member_id and request.generation_id_or_member_epoch == -1


def offset_commit(request: Any, response: Mapping[str, Any]) -> list[Change]:
    if not is_offset_reset(request):
        return []
    partitions = _group_partitions(request.topics, response.get("topics") or (), offsets=True)
    code = _first_error(p["error_code"] for p in partitions)
    change = {"partitions": partitions}
    return [Change("offsets.reset", "READ", "GROUP", request.group_id, code, change)]


# api_key -> (API name, builder): the changes the audit log records.
AUDITED: dict[int, tuple[str, Builder]] = {
    8: ("OffsetCommit", offset_commit),
    19: ("CreateTopics", create_topics),
    20: ("DeleteTopics", delete_topics),
    21: ("DeleteRecords", delete_records),
    30: ("CreateAcls", create_acls),
    31: ("DeleteAcls", delete_acls),
    33: ("AlterConfigs", alter_configs),
    37: ("CreatePartitions", create_partitions),
    42: ("DeleteGroups", delete_groups),
    44: ("IncrementalAlterConfigs", incremental_alter_configs),
    47: ("OffsetDelete", offset_delete),
    49: ("AlterClientQuotas", alter_client_quotas),
    51: ("AlterUserScramCredentials", alter_user_scram_credentials),
}
