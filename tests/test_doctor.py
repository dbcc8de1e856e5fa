"""`headwater doctor`: the rules on hand-made snapshots, the embedded broker's single-node note,
and a 3-node Apache Kafka cluster that passes as configured and is then broken on purpose,
one setting at a time, each of which the doctor must name."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from headwater.client import (
    PRODUCER_PROFILES,
    Admin,
    ClusterMetadata,
    ClusterSettings,
    ConfigValue,
    PartitionState,
    TopicSettings,
)
from headwater.governance import Finding, diagnose
from headwater.testing import KafkaCluster

# -- the rules, without a cluster -------------------------------------------------------------


def _topic(name: str, replicas: int, isr: int | None = None, **configs: str) -> TopicSettings:
    nodes = tuple(range(1, replicas + 1))
    in_sync = nodes if isr is None else nodes[:isr]
    return TopicSettings(
        name,
        {0: PartitionState(1 if in_sync else -1, nodes, in_sync)},
        {k.replace("_", "."): ConfigValue(v, "topic") for k, v in configs.items()},
    )


def _cluster(*topics: TopicSettings, brokers: int = 3, **broker_configs: str) -> ClusterSettings:
    configs = {k.replace("_", "."): ConfigValue(v, "broker") for k, v in broker_configs.items()}
    return ClusterSettings(
        bootstrap="127.0.0.1:9092",
        cluster_id="c",
        controller_id=1,
        brokers={n: f"127.0.0.1:{9091 + n}" for n in range(1, brokers + 1)},
        broker_configs={n: configs for n in range(1, brokers + 1)},
        topics={t.name: t for t in topics},
    )


def _found(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.severity, f.check, f.subject) for f in findings}


def test_recommended_settings_are_healthy() -> None:
    cluster = _cluster(_topic("orders", 3, min_insync_replicas="2"), min_insync_replicas="2")
    findings = diagnose(cluster, {"durable": PRODUCER_PROFILES["durable"]})
    assert [f for f in findings if f.severity == "problem"] == []


def test_each_rule_names_its_subject_and_the_config_to_change() -> None:
    cluster = _cluster(
        _topic("rf1", 1, min_insync_replicas="1"),
        _topic("rf2-min1", 2, min_insync_replicas="1"),
        _topic("rf3-min3", 3, min_insync_replicas="3"),
        _topic("rf3-min1", 3, min_insync_replicas="1"),
        _topic("rf2-min3", 2, min_insync_replicas="3"),
        _topic("unclean", 3, min_insync_replicas="2", unclean_leader_election_enable="true"),
        _topic("behind", 3, isr=2, min_insync_replicas="2"),
        _topic("offline", 3, isr=0, min_insync_replicas="2"),
        default_replication_factor="1",
        min_insync_replicas="2",
    )
    findings = diagnose(cluster, {"fast": {"acks": 0}})
    assert _found(findings) >= {
        ("problem", "replication-factor", "topic rf1"),
        ("problem", "min-insync-replicas", "topic rf2-min1"),
        ("problem", "min-insync-replicas", "topic rf3-min3"),
        ("problem", "min-insync-replicas", "topic rf3-min1"),
        ("problem", "min-insync-replicas", "topic rf2-min3"),
        ("problem", "unclean-leader-election", "topic unclean"),
        ("problem", "under-replicated", "topic behind"),
        ("problem", "offline-partitions", "topic offline"),
        ("problem", "replication-factor", "broker 1, 2, 3"),
        ("problem", "producer-acks", "producer profile fast"),
    }
    by_subject = {f.subject: f for f in findings if f.check != "replication-factor"}
    assert "min.insync.replicas=2" in by_subject["topic rf3-min3"].fix
    assert "one broker down" in by_subject["topic rf3-min3"].message
    assert "refused now" in by_subject["topic rf2-min3"].message
    assert "unclean.leader.election.enable=false" in by_subject["topic unclean"].fix
    assert "acks=0" in by_subject["producer profile fast"].message
    assert all(f.fix for f in findings)
    # Problems come first, so the top of the table is what needs doing.
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=lambda s: s != "problem")


def test_broker_defaults_and_a_broker_that_is_down() -> None:
    behind = TopicSettings(
        "t",
        {0: PartitionState(1, (1, 2, 4), (1, 2))},
        {"min.insync.replicas": ConfigValue("2", "x")},
    )
    cluster = _cluster(
        behind,
        unclean_leader_election_enable="true",
        min_insync_replicas="1",
        default_replication_factor="3",
    )
    found = _found(diagnose(cluster, {}))
    assert ("problem", "broker-down", "broker 4") in found
    assert ("problem", "unclean-leader-election", "broker 1, 2, 3") in found
    assert ("problem", "min-insync-replicas", "broker 1, 2, 3") in found


def test_a_single_node_is_a_note_not_a_problem() -> None:
    cluster = _cluster(_topic("orders", 1, min_insync_replicas="1"), brokers=1)
    findings = diagnose(cluster, {"durable": PRODUCER_PROFILES["durable"]})
    assert _found(findings) == {("note", "single-node", "cluster")}


# -- the CLI against real brokers ---------------------------------------------------------------


def _doctor(bootstrap: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", "doctor", "--bootstrap", bootstrap, "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _checks(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["check"], f["subject"]) for f in report["findings"] if f["severity"] == "problem"}


def test_embedded_broker_is_a_single_node_note(bootstrap: str) -> None:
    Admin(bootstrap).create_topic("orders", 2, {})
    code, report = _doctor(bootstrap)
    assert code == 0 and report["healthy"]
    notes = [f for f in report["findings"] if f["check"] == "single-node"]
    assert len(notes) == 1 and "single node" in notes[0]["message"]
    assert "no replication" in notes[0]["message"]


def _in_sync(metadata: ClusterMetadata) -> bool:
    return len(metadata.brokers) == 3 and all(
        s.leader >= 0 and len(s.isr) == len(s.replicas) for s in metadata.partitions.values()
    )


BROKEN = ("doctor-rf1", "doctor-min3", "doctor-min1", "doctor-unclean")


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The session cluster, whole and in sync before and after, without the broken topics."""
    kafka_cluster.wait_until(_in_sync, timeout_s=90, what="every replica in sync")
    yield kafka_cluster
    for node_id in kafka_cluster.node_ids:
        if not kafka_cluster.is_running(node_id):
            kafka_cluster.restart(node_id)
    admin = Admin(kafka_cluster.bootstrap)
    for name in BROKEN:
        if name in admin.list_topics():
            admin.delete_topic(name)
    kafka_cluster.wait_until(_in_sync, timeout_s=90, what="every replica in sync")


