"""Differential conformance: the same client actions against Headwater and Apache Kafka.

One module per area registers its scenarios; importing this package registers them all.
``verdicts`` lists the differences that are deliberate, the ones fixed, and the ones waiting
for the group coordinator; both the test (tests/test_conformance.py) and the report
(``scripts/conformance``, which writes docs/conformance.md) read it.
"""

from conformance import configs, errors, groups, list_offsets, metadata, produce, transactions
from conformance._harness import SCENARIOS, Scenario, Target
from conformance._run import Outcome, compare

__all__ = [
    "SCENARIOS",
    "Outcome",
    "Scenario",
    "Target",
    "compare",
    "configs",
    "errors",
    "groups",
    "list_offsets",
    "metadata",
    "produce",
    "transactions",
]
