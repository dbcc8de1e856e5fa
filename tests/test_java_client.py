"""Apache Kafka's Java client (kafka-clients 4.4) against Headwater's broker.

A JVM takes seconds of CPU to start on a small machine, so one run of
``dev.headwater.interop.clients.ClientScenarios`` plays every scenario against one broker and
prints JSON lines; each test below judges one scenario's lines. The expected values are what
the same program prints against Apache Kafka 4.4 (except where a test says otherwise).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from headwater.broker import BrokerThread
from headwater.testing import KAFKA_VERSION, embedded_broker, java_missing, run_java
from headwater.testing._java import INTEROP_JAR, interop_dir

_MISSING = java_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

MAIN = "dev.headwater.interop.clients.ClientScenarios"
SCENARIOS = (
    "idempotent",
    "compression",
    "transactions",
    "consume-transform-produce",
    "group-classic",
    "admin-topics",
    "admin-offsets",
    "admin-configs",
    "admin-transactions",
    "admin-groups",
)
PRODUCE = 0
CONSUMER_GROUP_HEARTBEAT = 68


@dataclass(frozen=True)
class Run:
    """What one JVM run printed, by scenario, and how many requests of each API it sent."""

    lines: dict[str, list[dict[str, Any]]]
    stderr: str
    requests: dict[str, float]
    faults_left: dict[int, str]

    def result(self, scenario: str, check: str | None = None) -> dict[str, Any]:
        """The scenario's result line (the one with ``check``, if given); fails on an error."""
        lines = self.lines.get(scenario, [])
        errors = [line["error"] for line in lines if "error" in line]
        if errors or not any(line.get("done") for line in lines):
            pytest.fail(
                f"scenario {scenario} failed:\n"
                + "\n".join(errors or ["(no result)"])
                + "\n--- stderr (tail) ---\n"
                + self.stderr[-6000:]
            )
        for line in lines:
            if "done" not in line and line.get("check") == check:
                return line
        raise AssertionError(f"scenario {scenario} printed no {check or 'result'} line: {lines}")


def run_scenarios(
    broker: BrokerThread, *scenarios: str, faults: dict[int, str] | None = None
) -> Run:
    """Run ``scenarios`` in one JVM; ``faults`` are armed first (api key -> fault hook)."""
    broker.call(lambda: broker.broker.faults.update(faults or {}))
    result = run_java(MAIN, broker.bootstrap, *scenarios, timeout_s=300)
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in result.json_lines():
        lines.setdefault(str(line["scenario"]), []).append(line)
    registry = broker.broker.metrics.registry
    requests = {
        api: registry.get_sample_value("headwater_broker_requests_total", {"api": api}) or 0.0
        for api in ("AddPartitionsToTxn", "AddOffsetsToTxn", "DescribeTopicPartitions", "EndTxn")
    }
    faults_left = broker.call(lambda: dict(broker.broker.faults))
    return Run(lines, result.stderr, requests, faults_left)


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerThread]:
    with embedded_broker(
        tmp_path_factory.mktemp("java-clients"),
        fault_hooks=True,
        # KIP-848 members learn of new assignments at their next heartbeat; Kafka's 5 s
        # default would make the consumer-protocol scenario mostly waiting.
        group_consumer_heartbeat_interval_ms=1_000,
        group_consumer_min_heartbeat_interval_ms=1_000,
    ) as broker:
        yield broker


def consumer_protocol_advertised(broker: BrokerThread) -> bool:
    return CONSUMER_GROUP_HEARTBEAT in {v["api_key"] for v in broker.broker.api_versions()}


@pytest.fixture(scope="module")
def run(module_broker: BrokerThread) -> Run:
    scenarios = list(SCENARIOS)
    if consumer_protocol_advertised(module_broker):
        scenarios.append("group-consumer")
    # The first Produce (the idempotent scenario's) is written but never answered: its
    # connection is dropped, so the producer retries batches the broker already holds.
    return run_scenarios(module_broker, *scenarios, faults={PRODUCE: "drop-response"})


def test_interop_jar_runs_on_the_pinned_client() -> None:
    (line,) = run_java("dev.headwater.interop.Version", timeout_s=60).json_lines()
    assert line["kafka_clients"] == KAFKA_VERSION


