"""Client quotas as Kafka has them (KIP-13, KIP-55, KIP-124, KIP-219): the sans-IO core.

Owns the quota settings (which entity has which limit), the precedence that picks the limit a
request is held to, Kafka's sampled rate (``quota.window.num`` samples of
``quota.window.size.seconds``) and its throttle-time formula. Time is always passed in as
``now_ms``; nothing here reads a clock, so every rule is tested with a manual one.

An entity is a combination of ``user`` and ``client-id`` components, each either a name or
the default (None), kept as a sorted tuple of ``(entity_type, name)`` pairs, the shape the
DescribeClientQuotas and AlterClientQuotas messages use. For each quota type separately, the
first entity of Kafka's precedence that sets it applies:

    /users/<user>/clients/<client-id>  > /users/<user>/clients/<default>  > /users/<user>
    > /users/<default>/clients/<client-id> > /users/<default>/clients/<default>
    > /users/<default> > /clients/<client-id> > /clients/<default>

and, as in Kafka, the rate is shared by everything that entity covers: ``/users/alice``
throttles all of alice's clients together, a default applies to each user (or client id) on
its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

USER = "user"
CLIENT_ID = "client-id"
ENTITY_TYPES = (USER, CLIENT_ID)
PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
# Accepted and stored (Kafka's admin tools set it), not enforced: a single node has no
# controller mutation queue worth limiting.
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
# Quota key -> whether Kafka types it as a whole number (LONG) rather than a DOUBLE.
QUOTA_KEYS: dict[str, bool] = {
    PRODUCER_BYTE_RATE: True,
    CONSUMER_BYTE_RATE: True,
    REQUEST_PERCENTAGE: False,
    CONTROLLER_MUTATION_RATE: False,
}
ENFORCED = (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE)
# Kafka's quota.window.num and quota.window.size.seconds defaults.
WINDOW_NUM = 11
WINDOW_SIZE_MS = 1000

Entity = tuple[tuple[str, str | None], ...]


class QuotaError(ValueError):
    """A quota entity or setting Kafka refuses (answered as INVALID_REQUEST)."""


def entity(user: str | bool | None = False, client_id: str | bool | None = False) -> Entity:
    """An entity from its components: a name, None for the default, False for absent."""
    parts: list[tuple[str, str | None]] = []
    if client_id is not False:
        assert client_id is not True
        parts.append((CLIENT_ID, client_id))
    if user is not False:
        assert user is not True
        parts.append((USER, user))
    return tuple(parts)


def make_entity(components: Iterable[tuple[str, str | None]]) -> Entity:
    """Validate components from the network into an Entity; raises QuotaError."""
    seen: dict[str, str | None] = {}
    for entity_type, name in components:
        if entity_type not in ENTITY_TYPES:
            raise QuotaError(f"Unknown or unsupported quota entity type {entity_type!r}")
        if entity_type in seen:
            raise QuotaError(f"Duplicate quota entity type {entity_type!r}")
        if name == "":
            raise QuotaError(f"The {entity_type} entity name must not be empty")
        seen[entity_type] = name
    if not seen:
        raise QuotaError("A quota entity needs at least one component")
    return tuple(sorted(seen.items()))


def validate_value(key: str, value: float) -> None:
    """Kafka's checks of one value to set; raises QuotaError."""
    whole = QUOTA_KEYS.get(key)
    if whole is None:
        raise QuotaError(f"Invalid configuration key {key}")
    if not math.isfinite(value) or value <= 0:
        raise QuotaError(f"Invalid value {value} for configuration key {key}: must be > 0")
    if whole and value != math.floor(value):
        raise QuotaError(f"Configuration {key} must be a Long value")


def describe_entity(ent: Entity) -> str:
    """``/users/alice/clients/<default>``, Kafka's way of writing an entity."""
    names = dict(ent)
    out = []
    for entity_type, label in ((USER, "users"), (CLIENT_ID, "clients")):
        if entity_type in names:
            name = names[entity_type]
            out.append(f"/{label}/{'<default>' if name is None else name}")
    return "".join(out)


# -- precedence ---------------------------------------------------------------------------


