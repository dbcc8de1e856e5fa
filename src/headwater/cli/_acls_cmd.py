"""``headwater acls``: add, list and remove ACLs, in the manner of Kafka's ``kafka-acls.sh``.

Each of ``add`` and ``remove`` takes principals (``--allow-principal``/``--deny-principal``),
hosts, operations and resources and acts on every combination of them, as kafka-acls does.
The client stack is imported when a command runs, not at CLI start.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from headwater.cli._common import Bootstrap, fail
from headwater.security._acl import (
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    WILDCARD,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)

app = typer.Typer(
    help="Add, list and remove ACLs on any Kafka-compatible cluster (kafka-acls.sh).",
    no_args_is_help=True,
)
_BOOT = "127.0.0.1:9092"
# Piped output keeps whole rows: rich would otherwise wrap tables at 80 columns.
_PIPE_WIDTH = 200


class Operation(StrEnum):
    """Operations with kafka-acls' names."""

    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DELETE = "Delete"
    ALTER = "Alter"
    DESCRIBE = "Describe"
    CLUSTER_ACTION = "ClusterAction"
    DESCRIBE_CONFIGS = "DescribeConfigs"
    ALTER_CONFIGS = "AlterConfigs"
    IDEMPOTENT_WRITE = "IdempotentWrite"
    ALL = "All"

    @property
    def acl_operation(self) -> AclOperation:
        return AclOperation[self.name]


class Pattern(StrEnum):
    """Resource pattern types; ``any`` and ``match`` only select, they cannot be added."""

    LITERAL = "literal"
    PREFIXED = "prefixed"
    ANY = "any"
    MATCH = "match"

    @property
    def pattern_type(self) -> PatternType:
        return PatternType[self.name]


class AddPattern(StrEnum):
    """The pattern types a binding can have."""

    LITERAL = "literal"
    PREFIXED = "prefixed"

    @property
    def pattern_type(self) -> PatternType:
        return PatternType[self.name]


TopicOpt = Annotated[
    list[str] | None,
    typer.Option("--topic", help="Topic the ACLs are for ('*' for every topic); repeatable."),
]
GroupOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--group", help="Consumer group the ACLs are for ('*' for every group); repeatable."
    ),
]
ClusterOpt = Annotated[
    bool,
    typer.Option("--cluster", help=f"The ACLs are for the cluster resource ({CLUSTER_NAME})."),
]
TxnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--transactional-id",
        help="Transactional id the ACLs are for ('*' for every id); repeatable.",
    ),
]
OperationOpt = Annotated[
    list[Operation] | None,
    typer.Option(
        "--operation",
        case_sensitive=False,
        help="Operation to allow or deny; repeatable. Default: All.",
    ),
]
AllowPrincipalOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-principal",
        help="Principal to allow, as Type:name (User:alice, User:* for everyone); repeatable.",
    ),
]
DenyPrincipalOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-principal", help="Principal to deny, as Type:name (User:mallory); repeatable."
    ),
]
AllowHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        help="Client address the allowed principals may connect from; repeatable. Default: *.",
    ),
]
DenyHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--deny-host",
        help="Client address the denied principals are denied from; repeatable. Default: *.",
    ),
]


def _resources(
    topics: list[str] | None, groups: list[str] | None, cluster: bool, txn_ids: list[str] | None
) -> list[tuple[ResourceType, str]]:
    out = [(ResourceType.TOPIC, t) for t in topics or ()]
    out += [(ResourceType.GROUP, g) for g in groups or ()]
    if cluster:
        out.append((ResourceType.CLUSTER, CLUSTER_NAME))
    out += [(ResourceType.TRANSACTIONAL_ID, t) for t in txn_ids or ()]
    return out


def _entries(
    allow_principals: list[str] | None,
    deny_principals: list[str] | None,
    allow_hosts: list[str] | None,
    deny_hosts: list[str] | None,
) -> list[tuple[PermissionType, str, str]]:
    """(permission, principal, host) for every principal and host given."""
    entries = []
    for permission, principals, hosts in (
        (PermissionType.ALLOW, allow_principals, allow_hosts),
        (PermissionType.DENY, deny_principals, deny_hosts),
    ):
        for principal in principals or ():
            if ":" not in principal:
                raise fail(f"principal {principal!r} must look like Type:name, e.g. User:alice")
            entries += [(permission, principal, host) for host in hosts or [WILDCARD]]
    return entries


def _operations(
    operations: list[Operation] | None, resources: list[tuple[ResourceType, str]]
) -> list[AclOperation]:
    ops = [o.acl_operation for o in operations or [Operation.ALL]]
    for resource_type, _ in resources:
        supported = SUPPORTED_OPERATIONS[resource_type]
        wrong = [o for o in ops if o != AclOperation.ALL and o not in supported]
        if wrong:
            names = ", ".join(sorted(Operation[o.name].value for o in supported))
            raise fail(
                f"{resource_type.name} supports only the operations {names} (and All); "
                f"not {', '.join(Operation[o.name].value for o in wrong)}"
            )
    return list(dict.fromkeys(ops))


