"""Shared fixtures: a real broker on a free loopback port for each test that asks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from headwater.broker import BrokerThread
from headwater.testing import embedded_broker

settings.register_profile("ci", deadline=None, max_examples=60)
# scripts/fuzz runs the property tests with this profile too.
settings.register_profile("long", deadline=None, max_examples=20_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    with embedded_broker(tmp_path / "data", fault_hooks=True) as running:
        yield running


@pytest.fixture
def bootstrap(broker: BrokerThread) -> str:
    return broker.bootstrap
