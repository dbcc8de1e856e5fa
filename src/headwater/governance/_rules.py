"""Quality rules of a data contract: required fields, numeric ranges and allowed values.

``validate`` returns reasons rather than raising, so a stream processor can route a failing
record to its dead-letter topic with every reason attached instead of dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QualityRules:
    """Business rules a record value (a mapping) must meet beyond its schema."""

    required: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    enums: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> QualityRules:
        if not isinstance(raw, dict):
            raise ValueError("'quality' must be a mapping of required, ranges and enums")
        ranges = {}
        for name, bounds in (raw.get("ranges") or {}).items():
            if not isinstance(bounds, dict):
                raise ValueError(f"range for {name!r} must be a mapping with min and/or max")
            ranges[str(name)] = (bounds.get("min"), bounds.get("max"))
        enums = {str(k): tuple(v) for k, v in (raw.get("enums") or {}).items()}
        return cls(tuple(str(x) for x in raw.get("required") or ()), ranges, enums)

    def validate(self, value: Any) -> list[str]:
        """Every rule ``value`` breaks, as readable reasons; empty when it meets them all."""
        if not isinstance(value, dict):
            return [f"record value is a {type(value).__name__}, not a mapping of fields"]
        reasons = [
            f"required field {n!r} is missing or null"
            for n in self.required
            if _path(value, n) is None
        ]
        for name, (low, high) in self.ranges.items():
            found = _path(value, name)
            if found is None:
                continue
            if not isinstance(found, int | float) or isinstance(found, bool):
                reasons.append(f"field {name!r} must be a number, got {found!r}")
            elif low is not None and found < low:
                reasons.append(f"field {name!r} is {found}, below the minimum {low}")
            elif high is not None and found > high:
                reasons.append(f"field {name!r} is {found}, above the maximum {high}")
        for name, allowed in self.enums.items():
            found = _path(value, name)
            if found is not None and found not in allowed:
                reasons.append(f"field {name!r} is {found!r}, not one of {list(allowed)}")
        return reasons


def _path(value: dict[str, Any], dotted: str) -> Any:
    """``a.b`` looks inside nested mappings."""
    current: Any = value
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current
