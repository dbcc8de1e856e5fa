"""Governance: data contracts per topic, applied to the cluster and the registry and checked
for drift, the quality rules stream processors validate records against, and the doctor's
rules for cluster settings that endanger data."""

from headwater.governance._apply import apply, check
from headwater.governance._contract import Contract, ContractError, from_dict, load
from headwater.governance._doctor import Finding, diagnose
from headwater.governance._rules import QualityRules

__all__ = [
    "Contract",
    "ContractError",
    "Finding",
    "QualityRules",
    "apply",
    "check",
    "diagnose",
    "from_dict",
    "load",
]
