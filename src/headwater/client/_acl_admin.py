"""ACL administration over confluent-kafka's AdminClient: create, describe and delete bindings.

Bindings and filters are ``headwater.security``'s ``AclBinding`` and ``AclBindingFilter``, the
same model the broker enforces, converted here to confluent-kafka's classes and back. Any
Kafka-compatible cluster with an authorizer answers these calls; librdkafka has no names for
the DELEGATION_TOKEN and USER resource types nor the token operations, so those are refused
before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AclBinding as CkAclBinding
from confluent_kafka.admin import AclBindingFilter as CkAclBindingFilter
from confluent_kafka.admin import (
    AclOperation as CkAclOperation,
)
from confluent_kafka.admin import (
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
)
from confluent_kafka.admin import ResourceType as CkResourceType

from headwater.client._admin import AdminError
from headwater.client._security import with_security
from headwater.security._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    sort_key,
)

_TIMEOUT_S = 30.0


def describe_binding(binding: AclBinding) -> str:
    """One line naming a binding, as error messages and the CLI show it."""
    return (
        f"{binding.permission.name} {binding.principal} from {binding.host} "
        f"{binding.operation.name} on {binding.resource_type.name}:"
        f"{binding.pattern_type.name}:{binding.resource_name}"
    )


def _ck_resource_type(value: ResourceType) -> CkResourceType:
    try:
        return CkResourceType(int(value))
    except ValueError:
        raise AdminError(
            f"confluent-kafka cannot send ACLs of resource type {value.name}"
        ) from None


def _ck_operation(value: AclOperation) -> CkAclOperation:
    try:
        return CkAclOperation(int(value))
    except ValueError:
        raise AdminError(f"confluent-kafka cannot send the ACL operation {value.name}") from None


def _to_ck(binding: AclBinding) -> CkAclBinding:
    try:
        return CkAclBinding(
            _ck_resource_type(binding.resource_type),
            binding.resource_name,
            ResourcePatternType(int(binding.pattern_type)),
            binding.principal,
            binding.host,
            _ck_operation(binding.operation),
            AclPermissionType(int(binding.permission)),
        )
    except (TypeError, ValueError) as exc:
        raise AdminError(f"invalid ACL binding {describe_binding(binding)}: {exc}") from None


def _to_ck_filter(acl_filter: AclBindingFilter) -> CkAclBindingFilter:
    # confluent-kafka's stubs type the strings as str, but None is its "match any" value.
    try:
        return CkAclBindingFilter(
            _ck_resource_type(acl_filter.resource_type),
            cast(str, acl_filter.resource_name),
            ResourcePatternType(int(acl_filter.pattern_type)),
            cast(str, acl_filter.principal),
            cast(str, acl_filter.host),
            _ck_operation(acl_filter.operation),
            AclPermissionType(int(acl_filter.permission)),
        )
    except (TypeError, ValueError) as exc:
        raise AdminError(f"invalid ACL filter {acl_filter}: {exc}") from None


def _from_ck(binding: Any) -> AclBinding:
    restype = binding.restype
    return AclBinding(
        resource_type=ResourceType(int(restype.value)),
        resource_name=str(binding.name),
        pattern_type=PatternType(int(binding.resource_pattern_type.value)),
        principal=str(binding.principal),
        host=str(binding.host),
        operation=AclOperation(int(binding.operation.value)),
        permission=PermissionType(int(binding.permission_type.value)),
    )


def _error(exc: KafkaException) -> tuple[str, int | None]:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return error.str(), error.code()
    return str(exc), None


class AclAdmin:
    """Create, list and delete ACL bindings on any Kafka-compatible cluster."""

    def __init__(self, bootstrap: str, extra: dict[str, Any] | None = None) -> None:
        self._client = AdminClient(with_security({"bootstrap.servers": bootstrap, **(extra or {})}))

    def create(self, bindings: Sequence[AclBinding]) -> None:
        """Create every binding; AdminError names each one the cluster refused and why.

        Bindings the cluster accepted stay created even when others are refused.
        """
        unique = list(dict.fromkeys(bindings))
        if not unique:
            return
        ck = {_to_ck(b): b for b in unique}
        futures = self._client.create_acls(list(ck))
        failures: list[str] = []
        code: int | None = None
        for ck_binding, future in futures.items():
            try:
                future.result(timeout=_TIMEOUT_S)
            except KafkaException as exc:
                message, code = _error(exc)
                failures.append(f"{describe_binding(ck[ck_binding])}: {message}")
        if failures:
            raise AdminError("cannot create ACLs: " + "; ".join(failures), code)

    def describe(self, acl_filter: AclBindingFilter | None = None) -> list[AclBinding]:
        """The bindings matching ``acl_filter`` (all bindings without one), sorted."""
        future = self._client.describe_acls(_to_ck_filter(acl_filter or AclBindingFilter()))
        try:
            found = future.result(timeout=_TIMEOUT_S)
        except KafkaException as exc:
            message, code = _error(exc)
            raise AdminError(f"cannot list ACLs: {message}", code) from None
        return sorted((_from_ck(b) for b in found), key=sort_key)

    def delete(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        """Delete the bindings the filters match; what each filter deleted, in order."""
        unique = list(dict.fromkeys(filters))
        if not unique:
            return []
        ck = [_to_ck_filter(f) for f in unique]
        futures = self._client.delete_acls(ck)
        deleted: dict[AclBindingFilter, list[AclBinding]] = {}
        for acl_filter, ck_filter in zip(unique, ck, strict=True):
            try:
                found = futures[ck_filter].result(timeout=_TIMEOUT_S)
            except KafkaException as exc:
                message, code = _error(exc)
                raise AdminError(f"cannot delete ACLs: {message}", code) from None
            deleted[acl_filter] = sorted((_from_ck(b) for b in found), key=sort_key)
        return [deleted[f] for f in filters]
