"""Apache Kafka's Java client (kafka-clients 4.4) against Headwater's broker."""

from __future__ import annotations

import pytest

from headwater.testing import KAFKA_VERSION, java_missing, run_java

_MISSING = java_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def test_interop_jar_runs_on_the_pinned_client() -> None:
    (line,) = run_java("dev.headwater.interop.Version", timeout_s=60).json_lines()
    assert line["kafka_clients"] == KAFKA_VERSION
