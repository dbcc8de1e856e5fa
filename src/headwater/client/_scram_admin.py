"""SCRAM users over Kafka's admin APIs (AlterUserScramCredentials, DescribeUserScramCredentials),
so the same commands manage Headwater's broker and an Apache Kafka cluster.

The client salts and hashes the password (librdkafka does it); only the salted password
crosses the wire, and only the broker's StoredKey and ServerKey are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from headwater.client._admin import AdminError, _result
from headwater.client._security import with_security

_MECHANISMS = {
    "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
    "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
}
RESOURCE_NOT_FOUND = 91


def _mechanism(name: str) -> ScramMechanism:
    try:
        return _MECHANISMS[name.upper()]
    except KeyError:
        raise AdminError(
            f"unknown SCRAM mechanism {name!r}: use {' or '.join(_MECHANISMS)}"
        ) from None


class ScramUsers:
    """Add, remove and list the SCRAM users of a Kafka-compatible cluster."""

    def __init__(self, bootstrap: str, extra: Mapping[str, Any] | None = None) -> None:
        self._admin = AdminClient(with_security({"bootstrap.servers": bootstrap, **(extra or {})}))

    def upsert(
        self, user: str, password: str, mechanisms: list[str], iterations: int = 8192
    ) -> None:
        """Create ``user`` or change its password, for each mechanism."""
        alterations: list[Any] = [
            UserScramCredentialUpsertion(
                user, ScramCredentialInfo(_mechanism(m), iterations), password.encode()
            )
            for m in mechanisms
        ]
        for future in self._admin.alter_user_scram_credentials(alterations).values():
            _result(future)

    def delete(self, user: str, mechanisms: list[str]) -> None:
        """Remove ``user``'s credentials for each mechanism."""
        alterations: list[Any] = [
            UserScramCredentialDeletion(user, _mechanism(m)) for m in mechanisms
        ]
        for future in self._admin.alter_user_scram_credentials(alterations).values():
            _result(future)

    def describe(self, users: list[str] | None = None) -> dict[str, list[tuple[str, int]]]:
        """user -> [(mechanism, iterations)]; every user when ``users`` is None."""
        names = {v: k for k, v in _MECHANISMS.items()}
        if users:
            futures: Any = self._admin.describe_user_scram_credentials(users)
            described = {user: _result(future) for user, future in futures.items()}
        else:
            described = _result(self._admin.describe_user_scram_credentials())
        return {
            user: [
                (names[info.mechanism], int(info.iterations))
                for info in description.scram_credential_infos
            ]
            for user, description in sorted(described.items())
        }
