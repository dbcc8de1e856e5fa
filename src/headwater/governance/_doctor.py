"""What in a cluster's settings endangers data, in plain words, each with the config to change.

Pure: it judges a ``ClusterSettings`` snapshot (read by ``headwater.client.inspect_cluster``)
and the producer settings an application uses, so every rule is tested without a cluster.
A *problem* can lose acknowledged records or stop writes when one broker fails; a *note* is
worth knowing but loses nothing (a single node that says so, settings that could not be read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from headwater.client import ClusterSettings, TopicSettings

Severity = Literal["problem", "note"]

#: The replication headwater creates topics with, and recommends: three copies, two in sync.
RECOMMENDED_REPLICAS = 3
RECOMMENDED_MIN_INSYNC = 2
_ACKS_ALL = {"all", "-1"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the doctor found: how bad, about what, why it matters, and what to change."""

    severity: Severity
    check: str
    subject: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _ids(nodes: Iterable[int]) -> str:
    return ", ".join(str(n) for n in sorted(nodes))


def _int(topic: TopicSettings, name: str) -> int | None:
    found = topic.configs.get(name)
    if found is None or found.value is None:
        return None
    try:
        return int(found.value)
    except ValueError:
        return None


def _alter(topic: str, setting: str) -> str:
    return f"headwater topics alter {topic} -c {setting}"