def test_install_kafka_again_changes_nothing() -> None:
    """The jar is rebuilt only when the pom or the Java sources change (their hash is kept)."""
    script = Path(__file__).parents[1] / "scripts" / "install-kafka"
    # The first run brings the jar up to date with sources edited since; the second is idle.
    subprocess.run([script], capture_output=True, check=True, timeout=600)
    jar = interop_dir() / INTEROP_JAR
    before = jar.stat().st_mtime_ns
    again = subprocess.run([script], capture_output=True, text=True, check=True, timeout=600)
    assert again.stderr == ""
    assert jar.stat().st_mtime_ns == before


def test_idempotent_producer_retries_without_duplicates(run: Run) -> None:
    result = run.result("idempotent")
    assert PRODUCE not in run.faults_left  # a produce was applied and its answer dropped
    assert result["acked"] == result["consumed"] == result["distinct"] == result["sent"] == 300
    assert result["ordered"]
    # One producer id, and its sequences on the three partitions account for every record.
    assert (result["producer_ids"], result["sequences"]) == (1, 300)


def test_every_compression_codec(run: Run) -> None:
    result = run.result("compression")
    assert result["intact"] == {codec: 50 for codec in ("gzip", "lz4", "none", "snappy", "zstd")}


def test_transactions_speak_version_2_and_fence(run: Run) -> None:
    result = run.result("transactions")
    assert result["committed"] == {"c": 20, "s": 1}
    assert result["uncommitted"] == {"a": 10, "c": 20, "s": 1}
    assert result["committed_distinct"] == 21
    # Transaction version 2: every EndTxn bumps the epoch, and no transaction was opened with
    # AddPartitionsToTxn or AddOffsetsToTxn (Produce v12 and TxnOffsetCommit v5 add).
    assert (result["state_after_three"], result["epoch_after_three"]) == ("CompleteCommit", 3)
    assert run.requests["AddPartitionsToTxn"] == 0
    assert run.requests["AddOffsetsToTxn"] == 0
    assert run.requests["EndTxn"] > 0
    # The fenced producer's next produce carries its old epoch; Kafka answers it the same way.
    assert result["fenced"] == "InvalidProducerEpochException"


def test_consume_transform_produce_is_exactly_once(run: Run) -> None:
    result = run.result("consume-transform-produce")
    assert (result["output"], result["distinct"], result["exact"]) == (60, 60, True)
    assert result["aborted"] == 1 and result["transactions"] > 1
    assert result["committed"] == {f"java-ctp-in-{p}": 20 for p in range(3)}


def test_classic_consumer_group(run: Run) -> None:
    assert_group_lifecycle(run.result("group-classic"), "Classic")


def assert_group_lifecycle(result: dict[str, Any], group_type: str) -> None:
    assert result["alone"] == 4
    assert sorted(result["split"]) == [2, 2]
    assert result["consumed"] == 40
    assert result["live"] == {
        "state": "Stable",
        "type": group_type,
        "members": 2,
        "assigned": [2, 2],
        "coordinator": 1,
    }
    assert result["after_leave"]["state"] == "Stable"
    assert result["after_leave"]["assigned"] == [4]
    assert result["empty"]["state"] == "Empty"
    assert result["empty"]["members"] == 0
    topic = f"java-group-{group_type.lower()}"
    assert result["committed"] == {f"{topic}-{p}": 10 for p in range(4)}
    assert result["listed"] == {"type": group_type, "protocol": "consumer", "state": "Empty"}
    assert result["listed_after_delete"] is False


def test_consumer_group_protocol(module_broker: BrokerThread, run: Run) -> None:
    """KIP-848's protocol (group.protocol=consumer); runs once the broker advertises it."""
    if not consumer_protocol_advertised(module_broker):
        pytest.skip(
            "the broker does not advertise ConsumerGroupHeartbeat (api 68) yet, so the Java "
            "client refuses group.protocol=consumer"
        )
    assert_group_lifecycle(run.result("group-consumer"), "Consumer")


def test_admin_topics_and_cluster(run: Run, module_broker: BrokerThread) -> None:
    cluster = run.result("admin-topics", "cluster")
    assert cluster["cluster_id"] == module_broker.config.cluster_id
    assert cluster["controller"] == 1
    host, port = module_broker.bootstrap.rsplit(":", 1)
    assert cluster["nodes"] == [{"id": 1, "host": host, "port": int(port)}]

    topics = run.result("admin-topics", "topics")
    assert topics["listed"] is True
    assert topics["duplicate"] == "TopicExistsException"
    # A deliberate difference: one node never pretends to hold three replicas.
    assert topics["replication_3"] == "InvalidReplicationFactorException"
    counts = {"adm-a": 3, "adm-b": 1, "adm-wide": 25}
    for name, count in counts.items():
        described = topics["whole"][name]
        assert described["partitions"] == list(range(count))
        assert described["leaders"] == [1]
        assert described["in_sync"] is True
        assert described["internal"] is False
    assert topics["whole"]["adm-a"]["id"] == topics["topic_id_a"]
    # Four partitions per response: the Admin walks the cursor and sees the same topics.
    assert topics["paged"] == topics["whole"]
    assert run.requests["DescribeTopicPartitions"] >= 1 + 8
    assert topics["unknown"] == "UnknownTopicOrPartitionException"
    assert topics["grown"] == 3
    assert topics["listed_after_delete"] == []