def candidates(user: str, client_id: str) -> tuple[Entity, ...]:
    """The entities that may hold a request's limit, most specific first (Kafka's order)."""
    return (
        entity(user, client_id),
        entity(user, None),
        entity(user),
        entity(None, client_id),
        entity(None, None),
        entity(None),
        entity(client_id=client_id),
        entity(client_id=None),
    )


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit one request is held to, and the rate it shares (Kafka's metric tags)."""

    quota: float
    # The rate's key: the matched entity with defaults replaced by the request's names,
    # and "" for an absent component.
    user: str
    client_id: str


@dataclass(slots=True)
class QuotaSettings:
    """Every configured entity and its quota values."""

    entries: dict[Entity, dict[str, float]] = field(default_factory=dict)

    def limit(self, key: str, user: str, client_id: str) -> Limit | None:
        for ent in candidates(user, client_id):
            values = self.entries.get(ent)
            if values is not None and key in values:
                names = dict(ent)
                return Limit(
                    values[key],
                    user if USER in names else "",
                    client_id if CLIENT_ID in names else "",
                )
        return None

    def enforced(self, key: str) -> bool:
        return any(key in values for values in self.entries.values())

    def alter(self, ent: Entity, ops: Iterable[tuple[str, float, bool]]) -> None:
        """Apply validated (key, value, remove) operations; an entity left empty goes."""
        values = dict(self.entries.get(ent, {}))
        for key, value, remove in ops:
            if remove:
                values.pop(key, None)
            else:
                values[key] = float(value)
        if values:
            self.entries[ent] = values
        else:
            self.entries.pop(ent, None)

    def to_json(self) -> dict[str, object]:
        return {
            "version": 1,
            "entries": [
                {"entity": dict(ent), "values": dict(sorted(values.items()))}
                for ent, values in sorted(self.entries.items(), key=lambda kv: _sort_key(kv[0]))
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> QuotaSettings:
        settings = cls()
        raw = (data or {}).get("entries", [])
        assert isinstance(raw, list), "client-quotas.json: entries must be a list"
        for item in raw:
            ent = make_entity(item["entity"].items())
            values = {str(k): float(v) for k, v in item["values"].items()}
            for key, value in values.items():
                validate_value(key, value)
            if values:
                settings.entries[ent] = values
        return settings


def _sort_key(ent: Entity) -> tuple[tuple[str, str], ...]:
    return tuple((t, "" if n is None else "\x01" + n) for t, n in ent)


# -- the rate and the throttle --------------------------------------------------------------


@dataclass(slots=True)
class _Sample:
    start_ms: int
    value: float = 0.0


@dataclass(slots=True)
class Rate:
    """Kafka's ``Rate`` over a ``SampledStat``: the sum of the retained samples divided by
    the window they span, counted as at least ``num - 1`` full windows so that the first
    second of traffic does not read as a huge rate."""

    num: int = WINDOW_NUM
    size_ms: int = WINDOW_SIZE_MS
    _samples: list[_Sample] = field(default_factory=list)
    _current: int = 0

    def record(self, value: float, now_ms: int) -> None:
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        sample = self._samples[self._current]
        if now_ms - sample.start_ms >= self.size_ms:
            self._current = (self._current + 1) % self.num
            if self._current >= len(self._samples):
                self._samples.append(_Sample(now_ms))
            else:
                self._samples[self._current] = _Sample(now_ms)
            sample = self._samples[self._current]
        sample.value += value

    def _purge(self, now_ms: int) -> None:
        expire_ms = self.num * self.size_ms
        for i, sample in enumerate(self._samples):
            if now_ms - sample.start_ms >= expire_ms:
                self._samples[i] = _Sample(now_ms)

    def window_ms(self, now_ms: int) -> int:
        """The time the rate is measured over (Kafka's ``Rate.windowSize``)."""
        self._purge(now_ms)
        if not self._samples:
            self._samples.append(_Sample(now_ms))
        oldest = min(s.start_ms for s in self._samples)
        elapsed = now_ms - oldest
        full = elapsed // self.size_ms
        if full < self.num - 1:
            elapsed += (self.num - 1 - full) * self.size_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """Units per second over the window."""
        window = self.window_ms(now_ms)
        return sum(s.value for s in self._samples) / (window / 1000)


def throttle_time_ms(rate: Rate, quota: float, now_ms: int, cap_ms: int) -> int:
    """Kafka's QuotaUtils.throttleTime: with observed rate O over a window W and quota T, a
    delay X with O * W / (W + X) = T brings the rate back to the quota: X = (O - T) / T * W.
    0 when the rate is within the quota (Kafka's bound is inclusive); at most ``cap_ms``."""
    observed = rate.measure(now_ms)
    if observed <= quota:
        return 0
    delay = (observed - quota) / quota * rate.window_ms(now_ms)
    return min(round(delay), cap_ms)


@dataclass(slots=True)
class QuotaTracker:
    """The rates of every (quota key, user tag, client-id tag) seen, and their throttles."""

    num: int = WINDOW_NUM
    size_ms: int = WINDOW_SIZE_MS
    rates: dict[tuple[str, str, str], Rate] = field(default_factory=dict)

    def _rate(self, key: str, limit: Limit) -> Rate:
        k = (key, limit.user, limit.client_id)
        rate = self.rates.get(k)
        if rate is None:
            rate = self.rates[k] = Rate(self.num, self.size_ms)
        return rate

    def record(self, key: str, limit: Limit, value: float, now_ms: int) -> int:
        """Record ``value`` and return the throttle time it earns (0 within the quota)."""
        rate = self._rate(key, limit)
        rate.record(value, now_ms)
        cap = self.size_ms if key == REQUEST_PERCENTAGE else self.num * self.size_ms
        return throttle_time_ms(rate, limit.quota, now_ms, cap)

    def unrecord(self, key: str, limit: Limit, value: float, now_ms: int) -> None:
        """Take back a recorded value (Kafka does so for a throttled fetch answered empty)."""
        self._rate(key, limit).record(-value, now_ms)

    def max_value_in_window(self, limit: Limit) -> float:
        """The most one request may carry without being throttled on its own (Kafka's
        getMaxValueInQuotaWindow): it caps a quota-bound consumer's fetch size."""
        return limit.quota * (self.num - 1) * self.size_ms / 1000


__all__ = [
    "CLIENT_ID",
    "CONSUMER_BYTE_RATE",
    "CONTROLLER_MUTATION_RATE",
    "PRODUCER_BYTE_RATE",
    "QUOTA_KEYS",
    "REQUEST_PERCENTAGE",
    "USER",
    "Entity",
    "Limit",
    "QuotaError",
    "QuotaSettings",
    "QuotaTracker",
    "Rate",
    "candidates",
    "describe_entity",
    "entity",
    "make_entity",
    "throttle_time_ms",
    "validate_value",
]
