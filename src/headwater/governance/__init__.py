"""Governance: data contracts per topic, applied to the cluster and the registry and checked
for drift, plus the quality rules stream processors validate records against."""

from headwater.governance._apply import apply, check
from headwater.governance._contract import Contract, ContractError, from_dict, load
from headwater.governance._rules import QualityRules

__all__ = ["Contract", "ContractError", "QualityRules", "apply", "check", "from_dict", "load"]
