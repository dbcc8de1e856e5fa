"""Targets and the scenario registry: the same client actions against any Kafka-protocol broker.

A scenario is a function of a ``Target`` that performs client actions (through confluent-kafka
where a client can express them, through raw requests where clients refuse) and returns what
the client saw as plain data. The suite runs each scenario against Headwater and against Apache
Kafka, normalises both answers (``_normalise``) and compares them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from kio.index import load_response_schema
from kio.serial import entity_reader

from headwater.protocol import NewRecord, build_batch
from headwater.testing import KafkaCluster
from rawkafka import connect, encode_request, read_frame

Observation = dict[str, Any]
ScenarioFn = Callable[["Target"], Observation]

# Errors a client retries while the cluster settles (a coordinator or leader being elected,
# a transaction marker still being written); scenario setup waits them out.
RETRIABLE = {
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_OR_FOLLOWER",
    "COORDINATOR_LOAD_IN_PROGRESS",
    "COORDINATOR_NOT_AVAILABLE",
    "NOT_COORDINATOR",
    "CONCURRENT_TRANSACTIONS",
    "REQUEST_TIMED_OUT",
}
SETTLE_TIMEOUT_S = 30.0
CLIENT_QUIET = {"log_level": 0}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scripted interaction: its id (``area.name``), what it does, and the script."""

    name: str
    area: str
    doc: str
    fn: ScenarioFn


SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: ScenarioFn) -> ScenarioFn:
    """Register ``fn`` under ``<module>.<function>``; its docstring says what it does."""
    area = fn.__module__.rsplit(".", 1)[-1]
    name = f"{area}.{fn.__name__}"
    assert name not in SCENARIOS, f"scenario {name} registered twice"
    doc = " ".join((fn.__doc__ or "").split())
    SCENARIOS[name] = Scenario(name, area, doc, fn)
    return fn


