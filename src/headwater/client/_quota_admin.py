"""Client quotas admin: set, list and remove Kafka client quotas (``kafka-configs --entity-type
users|clients``) over DescribeClientQuotas and AlterClientQuotas.

confluent-kafka's AdminClient has no client-quota calls, so this speaks the two APIs itself
over the raw request client (``_wire``). It works against any Kafka 2.6+ broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from headwater.client._wire import Connection, WireError, error_name

DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS = 48, 49
USER, CLIENT_ID = "user", "client-id"
MATCH_EXACT, MATCH_DEFAULT = 0, 1
QUOTA_KEYS = (
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
)
# An entity component: (entity type, name); None as the name is the default.
Component = tuple[str, str | None]


class QuotaAdminError(WireError):
    """The broker refused a quota request."""


@dataclass(frozen=True, slots=True)
class QuotaEntry:
    entity: tuple[Component, ...]
    values: dict[str, float]

    @property
    def label(self) -> str:
        """``user=alice client-id=<default>``."""
        return " ".join(f"{t}={'<default>' if n is None else n}" for t, n in self.entity)


class QuotaAdmin:
    """One connection to one broker for client-quota requests."""

    def __init__(self, bootstrap: str) -> None:
        self._conn = Connection.open(bootstrap.split(",")[0], role="bootstrap server")

    def __enter__(self) -> QuotaAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def describe(
        self, components: Mapping[str, str | None] | None = None, *, strict: bool = False
    ) -> list[QuotaEntry]:
        """Entries matching ``components`` (entity type -> name, None for the default)."""
        filters = [
            {
                "entity_type": entity_type,
                "match_type": MATCH_DEFAULT if name is None else MATCH_EXACT,
                "match": name,
            }
            for entity_type, name in (components or {}).items()
        ]
        response = self._conn.call(
            DESCRIBE_CLIENT_QUOTAS, {"components": filters, "strict": strict}
        )
        if int(response.error_code):
            raise QuotaAdminError(
                f"DescribeClientQuotas refused: {error_name(int(response.error_code))}"
                + (f": {response.error_message}" if response.error_message else "")
            )
        return [
            QuotaEntry(
                tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)),
                {v.key: float(v.value) for v in entry.values},
            )
            for entry in response.entries or ()
        ]

    def alter(
        self,
        entity: Mapping[str, str | None],
        set_values: Mapping[str, float] | None = None,
        remove: tuple[str, ...] = (),
        *,
        validate_only: bool = False,
    ) -> None:
        """Set and remove quota values of one entity; raises QuotaAdminError if refused."""
        ops = [
            {"key": k, "value": float(v), "remove": False} for k, v in (set_values or {}).items()
        ]
        ops += [{"key": k, "value": 0.0, "remove": True} for k in remove]
        body = {
            "entries": [
                {
                    "entity": [{"entity_type": t, "entity_name": n} for t, n in entity.items()],
                    "ops": ops,
                }
            ],
            "validate_only": validate_only,
        }
        response = self._conn.call(ALTER_CLIENT_QUOTAS, body)
        for entry in response.entries:
            if int(entry.error_code):
                raise QuotaAdminError(
                    f"AlterClientQuotas refused: {error_name(int(entry.error_code))}"
                    + (f": {entry.error_message}" if entry.error_message else "")
                )
