"""The ACL model without a broker: Kafka's StandardAuthorizer rules, filters, validation and
the durable store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.security._acl import (
    AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_NAME,
    INVALID_REQUEST,
    SUPPORTED_OPERATIONS,
    AclBinding,
    AclBindingFilter,
    AclIndex,
    AclOperation,
    Authorizer,
    PatternType,
    PermissionType,
    ResourceType,
    binding_problem,
    from_code,
    operations_bit_field,
    validate_bindings,
)
from headwater.security._acl_store import AclStore, CorruptAclFileError, acl_path

Op = AclOperation
TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
LITERAL = PatternType.LITERAL
PREFIXED = PatternType.PREFIXED
ALLOW = PermissionType.ALLOW
DENY = PermissionType.DENY
ALICE = "User:alice"
HOST = "10.0.0.1"


def acl(
    name: str = "orders",
    op: AclOperation = Op.READ,
    permission: PermissionType = ALLOW,
    *,
    principal: str = ALICE,
    host: str = "*",
    pattern: PatternType = LITERAL,
    resource_type: ResourceType = TOPIC,
) -> AclBinding:
    return AclBinding(resource_type, name, pattern, principal, host, op, permission)


def may(
    authorizer: Authorizer,
    op: AclOperation,
    name: str = "orders",
    *,
    principal: str = ALICE,
    host: str = HOST,
    resource_type: ResourceType = TOPIC,
) -> bool:
    return authorizer.authorize(principal, host, op, resource_type, name)


# -- the codes are Kafka's ---------------------------------------------------------------------


def test_wire_codes_are_kafkas() -> None:
    assert [int(t) for t in ResourceType] == list(range(8))
    assert (ResourceType.CLUSTER, ResourceType.USER) == (4, 7)
    assert (PatternType.MATCH, PatternType.LITERAL, PatternType.PREFIXED) == (2, 3, 4)
    assert (Op.ALL, Op.READ, Op.DESCRIBE, Op.IDEMPOTENT_WRITE, Op.DESCRIBE_TOKENS) == (
        2,
        3,
        8,
        12,
        14,
    )
    assert (PermissionType.DENY, PermissionType.ALLOW) == (2, 3)
    assert from_code(Op, 99) is Op.UNKNOWN and from_code(ResourceType, -3) is ResourceType.UNKNOWN


# -- the authorizer ----------------------------------------------------------------------------


def test_no_acl_denies_unless_allow_everyone_if_no_acl_found() -> None:
    assert not may(Authorizer(), Op.READ)
    assert may(Authorizer(allow_everyone_if_no_acl_found=True), Op.READ)


def test_allow_everyone_applies_only_to_resources_without_any_acl() -> None:
    authorizer = Authorizer([acl(principal="User:bob")], allow_everyone_if_no_acl_found=True)
    assert not may(authorizer, Op.READ)  # the topic has an ACL, just not for alice
    assert may(authorizer, Op.READ, "other")
    # A prefixed or wildcard ACL counts as an ACL on the resource too.
    prefixed = Authorizer(
        [acl("ord", principal="User:bob", pattern=PREFIXED)], allow_everyone_if_no_acl_found=True
    )
    assert not may(prefixed, Op.READ)
    wildcard = Authorizer([acl("*", Op.WRITE)], allow_everyone_if_no_acl_found=True)
    assert not may(wildcard, Op.READ, "anything")


def test_literal_allow_grants_only_that_name_operation_and_principal() -> None:
    authorizer = Authorizer([acl()])
    assert may(authorizer, Op.READ)
    assert not may(authorizer, Op.WRITE)
    assert not may(authorizer, Op.READ, "orders2")
    assert not may(authorizer, Op.READ, "order")
    assert not may(authorizer, Op.READ, principal="User:bob")
    assert not may(authorizer, Op.READ, resource_type=GROUP)


def test_deny_wins_over_allow() -> None:
    authorizer = Authorizer([acl(), acl(permission=DENY)])
    assert not may(authorizer, Op.READ)
    # A DENY reached through a wildcard or a prefix wins over a literal ALLOW just as well.
    assert not may(Authorizer([acl(), acl("*", permission=DENY)]), Op.READ)
    assert not may(Authorizer([acl(), acl("or", permission=DENY, pattern=PREFIXED)]), Op.READ)
    assert not may(Authorizer([acl(), acl(principal="User:*", permission=DENY)]), Op.READ)


def test_prefixed_applies_to_names_starting_with_it() -> None:
    authorizer = Authorizer([acl("ord", pattern=PREFIXED)])
    assert may(authorizer, Op.READ, "ord")
    assert may(authorizer, Op.READ, "orders")
    assert not may(authorizer, Op.READ, "or")
    assert not may(authorizer, Op.READ, "payments")
    # '*' in a prefixed binding is a plain character, not a wildcard.
    star = Authorizer([acl("*", pattern=PREFIXED)])
    assert may(star, Op.READ, "*x") and not may(star, Op.READ, "orders")


def test_wildcard_resource_applies_to_every_name_of_its_type() -> None:
    authorizer = Authorizer([acl("*")])
    assert may(authorizer, Op.READ, "orders")
    assert may(authorizer, Op.READ, "*")
    assert not may(authorizer, Op.READ, resource_type=GROUP)


def test_wildcard_principal_and_host() -> None:
    everyone = Authorizer([acl(principal="User:*")])
    assert may(everyone, Op.READ, principal="User:bob")
    # Kafka matches User:* for a caller of any principal type; only User:* is a wildcard.
    assert may(everyone, Op.READ, principal="Group:x")
    assert not may(Authorizer([acl(principal="Group:*")]), Op.READ, principal="Group:x")
    one_host = Authorizer([acl(host=HOST)])
    assert may(one_host, Op.READ)
    assert not may(one_host, Op.READ, host="10.0.0.2")
    assert may(Authorizer([acl(host="*")]), Op.READ, host="192.168.1.9")


def test_allow_of_read_write_delete_alter_implies_describe() -> None:
    for op in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.DESCRIBE):
        assert may(Authorizer([acl(op=op)]), Op.DESCRIBE), op
    for op in (Op.CREATE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS):
        assert not may(Authorizer([acl(op=op)]), Op.DESCRIBE), op
    # Implication goes one way only.
    assert not may(Authorizer([acl(op=Op.DESCRIBE)]), Op.READ)


def test_alter_configs_implies_describe_configs() -> None:
    assert may(Authorizer([acl(op=Op.ALTER_CONFIGS)]), Op.DESCRIBE_CONFIGS)
    assert not may(Authorizer([acl(op=Op.ALTER)]), Op.DESCRIBE_CONFIGS)
    assert not may(Authorizer([acl(op=Op.DESCRIBE_CONFIGS)]), Op.ALTER_CONFIGS)


def test_deny_implies_nothing_beyond_its_operation() -> None:
    # DENY READ leaves the DESCRIBE that an ALLOW ALL grants.
    authorizer = Authorizer([acl(op=Op.ALL), acl(op=Op.READ, permission=DENY)])
    assert not may(authorizer, Op.READ)
    assert may(authorizer, Op.DESCRIBE)
    # DENY DESCRIBE does not deny READ.
    authorizer = Authorizer([acl(op=Op.READ), acl(op=Op.DESCRIBE, permission=DENY)])
    assert may(authorizer, Op.READ)
    assert not may(authorizer, Op.DESCRIBE)
    # DENY ALTER_CONFIGS does not deny DESCRIBE_CONFIGS.
    authorizer = Authorizer(
        [acl(op=Op.DESCRIBE_CONFIGS), acl(op=Op.ALTER_CONFIGS, permission=DENY)]
    )
    assert may(authorizer, Op.DESCRIBE_CONFIGS)


def test_all_allows_and_denies_every_operation() -> None:
    allow_all = Authorizer([acl(op=Op.ALL)])
    deny_all = Authorizer([acl(op=Op.ALL), acl(op=Op.ALL, permission=DENY)])
    deny_all_over_reads = Authorizer([acl(op=Op.READ), acl(op=Op.ALL, permission=DENY)])
    for op in SUPPORTED_OPERATIONS[TOPIC]:
        assert may(allow_all, op), op
        assert not may(deny_all, op), op
        assert not may(deny_all_over_reads, op), op


def test_super_users_may_do_anything_even_against_deny() -> None:
    authorizer = Authorizer(
        [acl(principal="User:admin", op=Op.ALL, permission=DENY)],
        super_users=frozenset({"User:admin"}),
    )
    assert may(authorizer, Op.ALTER, principal="User:admin")
    assert may(
        authorizer,
        Op.CLUSTER_ACTION,
        CLUSTER_NAME,
        principal="User:admin",
        resource_type=ResourceType.CLUSTER,
    )
    assert not may(authorizer, Op.READ, principal="User:admin2")


def test_authorized_operations_and_bit_field() -> None:
    authorizer = Authorizer([acl(op=Op.WRITE), acl(op=Op.ALTER_CONFIGS)])
    ops = authorizer.authorized_operations(ALICE, HOST, TOPIC, "orders")
    assert ops == {Op.WRITE, Op.DESCRIBE, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS}
    assert operations_bit_field(ops) == (1 << 4) | (1 << 8) | (1 << 11) | (1 << 10)
    admin = Authorizer(super_users=frozenset({"User:admin"}))
    group_ops = admin.authorized_operations("User:admin", HOST, GROUP, "g")
    assert group_ops == SUPPORTED_OPERATIONS[GROUP]
    assert AUTHORIZED_OPERATIONS_OMITTED == -2147483648


def test_authorize_by_resource_type() -> None:
    def by_type(*bindings: AclBinding) -> bool:
        return Authorizer(bindings).authorize_by_resource_type(ALICE, HOST, Op.WRITE, TOPIC)

    assert not by_type()
    assert by_type(acl(op=Op.WRITE))
    assert by_type(acl("*", op=Op.ALL))
    assert not by_type(acl(op=Op.READ))  # no implied operations here
    assert not by_type(acl(op=Op.WRITE), acl(op=Op.WRITE, permission=DENY))
    assert not by_type(acl("orders", op=Op.WRITE), acl("or", Op.WRITE, DENY, pattern=PREFIXED))
    assert by_type(acl("orders", op=Op.WRITE), acl("x", Op.WRITE, DENY, pattern=PREFIXED))
    assert not by_type(acl("*", op=Op.WRITE), acl("*", op=Op.WRITE, permission=DENY))
    assert not by_type(acl(op=Op.WRITE), acl("*", op=Op.ALL, permission=DENY))


def test_index_changes_apply_to_the_next_check() -> None:
    index = AclIndex()
    authorizer = Authorizer(index)
    assert not may(authorizer, Op.READ)
    assert index.add(acl("ord", pattern=PREFIXED))
    assert not index.add(acl("ord", pattern=PREFIXED))
    assert len(index) == 1 and may(authorizer, Op.READ)
    assert index.remove(acl("ord", pattern=PREFIXED))
    assert not index.remove(acl("ord", pattern=PREFIXED))
    assert len(index) == 0 and not may(authorizer, Op.READ)


def test_a_check_walks_only_the_bindings_on_its_resource() -> None:
    index = AclIndex(acl(f"topic-{i}") for i in range(5000))
    index.add(acl("topic-1", pattern=PREFIXED, op=Op.WRITE))
    index.add(acl("*", op=Op.DESCRIBE))
    applicable = set(index.applicable(TOPIC, "topic-17"))
    assert applicable == {
        acl("topic-17"),
        acl("topic-1", pattern=PREFIXED, op=Op.WRITE),
        acl("*", op=Op.DESCRIBE),
    }


# -- filters -----------------------------------------------------------------------------------

BINDINGS = [
    acl("orders"),
    acl("*", Op.WRITE),
    acl("ord", Op.DESCRIBE, pattern=PREFIXED),
    acl("orders", Op.READ, DENY, principal="User:bob", host=HOST),
    acl("orders", pattern=PREFIXED),
    acl("payments"),
    acl("orders", resource_type=GROUP),
]


def select(**kwargs: object) -> set[AclBinding]:
    acl_filter = AclBindingFilter(**kwargs)  # type: ignore[arg-type]
    return {b for b in BINDINGS if acl_filter.matches(b)}


def test_filter_any_matches_everything() -> None:
    assert select() == set(BINDINGS)
    assert select(resource_type=GROUP) == {BINDINGS[6]}


def test_filter_any_pattern_matches_the_name_exactly_in_every_pattern_type() -> None:
    assert select(resource_type=TOPIC, resource_name="orders") == {
        BINDINGS[0],
        BINDINGS[3],
        BINDINGS[4],
    }


def test_filter_with_a_pattern_type_matches_that_type_and_name_only() -> None:
    assert select(resource_name="orders", pattern_type=LITERAL) == {
        BINDINGS[0],
        BINDINGS[3],
        BINDINGS[6],
    }
    assert select(resource_name="orders", pattern_type=PREFIXED) == {BINDINGS[4]}
    assert select(pattern_type=PREFIXED) == {BINDINGS[2], BINDINGS[4]}


def test_filter_match_selects_what_applies_to_the_name() -> None:
    applies = select(resource_type=TOPIC, resource_name="orders", pattern_type=PatternType.MATCH)
    assert applies == {BINDINGS[0], BINDINGS[1], BINDINGS[2], BINDINGS[3], BINDINGS[4]}
    # Without a name MATCH is any pattern type.
    assert select(pattern_type=PatternType.MATCH) == set(BINDINGS)


def test_filter_entry_fields() -> None:
    assert select(principal="User:bob") == {BINDINGS[3]}
    assert select(host=HOST) == {BINDINGS[3]}
    assert select(permission=DENY) == {BINDINGS[3]}
    assert select(operation=Op.WRITE) == {BINDINGS[1]}
    # A filter's principal is matched exactly: User:* is not a wildcard here.
    assert select(principal="User:*") == set()


def test_filter_with_unknown_is_refused() -> None:
    assert AclBindingFilter().problem() is None
    assert AclBindingFilter(operation=Op.UNKNOWN).problem() is not None
    assert AclBindingFilter(resource_type=ResourceType.UNKNOWN).problem() is not None


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        (acl(resource_type=ResourceType.ANY), "Invalid resourceType ANY"),
        (acl(resource_type=ResourceType.UNKNOWN), "Invalid resourceType UNKNOWN"),
        (acl(pattern=PatternType.MATCH), "Invalid patternType MATCH"),
        (acl(pattern=PatternType.ANY), "Invalid patternType ANY"),
        (acl(op=Op.ANY), "Invalid operation ANY"),
        (acl(op=Op.UNKNOWN), "Invalid operation UNKNOWN"),
        (acl(permission=PermissionType.ANY), "Invalid permissionType ANY"),
        (acl(""), "Invalid empty resource name"),
        (acl(principal="alice"), "Could not parse principal from `alice`"),
        (
            acl("my-cluster", resource_type=ResourceType.CLUSTER),
            "The only valid name for the CLUSTER resource is kafka-cluster",
        ),
    ],
)
def test_invalid_bindings_are_refused_with_kafkas_message(
    binding: AclBinding, message: str
) -> None:
    problem = binding_problem(binding)
    assert problem is not None and problem.startswith(message)
    assert validate_bindings([acl(), binding]) == [(0, None), (INVALID_REQUEST, problem)]


def test_valid_bindings_pass() -> None:
    for binding in (
        acl(),
        acl("o", pattern=PREFIXED),
        acl(CLUSTER_NAME, Op.IDEMPOTENT_WRITE, resource_type=ResourceType.CLUSTER),
        acl("User:bob", Op.CREATE_TOKENS, resource_type=ResourceType.USER),
        acl(principal="User:"),  # Kafka only insists on the colon
    ):
        assert binding_problem(binding) is None, binding


# -- properties --------------------------------------------------------------------------------

names = st.sampled_from(["orders", "ord", "o", "*", "payments", "orders-eu"])
principals = st.sampled_from([ALICE, "User:bob", "User:*"])
hosts = st.sampled_from(["*", HOST, "10.0.0.2"])
concrete_ops = st.sampled_from([op for op in Op if op not in (Op.UNKNOWN, Op.ANY)])
bindings = st.builds(
    AclBinding,
    st.sampled_from([TOPIC, GROUP]),
    names,
    st.sampled_from([LITERAL, PREFIXED]),
    principals,
    hosts,
    concrete_ops,
    st.sampled_from([ALLOW, DENY]),
)
checks = st.tuples(
    st.sampled_from([ALICE, "User:bob"]),
    st.sampled_from([HOST, "10.0.0.2"]),
    st.sampled_from(sorted(SUPPORTED_OPERATIONS[TOPIC])),
    st.sampled_from([TOPIC, GROUP]),
    names,
)


@given(st.lists(bindings, max_size=12), bindings, checks, st.booleans())
def test_adding_a_deny_never_turns_a_denied_check_into_allowed(
    existing: list[AclBinding],
    extra: AclBinding,
    check: tuple[str, str, AclOperation, ResourceType, str],
    allow_everyone: bool,
) -> None:
    deny = AclBinding(
        extra.resource_type,
        extra.resource_name,
        extra.pattern_type,
        extra.principal,
        extra.host,
        extra.operation,
        DENY,
    )
    before = Authorizer(existing, allow_everyone_if_no_acl_found=allow_everyone)
    after = Authorizer([*existing, deny], allow_everyone_if_no_acl_found=allow_everyone)
    if not before.authorize(*check):
        assert not after.authorize(*check)
    # A DENY that matches the check denies it, whatever else there is.
    principal, host, op, resource_type, name = check
    matching = AclBinding(resource_type, name, LITERAL, principal, host, op, DENY)
    assert not Authorizer([*existing, matching]).authorize(*check)


@given(st.lists(bindings, max_size=12), checks)
def test_index_agrees_with_a_scan_of_every_binding(
    existing: list[AclBinding], check: tuple[str, str, AclOperation, ResourceType, str]
) -> None:
    _, _, _, resource_type, name = check
    match = AclBindingFilter(resource_type, name, PatternType.MATCH)
    scanned = {b for b in existing if match.matches(b)}
    assert set(AclIndex(existing).applicable(resource_type, name)) == scanned


# -- the store ---------------------------------------------------------------------------------


def test_store_is_durable_across_reopen(tmp_path: Path) -> None:
    path = acl_path(tmp_path)
    assert path == tmp_path / "__meta" / "acls.json"
    store = AclStore(path)
    assert store.describe(AclBindingFilter()) == []
    results = store.create([acl(), acl("ord", pattern=PREFIXED), acl(""), acl()])
    assert [code for code, _ in results] == [0, 0, INVALID_REQUEST, 0]
    assert len(store) == 2
    reopened = AclStore(path)
    assert reopened.describe(AclBindingFilter()) == store.describe(AclBindingFilter())
    assert reopened.authorizer().authorize(ALICE, HOST, Op.READ, TOPIC, "orders")
    deleted = reopened.delete(
        [AclBindingFilter(pattern_type=PREFIXED), AclBindingFilter(resource_name="ord")]
    )
    assert deleted == [[acl("ord", pattern=PREFIXED)], [acl("ord", pattern=PREFIXED)]]
    assert AclStore(path).describe(AclBindingFilter()) == [acl()]
    assert json.loads(path.read_text())["acls"][0]["operation"] == "READ"


def test_store_authorizer_sees_later_changes(tmp_path: Path) -> None:
    store = AclStore(acl_path(tmp_path))
    authorizer = store.authorizer(frozenset({"User:admin"}), allow_everyone_if_no_acl_found=False)
    assert not may(authorizer, Op.READ)
    store.create([acl()])
    assert may(authorizer, Op.READ)
    store.delete([AclBindingFilter()])
    assert not may(authorizer, Op.READ)
    assert may(authorizer, Op.READ, principal="User:admin")


def test_store_bounds_its_size(tmp_path: Path) -> None:
    store = AclStore(acl_path(tmp_path), bindings_max=2)
    results = store.create([acl("a"), acl("b"), acl("c"), acl("a")])
    assert [code for code, _ in results] == [0, 0, INVALID_REQUEST, 0]
    assert "at most 2" in (results[2][1] or "")


def test_store_write_failure_changes_nothing(tmp_path: Path) -> None:
    store = AclStore(tmp_path / "missing-parent-is-a-file" / "acls.json")
    (tmp_path / "missing-parent-is-a-file").write_text("not a directory")
    results = store.create([acl(), acl("")])
    assert results[0][0] == -1 and "cannot write" in (results[0][1] or "")
    assert results[1][0] == INVALID_REQUEST
    assert len(store) == 0


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 1}',
        '{"version": 9, "acls": []}',
        '{"version": 1, "acls": [{"resource_type": "TOPIC"}]}',
        '{"version": 1, "acls": [7]}',
        json.dumps({"version": 1, "acls": [{**acl().to_json(), "operation": "FLY"}]}),
        json.dumps({"version": 1, "acls": [{**acl().to_json(), "resource_name": ""}]}),
        json.dumps({"version": 1, "acls": [{**acl().to_json(), "host": 3}]}),
    ],
)
def test_corrupt_file_raises_naming_the_file(tmp_path: Path, content: str) -> None:
    path = acl_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(CorruptAclFileError, match=r"acls\.json"):
        AclStore(path)