def plain(value: Any) -> Any:
    """A kio entity (or anything inside one) as JSON-like data; error codes by name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.name.upper()
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return int(value)
    return repr(value)


def error_name(error: KafkaError | KafkaException | BaseException | None) -> str:
    """A client-side error as the Kafka error name librdkafka gives it ("NONE" for success)."""
    if error is None:
        return "NONE"
    if isinstance(error, KafkaException):
        error = error.args[0]
    if isinstance(error, KafkaError):
        return str(error.name())
    return type(error).__name__


class Connection:
    """One raw protocol connection: send a request, read its response as a kio entity."""

    def __init__(self, bootstrap: str) -> None:
        self.sock: socket.socket = connect(bootstrap.split(",")[0])
        self.sock.settimeout(SETTLE_TIMEOUT_S)
        self._pending: list[tuple[int, int]] = []

    def send(self, api_key: int, version: int, body: dict[str, Any]) -> None:
        self.sock.sendall(encode_request(api_key, version, body))
        self._pending.append((api_key, version))

    def receive(self) -> Any:
        api_key, version = self._pending.pop(0)
        frame = read_frame(self.sock)
        assert frame is not None, f"broker closed the connection (api {api_key} v{version})"
        response_type = load_response_schema(api_key, version)
        header_len = 4 if (not response_type.__flexible__ or api_key == 18) else 5
        entity, _ = entity_reader(response_type)(memoryview(frame), header_len)
        return entity

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        self.send(api_key, version, body)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


@dataclass
class Target:
    """A broker as the scenarios see it: a bootstrap address and helpers over it.

    Names a scenario creates carry a random suffix so one Kafka node serves every scenario;
    ``aliases`` maps each back to its stem, so answers from both brokers compare equal.
    """

    name: str
    bootstrap: str
    aliases: dict[str, str] = field(default_factory=dict)
    _admin: AdminClient | None = None

    def unique(self, stem: str) -> str:
        """A fresh topic, group or transactional id; reports show it as ``<stem>``."""
        full = f"cf-{stem}-{secrets.token_hex(4)}"
        self.aliases[full] = f"<{stem}>"
        return full

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = Connection(self.bootstrap)
        try:
            yield conn
        finally:
            conn.close()

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        """One raw request on a fresh connection."""
        with self.connection() as conn:
            return conn.call(api_key, version, body)

    def settle(
        self, api_key: int, version: int, body: dict[str, Any], error_of: Callable[[Any], str]
    ) -> Any:
        """Send a request until its error is not retriable, as a client would."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            response = self.call(api_key, version, body)
            if error_of(response) not in RETRIABLE or time.monotonic() > deadline:
                return response
            time.sleep(0.1)

    # -- clients --------------------------------------------------------------------------
    def producer(self, **config: Any) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, **CLIENT_QUIET, **config})

    def consumer(self, **config: Any) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.unique("group"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **CLIENT_QUIET,
                **config,
            }
        )

    def admin(self) -> AdminClient:
        """One AdminClient per target, kept alive: a collected client fails its futures."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, **CLIENT_QUIET})
        return self._admin

    # -- topics ---------------------------------------------------------------------------
    def create_topic(
        self, stem: str, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> str:
        """Create ``cf-<stem>-…`` and wait until every partition has a leader."""
        name = self.unique(stem)
        response = self.call(
            19,
            7,
            {
                "topics": [
                    {
                        "name": name,
                        "num_partitions": partitions,
                        "replication_factor": 1,
                        "assignments": [],
                        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
                    }
                ],
                "timeout": 30_000,
                "validate_only": False,
            },
        )
        code = plain(response.topics[0].error_code)
        assert code == "NONE", f"{self.name}: creating {name} failed with {code}"
        self.wait_for_leaders(name, partitions)
        return name

    def wait_for_leaders(self, topic: str, partitions: int) -> None:
        """Kafka's controller answers CreateTopics before the broker leads the partitions:
        wait until Metadata names a leader and the leader answers ListOffsets."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            response = self.call(
                3,
                12,
                {
                    "topics": [{"name": topic, "topic_id": None}],
                    "allow_auto_topic_creation": False,
                    "include_topic_authorized_operations": False,
                },
            )
            found = response.topics[0]
            leaders = [p for p in found.partitions if int(p.leader_id) >= 0]
            if int(found.error_code) == 0 and len(leaders) == partitions:
                ready = [self.list_offsets(topic, -1, i)["error_code"] for i in range(partitions)]
                if all(code == "NONE" for code in ready):
                    return
            assert time.monotonic() < deadline, f"{self.name}: {topic} has no leaders"
            time.sleep(0.05)

    def produce_raw(
        self,
        topic: str,
        batch: bytes,
        partition: int = 0,
        *,
        transactional_id: str | None = None,
        version: int = 9,
    ) -> dict[str, Any]:
        """Produce one stored batch with acks=all; the partition's answer, plain."""
        response = self.call(
            0,
            version,
            {
                "transactional_id": transactional_id,
                "acks": -1,
                "timeout": 10_000,
                "topic_data": [
                    {"name": topic, "partition_data": [{"index": partition, "records": batch}]}
                ],
            },
        )
        answer: dict[str, Any] = plain(response.responses[0].partition_responses[0])
        return answer

    def produce_values(self, topic: str, values: list[bytes]) -> None:
        """Write plain records (no producer id) in one batch; they must be accepted."""
        batch = build_batch([NewRecord(None, v, now_ms()) for v in values])
        answer = self.produce_raw(topic, bytes(batch))
        assert answer["error_code"] == "NONE", f"{self.name}: produce failed {answer}"

    def fetch(
        self,
        topic: str,
        offset: int,
        partition: int = 0,
        *,
        isolation_level: int = 0,
        max_wait_ms: int = 0,
    ) -> Any:
        """One Fetch v12 of one partition; the partition entity."""
        response = self.call(
            1,
            12,
            {
                "replica_id": -1,
                "max_wait": max_wait_ms,
                "min_bytes": 1,
                "max_bytes": 1 << 20,
                "isolation_level": isolation_level,
                "session_id": 0,
                "session_epoch": -1,
                "topics": [
                    {
                        "topic": topic,
                        "partitions": [
                            {
                                "partition": partition,
                                "current_leader_epoch": -1,
                                "fetch_offset": offset,
                                "last_fetched_epoch": -1,
                                "log_start_offset": -1,
                                "partition_max_bytes": 1 << 20,
                            }
                        ],
                    }
                ],
                "forgotten_topics_data": [],
                "rack_id": "",
            },
        )
        return response.responses[0].partitions[0]

    def list_offsets(
        self, topic: str, timestamp: int, partition: int = 0, *, isolation_level: int = 0
    ) -> dict[str, Any]:
        """ListOffsets v7 (the first with max-timestamp, -3) of one partition, plain."""
        response = self.call(
            2,
            7,
            {
                "replica_id": -1,
                "isolation_level": isolation_level,
                "topics": [
                    {
                        "name": topic,
                        "partitions": [
                            {
                                "partition_index": partition,
                                "current_leader_epoch": -1,
                                "timestamp": timestamp,
                            }
                        ],
                    }
                ],
            },
        )
        answer: dict[str, Any] = plain(response.topics[0].partitions[0])
        return answer


def now_ms() -> int:
    """Record timestamps are the present: both brokers delete records older than
    retention.ms (7 days) at their first retention check, which would change the answers."""
    return int(time.time() * 1000)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Poll ``condition`` until it holds (Kafka applies some changes asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# Internal topics with one partition: they are created on a coordinator's first use, and 50
# would take seconds on two cores. Nothing a scenario observes depends on their partition count
# or on how often the node looks for timed-out transactions, only on how long a test waits.
KAFKA_SINGLE_CONFIG = {
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.num.partitions": "1",
    # Look for timed-out transactions every second, as Headwater does, rather than every 10 s.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
}


def start_kafka_single(workdir: Path) -> KafkaCluster:
    """One Apache Kafka node for every scenario; call from the thread that outlives it.

    Its ports are chosen free before the JVM binds them, seconds later; a broker started
    meanwhile by a concurrent test run can take one. The node is checked by its cluster id,
    and started again on new ports if something else answers.
    """
    for attempt in range(3):
        home = workdir / f"attempt-{attempt}"
        cluster = KafkaCluster(1, home, extra_config=KAFKA_SINGLE_CONFIG).start()
        expected = (home / "cluster.id").read_text().strip()
        answer = Target("kafka", cluster.bootstrap).call(
            3,
            12,
            {
                "topics": [],
                "allow_auto_topic_creation": False,
                "include_topic_authorized_operations": False,
            },
        )
        if answer.cluster_id == expected:
            return cluster
        cluster.stop(graceful=False)
    raise RuntimeError("another process kept answering on the Kafka node's port")