def diagnose(
    cluster: ClusterSettings,
    producer_profiles: Mapping[str, Mapping[str, Any]],
    other_profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Every finding for ``cluster`` and the producer settings in ``producer_profiles``
    (profile name -> librdkafka settings, the ones the applications use), problems first.
    ``other_profiles`` are defined but not in use: their weak acks are only noted."""
    findings: list[Finding] = []
    multi = len(cluster.known_brokers) > 1
    if not multi:
        findings.append(_single_node(cluster))
    findings.extend(_down_brokers(cluster))
    if multi:
        findings.extend(_broker_defaults(cluster))
    for topic in cluster.topics.values():
        findings.extend(_topic(topic, multi))
        findings.extend(_partitions(topic))
    findings.extend(_producers(producer_profiles, "problem"))
    findings.extend(_producers(other_profiles or {}, "note"))
    findings.extend(Finding("note", "unread", "cluster", error, "") for error in cluster.errors)
    return sorted(findings, key=lambda f: f.severity != "problem")


def _single_node(cluster: ClusterSettings) -> Finding:
    headwater = any("headwater.fsync.policy" in c for c in cluster.broker_configs.values())
    what = "the embedded Headwater broker, a single node" if headwater else "a single broker"
    return Finding(
        "note",
        "single-node",
        "cluster",
        f"This is {what}: every partition has one copy and there is no replication or "
        "failover. Records acknowledged with acks=all survive a crash of the process, "
        "not the loss of its disk.",
        "For replication, run the same applications against an Apache Kafka cluster of "
        "three brokers (change only --bootstrap); see docs/scaling-out.md.",
    )


def _down_brokers(cluster: ClusterSettings) -> list[Finding]:
    down = cluster.known_brokers - set(cluster.brokers)
    if not down:
        return []
    return [
        Finding(
            "problem",
            "broker-down",
            f"broker {_ids(down)}",
            f"Broker {_ids(down)} holds replicas but is not in the cluster's Metadata (down "
            "or fenced): its partitions run with fewer copies until it is back.",
            "Start the broker again and check its log; it catches up by itself.",
        )
    ]


def _broker_defaults(cluster: ClusterSettings) -> list[Finding]:
    """Defaults that new and auto-created topics (and Kafka's own) will get."""
    bad: dict[tuple[str, str], list[int]] = {}
    for node, configs in cluster.broker_configs.items():

        def value(name: str, configs: Mapping[str, Any] = configs) -> str | None:
            found = configs.get(name)
            return None if found is None else found.value

        for name in (
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
        ):
            if value(name) == "1":
                bad.setdefault((name, "1"), []).append(node)
        replicas = value("default.replication.factor")
        if value("min.insync.replicas") == "1" and replicas not in (None, "1"):
            bad.setdefault(("min.insync.replicas", "1"), []).append(node)
        if value("unclean.leader.election.enable") == "true":
            bad.setdefault(("unclean.leader.election.enable", "true"), []).append(node)
    return [_broker_finding(name, value, nodes) for (name, value), nodes in sorted(bad.items())]


def _broker_finding(name: str, value: str, nodes: list[int]) -> Finding:
    subject = f"broker {_ids(nodes)}"
    if name == "unclean.leader.election.enable":
        return Finding(
            "problem",
            "unclean-leader-election",
            subject,
            "unclean.leader.election.enable=true: a replica that fell behind may become "
            "leader, and the records only the old leader had are lost for good.",
            "Set unclean.leader.election.enable=false in server.properties (or "
            "kafka-configs.sh --entity-type brokers --entity-default --alter).",
        )
    if name == "min.insync.replicas":
        return Finding(
            "problem",
            "min-insync-replicas",
            subject,
            "min.insync.replicas=1 by default: topics without their own setting acknowledge "
            "acks=all writes once the leader alone has them, so a leader failure can lose them.",
            f"Set min.insync.replicas={RECOMMENDED_MIN_INSYNC} in server.properties.",
        )
    what = {
        "default.replication.factor": "topics created without a replication factor "
        "(auto-created ones included)",
        "offsets.topic.replication.factor": "__consumer_offsets (committed group offsets), "
        "when it is created",
        "transaction.state.log.replication.factor": "__transaction_state (transactions), "
        "when it is created",
    }[name]
    return Finding(
        "problem",
        "replication-factor",
        subject,
        f"{name}=1: {what} get one copy; losing that broker loses their data.",
        f"Set {name}={RECOMMENDED_REPLICAS} in server.properties.",
    )


def _topic(topic: TopicSettings, multi: bool) -> list[Finding]:
    findings: list[Finding] = []
    subject = f"topic {topic.name}"
    replicas = topic.replication_factor
    min_insync = _int(topic, "min.insync.replicas")
    if multi and replicas == 1:
        findings.append(
            Finding(
                "problem",
                "replication-factor",
                subject,
                f"{topic.name} keeps one copy of each partition: losing a broker loses the "
                "partitions it holds, and they are unavailable while it is down.",
                f"Recreate it with {RECOMMENDED_REPLICAS} replicas (headwater topics create "
                f"{topic.name} -r {RECOMMENDED_REPLICAS}) or add replicas with "
                "kafka-reassign-partitions.sh.",
            )
        )
    if min_insync is not None and replicas > 0:
        found = _min_insync(topic, replicas, min_insync, multi)
        if found is not None:
            findings.append(found)
    unclean = topic.configs.get("unclean.leader.election.enable")
    # With one node there is no other replica to elect; set from a broker default, the
    # broker's own finding covers every topic at once.
    if multi and unclean is not None and unclean.value == "true" and unclean.source == "topic":
        findings.append(
            Finding(
                "problem",
                "unclean-leader-election",
                subject,
                f"unclean.leader.election.enable=true on {topic.name}: a replica that fell "
                "behind may become leader, and records only the old leader had are lost.",
                _alter(topic.name, "unclean.leader.election.enable=false"),
            )
        )
    return findings


def _min_insync(
    topic: TopicSettings, replicas: int, min_insync: int, multi: bool
) -> Finding | None:
    subject = f"topic {topic.name}"
    if min_insync > replicas:
        return Finding(
            "problem",
            "min-insync-replicas",
            subject,
            f"min.insync.replicas={min_insync} is more than the {replicas} replica(s) of "
            f"{topic.name}: every acks=all write to it is refused now.",
            _alter(topic.name, f"min.insync.replicas={max(1, replicas - 1)}"),
        )
    if not multi or replicas == 1:
        return None
    better = (
        f"min.insync.replicas={replicas - 1}"
        if replicas > 2
        else f"min.insync.replicas={RECOMMENDED_MIN_INSYNC} with {RECOMMENDED_REPLICAS} replicas"
    )
    if min_insync == replicas:
        return Finding(
            "problem",
            "min-insync-replicas",
            subject,
            f"min.insync.replicas={min_insync} equals the replication factor of "
            f"{topic.name}: with one broker down, every acks=all write to it is refused.",
            _alter(topic.name, better) if replicas > 2 else f"Use {better}.",
        )
    if min_insync == 1:
        return Finding(
            "problem",
            "min-insync-replicas",
            subject,
            f"min.insync.replicas=1 on {topic.name} ({replicas} replicas): acks=all is "
            "acknowledged once the leader alone has a record, so a leader failure right "
            "after can lose acknowledged records.",
            _alter(topic.name, f"min.insync.replicas={RECOMMENDED_MIN_INSYNC}")
            if replicas > 2
            else f"Use {better}.",
        )
    return None


def _partitions(topic: TopicSettings) -> list[Finding]:
    findings: list[Finding] = []
    subject = f"topic {topic.name}"
    total = len(topic.partitions)
    offline = sorted(p for p, s in topic.partitions.items() if s.leader < 0)
    if offline:
        holders = {r for p in offline for r in topic.partitions[p].replicas}
        findings.append(
            Finding(
                "problem",
                "offline-partitions",
                subject,
                f"{len(offline)} of {total} partitions of {topic.name} have no leader "
                f"(partition {_ids(offline)}): reads and writes to them fail.",
                f"Bring back the brokers that hold their replicas ({_ids(holders)}). Do not "
                "enable unclean leader election to get them back: it loses data.",
            )
        )
    behind = sorted(
        p for p, s in topic.partitions.items() if s.leader >= 0 and len(s.isr) < len(s.replicas)
    )
    if behind:
        missing = {
            r
            for p in behind
            for r in topic.partitions[p].replicas
            if r not in topic.partitions[p].isr
        }
        findings.append(
            Finding(
                "problem",
                "under-replicated",
                subject,
                f"{len(behind)} of {total} partitions of {topic.name} are under-replicated: "
                f"broker {_ids(missing)} is not in sync, so one more failure can lose "
                "acknowledged records or stop writes.",
                f"Bring broker {_ids(missing)} back or let it catch up (check its log); "
                "no config to change.",
            )
        )
    return findings


def _acks(config: Mapping[str, Any]) -> str:
    return str(config.get("acks", "all")).lower()


def _producers(profiles: Mapping[str, Mapping[str, Any]], severity: Severity) -> list[Finding]:
    weak = {name: _acks(c) for name, c in profiles.items() if _acks(c) not in _ACKS_ALL}
    if not weak:
        return []
    risk = (
        "a record counts as written before it is on the in-sync replicas (on the embedded "
        "broker, before it is fsynced; with acks=0, before any broker has it), so a leader "
        "failure can lose records the producer saw acknowledged."
    )
    fix = "Use the durable profile, or set acks=all with enable.idempotence=true."
    if severity == "problem":
        return [
            Finding(
                "problem",
                "producer-acks",
                f"producer profile {name}",
                f"Producer profile {name!r} writes with acks={acks}: {risk}",
                fix,
            )
            for name, acks in weak.items()
        ]
    listed = ", ".join(f"{name} (acks={acks})" for name, acks in weak.items())
    return [
        Finding(
            "note",
            "producer-acks",
            "producer profiles",
            f"Not checked as in use, but defined: {listed}. With them {risk}",
            "Keep them for data you can afford to lose; pass --profile to check the ones "
            "your applications use.",
        )
    ]
