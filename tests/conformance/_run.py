"""Run one scenario against both brokers and judge the two answers."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from conformance._harness import Scenario, Target
from conformance._normalise import normalise
from conformance.verdicts import DELIBERATE, FIXED, PENDING


@dataclass(frozen=True, slots=True)
class Outcome:
    """Both brokers' normalised answers to one scenario, and how long each took."""

    scenario: Scenario
    headwater: Any
    kafka: Any
    headwater_s: float
    kafka_s: float
    traces: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return bool(self.headwater == self.kafka)

    @property
    def verdict(self) -> str:
        """same, fixed, deliberate, pending (group coordinator), DIFFERENT (a bug) or ERROR
        (the scenario itself failed on a broker)."""
        name = self.scenario.name
        if self.traces:
            return "ERROR"
        if self.same:
            return "fixed" if name in FIXED else "same"
        if name in DELIBERATE:
            return "deliberate"
        if name in PENDING:
            return "pending"
        return "DIFFERENT"

    @property
    def reason(self) -> str:
        name = self.scenario.name
        for listed in (FIXED, DELIBERATE, PENDING):
            if name in listed:
                return listed[name]
        return ""


def observe(scenario: Scenario, target: Target) -> tuple[Any, float, str | None]:
    """The scenario's normalised answer from ``target`` (an exception is an answer too)."""
    started = time.monotonic()
    trace = None
    try:
        answer: Any = scenario.fn(target)
    except Exception as exc:
        answer = {"exception": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        trace = f"{target.name}: {traceback.format_exc()}"
    return normalise(answer, target.aliases), time.monotonic() - started, trace


def compare(scenario: Scenario, headwater_bootstrap: str, kafka_bootstrap: str) -> Outcome:
    """Run ``scenario`` against Headwater, then against Apache Kafka, with fresh names."""
    ours, ours_s, ours_trace = observe(scenario, Target("headwater", headwater_bootstrap))
    theirs, theirs_s, theirs_trace = observe(scenario, Target("kafka", kafka_bootstrap))
    traces = tuple(t for t in (ours_trace, theirs_trace) if t)
    return Outcome(scenario, ours, theirs, ours_s, theirs_s, traces)