@app.command("add")
def add(
    allow_principal: AllowPrincipalOpt = None,
    deny_principal: DenyPrincipalOpt = None,
    allow_host: AllowHostOpt = None,
    deny_host: DenyHostOpt = None,
    operation: OperationOpt = None,
    topic: TopicOpt = None,
    group: GroupOpt = None,
    cluster: ClusterOpt = False,
    transactional_id: TxnOpt = None,
    resource_pattern_type: Annotated[
        AddPattern,
        typer.Option(
            case_sensitive=False,
            help="literal: the resource names as given; prefixed: every resource whose name "
            "starts with them.",
        ),
    ] = AddPattern.LITERAL,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Add ACLs: every principal x host x operation x resource given."""
    from headwater.client import AclAdmin, AdminError, describe_binding

    resources = _resources(topic, group, cluster, transactional_id)
    if not resources:
        raise fail("name a resource: --topic, --group, --cluster or --transactional-id")
    entries = _entries(allow_principal, deny_principal, allow_host, deny_host)
    if not entries:
        raise fail("name who the ACLs are for: --allow-principal or --deny-principal")
    bindings = [
        AclBinding(rt, name, resource_pattern_type.pattern_type, principal, host, op, permission)
        for rt, name in resources
        for permission, principal, host in entries
        for op in _operations(operation, resources)
    ]
    try:
        AclAdmin(bootstrap).create(bindings)
    except AdminError as exc:
        raise fail(str(exc)) from None
    for binding in bindings:
        typer.echo(f"added {describe_binding(binding)}")


@app.command("list")
def list_(
    topic: TopicOpt = None,
    group: GroupOpt = None,
    cluster: ClusterOpt = False,
    transactional_id: TxnOpt = None,
    principal: Annotated[
        list[str] | None,
        typer.Option("--principal", help="Only ACLs of this principal (Type:name); repeatable."),
    ] = None,
    resource_pattern_type: Annotated[
        Pattern,
        typer.Option(
            case_sensitive=False,
            help="With a resource: literal or prefixed lists the ACLs of that exact pattern, "
            "any of every pattern type with that exact name, match every ACL that applies to "
            "the resource (its literal, '*' and its prefixes).",
        ),
    ] = Pattern.LITERAL,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array of bindings instead of a table.")
    ] = False,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """List ACLs: all of them, or those of the resources and principals given."""
    from headwater.client import AclAdmin, AdminError

    resources = _resources(topic, group, cluster, transactional_id)
    filters = [
        AclBindingFilter(rt, name, resource_pattern_type.pattern_type) for rt, name in resources
    ] or [AclBindingFilter()]
    try:
        admin = AclAdmin(bootstrap)
        found = {b: None for f in filters for b in admin.describe(f)}
    except AdminError as exc:
        raise fail(str(exc)) from None
    bindings = [b for b in found if not principal or b.principal in principal]
    if as_json:
        typer.echo(json.dumps([b.to_json() for b in bindings], indent=1))
        return
    if not bindings:
        typer.echo("no ACLs match")
        return
    table = Table()
    for column in ("resource type", "pattern", "resource", "principal", "host", "operation"):
        table.add_column(column, overflow="fold")
    table.add_column("permission")
    for b in bindings:
        table.add_row(
            b.resource_type.name,
            b.pattern_type.name,
            b.resource_name,
            b.principal,
            b.host,
            b.operation.name,
            b.permission.name,
        )
    Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH).print(table)


@app.command("remove")
def remove(
    allow_principal: AllowPrincipalOpt = None,
    deny_principal: DenyPrincipalOpt = None,
    allow_host: AllowHostOpt = None,
    deny_host: DenyHostOpt = None,
    operation: OperationOpt = None,
    topic: TopicOpt = None,
    group: GroupOpt = None,
    cluster: ClusterOpt = False,
    transactional_id: TxnOpt = None,
    resource_pattern_type: Annotated[
        Pattern,
        typer.Option(
            case_sensitive=False,
            help="literal or prefixed removes ACLs of that exact pattern, any those of every "
            "pattern type with that exact name, match every ACL that applies to the resource "
            "(its literal, '*' and its prefixes: use with care).",
        ),
    ] = Pattern.LITERAL,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")
    ] = False,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Remove the ACLs given, or without principals every ACL of the resources."""
    from headwater.client import AclAdmin, AdminError, describe_binding

    resources = _resources(topic, group, cluster, transactional_id)
    if not resources:
        raise fail("name a resource: --topic, --group, --cluster or --transactional-id")
    pattern = resource_pattern_type.pattern_type
    entries = _entries(allow_principal, deny_principal, allow_host, deny_host)
    if entries:
        ops = _operations(operation, resources)
        filters = [
            AclBindingFilter(rt, name, pattern, principal, host, op, permission)
            for rt, name in resources
            for permission, principal, host in entries
            for op in ops
        ]
        question = f"Remove {len(filters)} ACL(s) from {len(resources)} resource(s)?"
    else:
        filters = [AclBindingFilter(rt, name, pattern) for rt, name in resources]
        names = ", ".join(f"{rt.name}:{name}" for rt, name in resources)
        question = f"Remove every {pattern.name} ACL of {names}?"
    if not force and not typer.confirm(question):
        raise typer.Exit(1)
    try:
        deleted = AclAdmin(bootstrap).delete(filters)
    except AdminError as exc:
        raise fail(str(exc)) from None
    removed = list(dict.fromkeys(b for found in deleted for b in found))
    if not removed:
        typer.echo("no ACLs matched")
    for binding in removed:
        typer.echo(f"removed {describe_binding(binding)}")