@pytest.mark.slow
def test_kafka_cluster_passes_then_each_broken_setting_is_named(cluster: KafkaCluster) -> None:
    bootstrap = cluster.bootstrap
    code, report = _doctor(bootstrap)
    assert code == 0, report
    assert report["healthy"] and len(report["brokers"]) == 3
    assert [f for f in report["findings"] if f["check"] == "unread"] == []

    admin = Admin(bootstrap)
    admin.create_topic("doctor-rf1", 1, {}, replication_factor=1)
    admin.create_topic("doctor-min3", 1, {"min.insync.replicas": "3"})
    admin.create_topic("doctor-min1", 1, {"min.insync.replicas": "1"})
    admin.create_topic("doctor-unclean", 1, {"unclean.leader.election.enable": "true"})
    code, report = _doctor(bootstrap)
    assert code == 1 and not report["healthy"]
    assert _checks(report) == {
        ("replication-factor", "topic doctor-rf1"),
        # The cluster's min.insync.replicas=2 applies to it too: acks=all writes are refused.
        ("min-insync-replicas", "topic doctor-rf1"),
        ("min-insync-replicas", "topic doctor-min3"),
        ("min-insync-replicas", "topic doctor-min1"),
        ("unclean-leader-election", "topic doctor-unclean"),
    }

    code, report = _doctor(bootstrap, "--profile", "low-latency", "--profile", "durable")
    assert ("producer-acks", "producer profile low-latency") in _checks(report)
    code, report = _doctor(bootstrap, "--producer-config", "acks=1")
    assert ("producer-acks", "producer profile durable") in _checks(report)

    # The node holding the single-replica topic goes down: that partition is offline, and
    # every replicated partition it held is under-replicated.
    metadata = cluster.metadata()
    assert metadata is not None
    victim = metadata.partitions[("doctor-rf1", 0)].leader
    cluster.kill(victim)
    cluster.wait_until(
        lambda m: (
            victim not in m.brokers
            and any(victim not in s.isr and victim in s.replicas for s in m.partitions.values())
        ),
        what=f"node {victim} out of the ISRs",
    )
    code, report = _doctor(bootstrap)
    assert code == 1
    found = _checks(report)
    assert ("broker-down", f"broker {victim}") in found
    assert ("offline-partitions", "topic doctor-rf1") in found
    assert ("under-replicated", "topic doctor-min3") in found
    cluster.restart(victim)
    cluster.wait_until(_in_sync, timeout_s=90, what=f"node {victim} back in every ISR")

    for name in BROKEN:
        admin.delete_topic(name)
    cluster.wait_until(
        lambda m: not any(t in BROKEN for t, _ in m.partitions), what="broken topics deleted"
    )
    code, report = _doctor(bootstrap)
    assert code == 0, report


def test_table_output_says_what_to_change(bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", "doctor", "-b", bootstrap, "-p", "high-throughput"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "what to change" in result.stdout
    assert "acks=all" in result.stdout
    assert "problem(s) endanger data" in result.stdout
