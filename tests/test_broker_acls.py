"""DescribeAcls, CreateAcls and DeleteAcls against a real broker: confluent-kafka's and
kafka-python's admin clients, raw requests of every version, a restart, and the
``headwater acls`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AclBinding as CkBinding
from confluent_kafka.admin import AclBindingFilter as CkFilter
from confluent_kafka.admin import (
    AclOperation as CkOp,
)
from confluent_kafka.admin import (
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
)
from confluent_kafka.admin import ResourceType as CkType
from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpType

import rawkafka
from headwater.client import AclAdmin, AdminError
from headwater.security._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)
from headwater.testing import embedded_broker

DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
INVALID_REQUEST = 42
TIMEOUT_S = 30


def binding(
    name: str,
    op: AclOperation = AclOperation.READ,
    permission: PermissionType = PermissionType.ALLOW,
    *,
    principal: str = "User:alice",
    pattern: PatternType = PatternType.LITERAL,
    resource_type: ResourceType = ResourceType.TOPIC,
    host: str = "*",
) -> AclBinding:
    return AclBinding(resource_type, name, pattern, principal, host, op, permission)


def test_apis_are_advertised_with_versions_1_to_3(bootstrap: str) -> None:
    with rawkafka.connect(bootstrap) as sock:
        response = rawkafka.call(sock, 18, 3, {"client_software_name": "t"})
    versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    for api_key in (DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS):
        assert versions[api_key] == (1, 3)


def test_confluent_kafka_create_describe_delete(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    read = CkBinding(
        CkType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
        CkOp.READ, AclPermissionType.ALLOW,
    )  # fmt: skip
    prefixed = CkBinding(
        CkType.TOPIC, "ord", ResourcePatternType.PREFIXED, "User:bob", "*",
        CkOp.WRITE, AclPermissionType.ALLOW,
    )  # fmt: skip
    group = CkBinding(
        CkType.GROUP, "g1", ResourcePatternType.LITERAL, "User:alice", "10.0.0.1",
        CkOp.READ, AclPermissionType.DENY,
    )  # fmt: skip
    cluster = CkBinding(
        CkType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:alice", "*",
        CkOp.IDEMPOTENT_WRITE, AclPermissionType.ALLOW,
    )  # fmt: skip
    for future in admin.create_acls([read, prefixed, group, cluster]).values():
        assert future.result(timeout=TIMEOUT_S) is None

    def describe(acl_filter: CkFilter) -> set[CkBinding]:
        return set(admin.describe_acls(acl_filter).result(timeout=TIMEOUT_S))

    everything = CkFilter(
        CkType.ANY, None, ResourcePatternType.ANY, None, None, CkOp.ANY, AclPermissionType.ANY
    )
    assert describe(everything) == {read, prefixed, group, cluster}
    matching = CkFilter(
        CkType.TOPIC, "orders", ResourcePatternType.MATCH, None, None, CkOp.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    assert describe(matching) == {read, prefixed}
    by_principal = CkFilter(
        CkType.ANY, None, ResourcePatternType.ANY, "User:alice", None, CkOp.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    assert describe(by_principal) == {read, group, cluster}
    denies = CkFilter(
        CkType.ANY, None, ResourcePatternType.ANY, None, None, CkOp.ANY, AclPermissionType.DENY
    )
    assert describe(denies) == {group}

    prefixed_only = CkFilter(
        CkType.TOPIC, None, ResourcePatternType.PREFIXED, None, None, CkOp.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    deleted = admin.delete_acls([prefixed_only, denies])
    assert deleted[prefixed_only].result(timeout=TIMEOUT_S) == [prefixed]
    assert deleted[denies].result(timeout=TIMEOUT_S) == [group]
    assert describe(everything) == {read, cluster}


def test_headwater_client_helpers(bootstrap: str) -> None:
    admin = AclAdmin(bootstrap)
    created = [binding("orders"), binding("pay", AclOperation.WRITE, pattern=PatternType.PREFIXED)]
    admin.create(created)
    assert admin.describe() == sorted(created, key=lambda b: (b.resource_name, b.pattern_type))
    assert admin.describe(AclBindingFilter(resource_name="orders")) == [created[0]]
    with pytest.raises(AdminError, match="no colon") as refused:
        admin.create([binding("x", principal="alice"), binding("y")])
    assert refused.value.code == INVALID_REQUEST
    assert binding("y") in admin.describe()  # the valid one of the batch was created
    deleted = admin.delete(
        [AclBindingFilter(pattern_type=PatternType.PREFIXED), AclBindingFilter()]
    )
    assert deleted[0] == [created[1]]
    assert set(deleted[1]) == {created[0], created[1], binding("y")}
    assert admin.describe() == []
    with pytest.raises(AdminError, match="USER"):
        admin.create([binding("bob", AclOperation.CREATE_TOKENS, resource_type=ResourceType.USER)])


def test_kafka_python_create_describe_delete(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        topic_acl = ACL(
            principal="User:carol",
            host="*",
            operation=ACLOperation.WRITE,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(KpType.TOPIC, "kp-orders"),
        )
        txn_acl = ACL(
            principal="User:carol",
            host="*",
            operation=ACLOperation.DESCRIBE,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                KpType.TRANSACTIONAL_ID, "kp-", ACLResourcePatternType.PREFIXED
            ),
        )
        bad = ACL(
            principal="carol",
            host="*",
            operation=ACLOperation.READ,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(KpType.TOPIC, "kp-orders"),
        )
        result = admin.create_acls([topic_acl, txn_acl, bad])
        assert result["succeeded"] == [topic_acl, txn_acl]
        assert [e.errno for e in result["failed"]] == [INVALID_REQUEST]

        any_filter = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KpType.ANY, None, ACLResourcePatternType.ANY),
        )
        acls, error = admin.describe_acls(any_filter)
        assert error.errno == 0
        assert set(acls) == {topic_acl, txn_acl}
        txn_filter = ACLFilter(
            principal="User:carol",
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(
                KpType.TRANSACTIONAL_ID, "kp-app", ACLResourcePatternType.MATCH
            ),
        )
        acls, _ = admin.describe_acls(txn_filter)
        assert acls == [txn_acl]

        results = admin.delete_acls([txn_filter])
        [(returned_filter, deleted, error)] = results
        assert returned_filter is txn_filter and deleted == [txn_acl] and error.errno == 0
        acls, _ = admin.describe_acls(any_filter)
        assert acls == [topic_acl]
    finally:
        admin.close()


CREATIONS = [
    {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3,
     "principal": "User:a", "host": "*", "operation": 3, "permission_type": 3},
]  # fmt: skip


def _creation(**changes: object) -> dict[str, object]:
    return {**CREATIONS[0], **changes}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_each_invalid_binding_gets_its_own_error(bootstrap: str, version: int) -> None:
    creations = [
        _creation(),
        _creation(resource_name=""),
        _creation(principal="nocolon"),
        _creation(resource_type=1),  # ANY
        _creation(resource_type=0),  # UNKNOWN
        _creation(resource_type=77),  # a code Kafka does not know is UNKNOWN
        _creation(resource_pattern_type=2),  # MATCH
        _creation(resource_pattern_type=1),  # ANY
        _creation(operation=1),  # ANY
        _creation(permission_type=1),  # ANY
        _creation(resource_type=4, resource_name="my-cluster"),
        _creation(resource_type=4, resource_name="kafka-cluster", operation=9),
    ]
    with rawkafka.connect(bootstrap) as sock:
        response = rawkafka.call(sock, CREATE_ACLS, version, {"creations": creations})
        codes = [int(r.error_code) for r in response.results]
        assert codes == [0, *[INVALID_REQUEST] * 10, 0]
        messages = [r.error_message for r in response.results]
        assert messages[0] is None and messages[-1] is None
        assert messages[1] == "Invalid empty resource name"
        assert messages[2].startswith("Could not parse principal from `nocolon`")
        assert messages[3] == "Invalid resourceType ANY"
        assert messages[5] == "Invalid resourceType UNKNOWN"
        assert messages[6] == "Invalid patternType MATCH"
        assert "kafka-cluster" in messages[10]
        described = rawkafka.call(
            sock,
            DESCRIBE_ACLS,
            version,
            {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
             "permission_type": 1},
        )  # fmt: skip
        assert int(described.error_code) == 0
        resources = {(r.resource_type, r.resource_name) for r in described.resources}
        assert resources == {(2, "t"), (4, "kafka-cluster")}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_unknown_filters_are_refused(bootstrap: str, version: int) -> None:
    with rawkafka.connect(bootstrap) as sock:
        rawkafka.call(sock, CREATE_ACLS, version, {"creations": CREATIONS})
        described = rawkafka.call(
            sock, DESCRIBE_ACLS, version, {"resource_type_filter": 1, "pattern_type_filter": 1,
                                           "operation": 0, "permission_type": 1},
        )  # fmt: skip
        assert int(described.error_code) == INVALID_REQUEST and described.resources == ()
        any_filter = {"resource_type_filter": 1, "pattern_type_filter": 1, "operation": 1,
                      "permission_type": 1}  # fmt: skip
        deleted = rawkafka.call(
            sock,
            DELETE_ACLS,
            version,
            {"filters": [{**any_filter, "permission_type": 0}, any_filter]},
        )
        first, second = deleted.filter_results
        assert int(first.error_code) == INVALID_REQUEST and first.matching_acls == ()
        assert int(second.error_code) == 0
        assert [(m.resource_name, m.principal) for m in second.matching_acls] == [("t", "User:a")]


def test_acls_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kept = [binding("orders"), binding("g", resource_type=ResourceType.GROUP)]
    with embedded_broker(data) as running:
        admin = AclAdmin(running.bootstrap)
        admin.create([*kept, binding("gone")])
        admin.delete([AclBindingFilter(resource_name="gone")])
    assert (data / "__meta" / "acls.json").is_file()
    with embedded_broker(data) as running:
        assert set(AclAdmin(running.bootstrap).describe()) == set(kept)


def hw(bootstrap: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", "acls", *args, "-b", bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_add_list_remove(bootstrap: str) -> None:
    added = hw(
        bootstrap, "add", "--allow-principal", "User:alice", "--operation", "Read",
        "--operation", "describe", "--topic", "orders", "--group", "billing",
    )  # fmt: skip
    assert added.stdout.count("added ALLOW User:alice") == 4
    hw(
        bootstrap, "add", "--deny-principal", "User:mallory", "--deny-host", "10.9.9.9",
        "--operation", "Write", "--topic", "ord", "--resource-pattern-type", "prefixed",
    )  # fmt: skip
    hw(bootstrap, "add", "--allow-principal", "User:ops", "--cluster", "--operation", "Alter")

    listed = json.loads(hw(bootstrap, "list", "--json").stdout)
    assert len(listed) == 6
    assert {
        "resource_type": "TOPIC",
        "resource_name": "ord",
        "pattern_type": "PREFIXED",
        "principal": "User:mallory",
        "host": "10.9.9.9",
        "operation": "WRITE",
        "permission": "DENY",
    } in listed
    matching = json.loads(
        hw(
            bootstrap, "list", "--topic", "orders", "--resource-pattern-type", "match", "--json"
        ).stdout
    )
    assert {(b["resource_name"], b["operation"]) for b in matching} == {
        ("orders", "READ"),
        ("orders", "DESCRIBE"),
        ("ord", "WRITE"),
    }
    table = hw(bootstrap, "list", "--principal", "User:ops").stdout
    assert "kafka-cluster" in table and "ALTER" in table and "orders" not in table

    removed = hw(
        bootstrap, "remove", "--allow-principal", "User:alice", "--operation", "Read",
        "--topic", "orders", "--force",
    )  # fmt: skip
    assert removed.stdout.strip() == "removed ALLOW User:alice from * READ on TOPIC:LITERAL:orders"
    hw(bootstrap, "remove", "--group", "billing", "--force")
    remaining = json.loads(hw(bootstrap, "list", "--json").stdout)
    assert {(b["resource_name"], b["operation"]) for b in remaining} == {
        ("orders", "DESCRIBE"),
        ("ord", "WRITE"),
        ("kafka-cluster", "ALTER"),
    }
    assert hw(bootstrap, "list", "--group", "billing").stdout.strip() == "no ACLs match"


def test_cli_refuses_what_kafka_acls_refuses(bootstrap: str) -> None:
    no_principal = hw(bootstrap, "add", "--topic", "t", ok=False)
    assert no_principal.returncode == 1 and "--allow-principal" in no_principal.stderr
    no_resource = hw(bootstrap, "add", "--allow-principal", "User:a", ok=False)
    assert "--topic" in no_resource.stderr
    bad_principal = hw(bootstrap, "add", "--allow-principal", "alice", "--topic", "t", ok=False)
    assert "Type:name" in bad_principal.stderr
    wrong_op = hw(
        bootstrap, "add", "--allow-principal", "User:a", "--group", "g", "--operation", "Write",
        ok=False,
    )  # fmt: skip
    assert "GROUP supports only" in wrong_op.stderr
    match_add = hw(
        bootstrap, "add", "--allow-principal", "User:a", "--topic", "t",
        "--resource-pattern-type", "match", ok=False,
    )  # fmt: skip
    assert match_add.returncode == 2 and "'prefixed'" in match_add.stderr
    assert json.loads(hw(bootstrap, "list", "--json").stdout) == []


def test_cli_help_describes_every_option() -> None:
    for command in ("add", "list", "remove"):
        result = subprocess.run(
            [sys.executable, "-m", "headwater", "acls", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "--bootstrap" in result.stdout and "--topic" in result.stdout


def test_confluent_reports_per_binding_errors(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    bad = CkBinding(
        CkType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:a", "*",
        CkOp.ALTER, AclPermissionType.ALLOW,
    )  # fmt: skip
    [future] = admin.create_acls([bad]).values()
    with pytest.raises(KafkaException) as refused:
        future.result(timeout=TIMEOUT_S)
    assert refused.value.args[0].code() == INVALID_REQUEST