def test_admin_list_offsets_and_delete_records(run: Run) -> None:
    result = run.result("admin-offsets")
    assert result["before"] == {
        "earliest": {"offset": 0, "timestamp": -1},
        "latest": {"offset": 4, "timestamp": -1},
        "max_timestamp": {"offset": 2, "timestamp": 5000},
        "at_1500": {"offset": 1, "timestamp": 2000},
        "at_2500": {"offset": 2, "timestamp": 5000},
        "at_9999": {"offset": -1, "timestamp": -1},
    }
    assert result["low_watermark"] == 2
    assert result["after"] == {
        "earliest": {"offset": 2, "timestamp": -1},
        "latest": {"offset": 4, "timestamp": -1},
    }
    assert result["remaining"] == ["t2", "t3"]
    assert result["beyond_end"] == "OffsetOutOfRangeException"


def test_admin_configs(run: Run) -> None:
    result = run.result("admin-configs")
    steps = result["steps"]

    def config(step: str, name: str) -> tuple[str, str]:
        entry = steps[step][name]
        return entry["value"], entry["source"]

    assert config("0_created", "retention.ms") == ("3600000", "DYNAMIC_TOPIC_CONFIG")
    assert config("0_created", "cleanup.policy") == ("delete", "DEFAULT_CONFIG")
    assert config("1_set", "retention.ms") == ("7200000", "DYNAMIC_TOPIC_CONFIG")
    assert config("1_set", "cleanup.policy") == ("compact", "DYNAMIC_TOPIC_CONFIG")
    assert config("2_append", "cleanup.policy") == ("compact,delete", "DYNAMIC_TOPIC_CONFIG")
    assert config("3_subtract_delete", "cleanup.policy") == ("delete", "DYNAMIC_TOPIC_CONFIG")
    assert config("3_subtract_delete", "retention.ms") == ("604800000", "DEFAULT_CONFIG")
    assert all(steps[step]["entries"] >= 20 for step in steps)
    assert result["invalid"] == "InvalidConfigurationException"
    assert result["unknown_topic"] == "UnknownTopicOrPartitionException"
    assert result["broker_num_partitions"] == "1"


def test_admin_transactions(run: Run) -> None:
    result = run.result("admin-transactions")
    assert result["listed_ongoing"] and result["listed_all"]
    assert not result["ongoing_after_abort"]
    open_txn = result["open"]
    assert open_txn["state"] == "Ongoing"
    assert open_txn["partitions"] == ["adm-txn-0"]
    assert open_txn["timeout_ms"] == 60_000
    assert open_txn["start_ms_set"]
    assert result["producers"] == [
        {
            "producer_id": open_txn["producer_id"],
            "epoch": open_txn["epoch"],
            "last_sequence": 2,
            "txn_start": 0,
        }
    ]
    closed = result["after_abort"]
    assert closed["state"] == "CompleteAbort"
    assert closed["partitions"] == []
    # Transaction version 2: ending the transaction bumped the epoch.
    assert (closed["producer_id"], closed["epoch"]) == (open_txn["producer_id"], 1)


def test_admin_group_offsets_members_and_broker(run: Run) -> None:
    result = run.result("admin-groups")
    # A closed static member stays until removed (LeaveGroup v3+ by instance id).
    assert (result["static_members"], result["after_remove"]) == (["adm-static-1"], [])
    topic = "adm-group-topic"
    assert result["committed"] == {f"{topic}-0": 5, f"{topic}-1": 5}
    assert result["altered"] == {f"{topic}-0": 1, f"{topic}-1": 2}
    assert result["deleted"] == {f"{topic}-0": 1}
    assert (result["log_dirs"], result["replicas"], result["topic_bytes_positive"]) == (1, 2, True)
    assert result["finalized_features"]["transaction.version"] == 2
