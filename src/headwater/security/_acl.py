"""Kafka's ACL model and its matcher, as Apache Kafka's ``StandardAuthorizer`` applies it.

The codes are Kafka's wire codes, so bindings travel through CreateAcls, DescribeAcls and
DeleteAcls unchanged. The rules, in the order the authorizer applies them:

1. a super user (``User:admin`` in ``super_users``) may do anything;
2. the bindings that apply to a resource are those on its literal name, on the wildcard
   literal ``*`` and on every PREFIXED name the resource name starts with;
3. of those, a binding matches a request when its principal is the caller or ``User:*``, its
   host is the caller's address or ``*``, and its operation is the requested one or ALL;
   an ALLOW of READ, WRITE, DELETE or ALTER also matches DESCRIBE, an ALLOW of ALTER_CONFIGS
   also matches DESCRIBE_CONFIGS (a DENY implies nothing beyond its own operation);
4. any matching DENY denies; otherwise any matching ALLOW allows;
5. with no binding on the resource at all, ``allow_everyone_if_no_acl_found`` decides.

Bindings are indexed by (resource type, literal name) and by prefix length, so one check
costs the bindings on that resource, not every binding the broker holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
# The one name of the CLUSTER resource (Kafka's ``Resource.CLUSTER_NAME``).
CLUSTER_NAME = "kafka-cluster"

NONE = 0
INVALID_REQUEST = 42
# Metadata and DescribeGroups answer this when the client did not ask for the bit set.
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class PermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


_E = TypeVar("_E", bound=IntEnum)


def from_code(enum: type[_E], code: int | None) -> _E:
    """``enum``'s member for a wire code; a code it does not know is UNKNOWN, as in Kafka."""
    if code is None:
        return enum(0)
    try:
        return enum(code)
    except ValueError:
        return enum(0)


# Operations an ALLOW binding grants besides its own (Kafka's IMPLIES_DESCRIBE and
# IMPLIES_DESCRIBE_CONFIGS, read the other way round).
_IMPLIED_BY: dict[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset(
        {
            AclOperation.DESCRIBE,
            AclOperation.READ,
            AclOperation.WRITE,
            AclOperation.DELETE,
            AclOperation.ALTER,
        }
    ),
    AclOperation.DESCRIBE_CONFIGS: frozenset(
        {AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}
    ),
}

