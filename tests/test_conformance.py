"""Differential conformance: every scenario in tests/conformance runs against Headwater and
against Apache Kafka 4.4, and the two answers must agree unless tests/conformance/verdicts.py
says why not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import SCENARIOS, compare
from conformance.verdicts import DELIBERATE, FIXED, PENDING
from headwater.testing import KafkaCluster, embedded_broker


@pytest.fixture(scope="module")
def headwater_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded broker for every scenario, as one Kafka node serves them all."""
    with embedded_broker(tmp_path_factory.mktemp("conformance") / "data") as broker:
        yield broker.bootstrap


def test_verdict_lists_name_real_scenarios() -> None:
    lists = [set(DELIBERATE), set(PENDING), set(FIXED)]
    listed = set().union(*lists)
    assert listed <= set(SCENARIOS), listed - set(SCENARIOS)
    assert sum(len(x) for x in lists) == len(listed), "a scenario is in one list at most"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, headwater_bootstrap: str, kafka_single: KafkaCluster) -> None:
    outcome = compare(SCENARIOS[name], headwater_bootstrap, kafka_single.bootstrap)
    traces = "\n".join(outcome.traces)
    detail = f"\nHeadwater: {outcome.headwater}\nKafka:     {outcome.kafka}\n{traces}"
    assert not outcome.traces, f"{name} failed to run:{detail}"
    if name in DELIBERATE:
        assert not outcome.same, f"{name} now agrees with Kafka: remove it from DELIBERATE"
        return
    if name in PENDING:
        assert not outcome.same, f"{name} now agrees with Kafka: remove it from PENDING"
        pytest.xfail(f"group coordinator difference: {PENDING[name]}")
    assert outcome.same, f"{name} differs from Apache Kafka:{detail}"


def test_report_renders_every_verdict(tmp_path: Path) -> None:
    """The report's table has a row per scenario with its verdict (no brokers needed)."""
    from conformance._harness import Scenario
    from conformance._run import Outcome
    from conformance.report import render

    def scenario(name: str) -> Scenario:
        return Scenario(name, name.split(".")[0], "does a thing", lambda t: {})

    outcomes = [
        Outcome(scenario("a.same"), {"x": 1}, {"x": 1}, 0.1, 0.2),
        Outcome(scenario("a.differs"), {"x": [{"y": 1}]}, {"x": [{"y": 2}]}, 0.1, 0.2),
    ]
    text = render(outcomes, 3.0)
    assert "| [a.same](#asame) | does a thing | same |" in text
    assert "**DIFFERENT (unexplained)**" in text
    assert "| `x[0].y` ≠ | 1 | 2 |" in text
