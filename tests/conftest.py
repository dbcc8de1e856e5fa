"""Shared fixtures: a real broker on a free loopback port for each test that asks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from headwater.broker import BrokerThread
from headwater.testing import KafkaCluster, embedded_broker, kafka_libs_dir

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


# -- Apache Kafka ---------------------------------------------------------------------------
# One 3-node cluster per test session: each JVM takes seconds of CPU to start on 2 cores.


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    if shutil.which("java") is None or not (kafka_libs_dir() / ".complete").is_file():
        pytest.skip("Apache Kafka jars or java missing: run scripts/install-kafka")
    cluster = KafkaCluster(3, tmp_path_factory.mktemp("kafka")).start()
    yield cluster
    cluster.stop(graceful=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that used an Apache Kafka cluster reports the tail of its nodes' logs."""
    report: pytest.TestReport = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, KafkaCluster):
                report.sections.append(("Apache Kafka logs", value.logs_tail()))
    return report


# One Apache Kafka node per session for the differential conformance scenarios
# (tests/test_conformance.py); each scenario makes uniquely named topics, groups and ids.


@pytest.fixture(scope="session")
def kafka_single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    if shutil.which("java") is None or not (kafka_libs_dir() / ".complete").is_file():
        pytest.skip("Apache Kafka jars or java missing: run scripts/install-kafka")
    from conformance._harness import start_kafka_single

    cluster = start_kafka_single(tmp_path_factory.mktemp("kafka-single"))
    yield cluster
    cluster.stop(graceful=False)