_OP = AclOperation
# What each resource type supports (Kafka's ``AclEntry.supportedOperations``): the
# authorized-operations bit sets of Metadata, DescribeGroups and DescribeCluster hold these.
SUPPORTED_OPERATIONS: dict[ResourceType, frozenset[AclOperation]] = {
    ResourceType.TOPIC: frozenset(
        {
            _OP.READ,
            _OP.WRITE,
            _OP.CREATE,
            _OP.DESCRIBE,
            _OP.DELETE,
            _OP.ALTER,
            _OP.DESCRIBE_CONFIGS,
            _OP.ALTER_CONFIGS,
        }
    ),
    ResourceType.GROUP: frozenset(
        {_OP.READ, _OP.DESCRIBE, _OP.DELETE, _OP.DESCRIBE_CONFIGS, _OP.ALTER_CONFIGS}
    ),
    ResourceType.CLUSTER: frozenset(
        {
            _OP.CREATE,
            _OP.CLUSTER_ACTION,
            _OP.DESCRIBE_CONFIGS,
            _OP.ALTER_CONFIGS,
            _OP.IDEMPOTENT_WRITE,
            _OP.ALTER,
            _OP.DESCRIBE,
        }
    ),
    ResourceType.TRANSACTIONAL_ID: frozenset({_OP.DESCRIBE, _OP.WRITE}),
    ResourceType.DELEGATION_TOKEN: frozenset({_OP.DESCRIBE}),
    ResourceType.USER: frozenset({_OP.CREATE_TOKENS, _OP.DESCRIBE_TOKENS}),
}


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: who (principal, host) may or may not do what (operation) to which resources."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: PermissionType

    def to_json(self) -> dict[str, str]:
        """The binding with Kafka's enum names, as acls.json and ``acls list --json`` hold it."""
        return {
            "resource_type": self.resource_type.name,
            "resource_name": self.resource_name,
            "pattern_type": self.pattern_type.name,
            "principal": self.principal,
            "host": self.host,
            "operation": self.operation.name,
            "permission": self.permission.name,
        }

    @classmethod
    def from_json(cls, value: Any) -> AclBinding:
        """The inverse of ``to_json``; raises ValueError on anything else."""
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        try:
            strings = {k: value[k] for k in ("resource_name", "principal", "host")}
            binding = cls(
                resource_type=ResourceType[value["resource_type"]],
                resource_name=strings["resource_name"],
                pattern_type=PatternType[value["pattern_type"]],
                principal=strings["principal"],
                host=strings["host"],
                operation=AclOperation[value["operation"]],
                permission=PermissionType[value["permission"]],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or unknown field {exc}") from None
        if not all(isinstance(s, str) for s in strings.values()):
            raise ValueError("resource_name, principal and host must be strings")
        return binding


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """Which bindings DescribeAcls and DeleteAcls act on (Kafka's ``AclBindingFilter``).

    ANY matches any value and None any string. Pattern type MATCH with a name selects the
    bindings that would apply to a resource of that name: its literal, the wildcard literal
    ``*`` and every prefix of it; with another pattern type the name must be equal.
    """

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: PermissionType = PermissionType.ANY

    def problem(self) -> str | None:
        """Why Kafka refuses this filter (an UNKNOWN in it), or None."""
        for value in (self.resource_type, self.pattern_type, self.operation, self.permission):
            if value == 0:
                return f"the filter's {type(value).__name__} is UNKNOWN"
        return None

    def matches(self, binding: AclBinding) -> bool:
        return self._matches_pattern(binding) and self._matches_entry(binding)

    def _matches_pattern(self, binding: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, binding.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, binding.pattern_type):
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type in (PatternType.ANY, binding.pattern_type):
            return self.resource_name == binding.resource_name
        # MATCH: the bindings that would apply to a resource called resource_name.
        if binding.pattern_type == PatternType.LITERAL:
            return binding.resource_name in (self.resource_name, WILDCARD)
        if binding.pattern_type == PatternType.PREFIXED:
            return self.resource_name.startswith(binding.resource_name)
        return False

    def _matches_entry(self, binding: AclBinding) -> bool:
        if self.principal is not None and self.principal != binding.principal:
            return False
        if self.host is not None and self.host != binding.host:
            return False
        if self.operation not in (AclOperation.ANY, binding.operation):
            return False
        return self.permission in (PermissionType.ANY, binding.permission)


def binding_problem(binding: AclBinding) -> str | None:
    """Why Kafka's CreateAcls refuses ``binding`` (INVALID_REQUEST), or None.

    Kafka's broker checks the CLUSTER name and the empty name first (``AclApis``), then the
    controller the codes and the principal (``AclControlManager.validateNewAcl``); the
    messages are Kafka's.
    """
    if binding.resource_type == ResourceType.CLUSTER and binding.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not binding.resource_name:
        return "Invalid empty resource name"
    if binding.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return f"Invalid resourceType {binding.resource_type.name}"
    if binding.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {binding.pattern_type.name}"
    if binding.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        return f"Invalid operation {binding.operation.name}"
    if binding.permission not in (PermissionType.DENY, PermissionType.ALLOW):
        return f"Invalid permissionType {binding.permission.name}"
    if ":" not in binding.principal:
        return (
            f"Could not parse principal from `{binding.principal}` (no colon is present "
            "separating the principal type from the principal name)"
        )
    return None


def validate_bindings(bindings: Iterable[AclBinding]) -> list[tuple[int, str | None]]:
    """(error code, message) per binding, as CreateAcls answers: (0, None) when valid."""
    out: list[tuple[int, str | None]] = []
    for binding in bindings:
        problem = binding_problem(binding)
        out.append((NONE, None) if problem is None else (INVALID_REQUEST, problem))
    return out


class AclIndex:
    """The current bindings, indexed by resource. Mutated by one owner (the ACL store)."""

    def __init__(self, bindings: Iterable[AclBinding] = ()) -> None:
        # (resource type, name) -> bindings, for LITERAL names (the wildcard ``*`` included).
        self._literal: dict[tuple[ResourceType, str], set[AclBinding]] = {}
        self._prefixed: dict[tuple[ResourceType, str], set[AclBinding]] = {}
        # How many prefixed names of each length each resource type has, so a check looks up
        # only the prefix lengths in use rather than every prefix of the resource name.
        self._prefix_lengths: dict[ResourceType, Counter[int]] = {}
        self._count = 0
        for binding in bindings:
            self.add(binding)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, binding: object) -> bool:
        if not isinstance(binding, AclBinding):
            return False
        return binding in self._table(binding).get(_key(binding), ())

    def __iter__(self) -> Iterator[AclBinding]:
        for table in (self._literal, self._prefixed):
            for bindings in table.values():
                yield from bindings

    def _table(self, binding: AclBinding) -> dict[tuple[ResourceType, str], set[AclBinding]]:
        assert binding.pattern_type in (PatternType.LITERAL, PatternType.PREFIXED), binding
        return self._literal if binding.pattern_type == PatternType.LITERAL else self._prefixed

    def add(self, binding: AclBinding) -> bool:
        """Add ``binding``; False when it was already there (creating it again is a no-op)."""
        bucket = self._table(binding).setdefault(_key(binding), set())
        if binding in bucket:
            return False
        bucket.add(binding)
        self._count += 1
        if binding.pattern_type == PatternType.PREFIXED:
            lengths = self._prefix_lengths.setdefault(binding.resource_type, Counter())
            lengths[len(binding.resource_name)] += 1
        return True

    def remove(self, binding: AclBinding) -> bool:
        table = self._table(binding)
        bucket = table.get(_key(binding))
        if bucket is None or binding not in bucket:
            return False
        bucket.discard(binding)
        if not bucket:
            del table[_key(binding)]
        self._count -= 1
        if binding.pattern_type == PatternType.PREFIXED:
            lengths = self._prefix_lengths[binding.resource_type]
            lengths[len(binding.resource_name)] -= 1
            if not lengths[len(binding.resource_name)]:
                del lengths[len(binding.resource_name)]
        return True

    def applicable(self, resource_type: ResourceType, name: str) -> Iterator[AclBinding]:
        """The bindings that apply to the resource: its literal, ``*`` and its prefixes."""
        yield from self._literal.get((resource_type, name), ())
        if name != WILDCARD:
            yield from self._literal.get((resource_type, WILDCARD), ())
        for length in self._prefix_lengths.get(resource_type, {}):
            if length <= len(name):
                yield from self._prefixed.get((resource_type, name[:length]), ())

    def matching(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        """The bindings ``acl_filter`` selects, in a stable order."""
        return sorted((b for b in self if acl_filter.matches(b)), key=sort_key)


def _key(binding: AclBinding) -> tuple[ResourceType, str]:
    return binding.resource_type, binding.resource_name


def sort_key(binding: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    return (
        binding.resource_type,
        binding.resource_name,
        binding.pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission,
    )


def _grants(binding: AclBinding, operation: AclOperation) -> bool:
    """Whether ``binding``'s operation covers ``operation`` (Kafka's ``findResult``)."""
    if binding.operation in (AclOperation.ALL, operation):
        return True
    if binding.permission != PermissionType.ALLOW:
        return False
    implied = _IMPLIED_BY.get(operation)
    return implied is not None and binding.operation in implied


class Authorizer:
    """Answers "may this principal from this host do this to this resource?" over an index.

    It reads the index live: bindings added to or removed from it apply to the next check.
    """

    def __init__(
        self,
        bindings: AclIndex | Iterable[AclBinding] = (),
        *,
        super_users: frozenset[str] = frozenset(),
        allow_everyone_if_no_acl_found: bool = False,
    ) -> None:
        self.index = bindings if isinstance(bindings, AclIndex) else AclIndex(bindings)
        self.super_users = super_users
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found

    def authorize(
        self,
        principal: str,
        host: str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: str,
    ) -> bool:
        assert operation not in (AclOperation.UNKNOWN, AclOperation.ANY), operation
        assert resource_type not in (ResourceType.UNKNOWN, ResourceType.ANY), resource_type
        if principal in self.super_users:
            return True
        allowed = False
        has_resource_acls = False
        for binding in self.index.applicable(resource_type, resource_name):
            has_resource_acls = True
            if binding.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if binding.host not in (host, WILDCARD):
                continue
            if not _grants(binding, operation):
                continue
            if binding.permission == PermissionType.DENY:
                return False
            allowed = True
        if allowed:
            return True
        return not has_resource_acls and self.allow_everyone_if_no_acl_found

    def authorized_operations(
        self, principal: str, host: str, resource_type: ResourceType, resource_name: str
    ) -> set[AclOperation]:
        """The operations of the resource type that the principal may perform on it."""
        return {
            op
            for op in SUPPORTED_OPERATIONS[resource_type]
            if self.authorize(principal, host, op, resource_type, resource_name)
        }

    def authorize_by_resource_type(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        """Whether the principal may do ``operation`` to at least one resource of the type.

        Kafka's ``Authorizer.authorizeByResourceType``, which InitProducerId and Produce use
        for idempotent producers without IDEMPOTENT_WRITE on the cluster (WRITE on any
        topic will do). Implied operations do not count here, as in Kafka.
        """
        # A made-up name first, as Kafka does: super users, the wildcard and the default.
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        deny_literal: set[str] = set()
        deny_prefixed: set[str] = set()
        allow_literal: set[str] = set()
        allow_prefixed: set[str] = set()
        wildcard_allow = False
        for binding in self.index:
            if binding.resource_type != resource_type:
                continue
            if binding.host not in (host, WILDCARD):
                continue
            if binding.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if binding.operation not in (operation, AclOperation.ALL):
                continue
            literal = binding.pattern_type == PatternType.LITERAL
            if binding.permission == PermissionType.DENY:
                if literal and binding.resource_name == WILDCARD:
                    return False
                (deny_literal if literal else deny_prefixed).add(binding.resource_name)
                continue
            if literal and binding.resource_name == WILDCARD:
                wildcard_allow = True  # a DENY of ``*`` later in the loop still wins
                continue
            (allow_literal if literal else allow_prefixed).add(binding.resource_name)
        if wildcard_allow:
            return True
        for name in allow_literal - deny_literal:
            if not any(name[:i] in deny_prefixed for i in range(1, len(name) + 1)):
                return True
        for name in allow_prefixed:
            if not any(name[:i] in deny_prefixed for i in range(1, len(name) + 1)):
                return True
        return False


def operations_bit_field(operations: Iterable[AclOperation]) -> int:
    """Operations as the int32 bit set of Metadata/DescribeGroups (bit ``code`` set)."""
    bits = 0
    for op in operations:
        bits |= 1 << int(op)
    return bits
