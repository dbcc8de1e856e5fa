"""Transactions admin: list and describe transactions and the producers writing to partitions.

What Kafka's ``kafka-transactions.sh`` does, without a JVM, routed as on a real cluster: every
broker coordinates some transactional ids, so listing asks each broker; describing asks the one
coordinator FindCoordinator names; producer state lives with each partition's leader.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from headwater.client._admin import AdminError
from headwater.client._backoff import Backoff
from headwater.client._wire import Connection, WireError, error_name, is_retriable, split_address
from headwater.protocol._codec import millis

METADATA, FIND_COORDINATOR, DESCRIBE_PRODUCERS = 3, 10, 61
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66
TRANSACTION_KEY_TYPE = 1
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC = 3, 17
TRANSACTIONAL_ID_NOT_FOUND = 105
# FindCoordinator v4 batches keys (KIP-699); v0-3 carry one key.
BATCHED_FIND_COORDINATOR = 4
# ListTransactions v1 adds the duration filter (KIP-994).
DURATION_FILTER_VERSION = 1
TRANSACTION_STATES = (
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "PrepareEpochFence",
    "Dead",
)
_T = TypeVar("_T")
# A coordinator that is loading or moving answers with a retriable error for a moment.
_RETRY = Backoff(base_s=0.1, cap_s=1.0, max_attempts=5)


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TransactionListing:
    transactional_id: str
    coordinator_id: int
    producer_id: int
    state: str


@dataclass(frozen=True, slots=True)
class TransactionDescription:
    transactional_id: str
    coordinator_id: int
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_ms: int  # -1 when the coordinator has no start time
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ProducerState:
    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp_ms: int  # -1 when unknown
    coordinator_epoch: int
    current_txn_start_offset: int  # -1 when the producer has no open transaction here


class _Retriable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransactionAdmin:
    """Blocking transactions admin against any Kafka-compatible cluster; close it when done.

    Connections are opened on first use and kept per broker address, so a command that asks
    every broker opens each connection once.
    """

    def __init__(self, bootstrap: str, *, timeout_s: float = 10.0) -> None:
        self._bootstrap = [a.strip() for a in bootstrap.split(",") if a.strip()]
        if not self._bootstrap:
            raise AdminError("no bootstrap server given: pass --bootstrap host:port")
        for address in self._bootstrap:
            split_address(address)
        self._timeout_s = timeout_s
        self._connections: dict[str, Connection] = {}

    def __enter__(self) -> TransactionAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def list_transactions(
        self,
        states: Iterable[str] = (),
        producer_ids: Iterable[int] = (),
        min_duration_ms: int | None = None,
    ) -> list[TransactionListing]:
        """Every broker's transactions matching all filters, sorted by transactional id."""
        body: dict[str, Any] = {
            "state_filters": list(states),
            "producer_id_filters": list(producer_ids),
            "duration_filter": -1 if min_duration_ms is None else min_duration_ms,
        }
        nodes = self.nodes()
        found: list[TransactionListing] = []
        for node in nodes:
            conn = self._connect(node.address)
            if (
                min_duration_ms is not None
                and conn.version(LIST_TRANSACTIONS) < DURATION_FILTER_VERSION
            ):
                raise AdminError(
                    f"broker {node.node_id} at {node.address} supports ListTransactions v0 "
                    "only, which has no duration filter: drop --min-duration-ms, or upgrade "
                    "the broker"
                )
            response = conn.call(LIST_TRANSACTIONS, body)
            if response.error_code != 0:
                raise AdminError(
                    f"broker {node.node_id} at {node.address} could not list transactions: "
                    f"{error_name(response.error_code)}"
                    + ("; retry in a moment" if is_retriable(response.error_code) else "")
                )
            found.extend(
                TransactionListing(
                    s.transactional_id, node.node_id, int(s.producer_id), s.transaction_state
                )
                for s in response.transaction_states
            )
        return sorted(found, key=lambda t: (t.transactional_id, t.coordinator_id))

    def describe_transaction(self, transactional_id: str) -> TransactionDescription:
        """State, producer and partitions of one transactional id, from its coordinator."""
        return self._retrying(lambda: self._describe_once(transactional_id))

    def describe_producers(
        self, topic: str, partitions: Iterable[int] | None = None
    ) -> list[ProducerState]:
        """Active producers on a topic's partitions (all of them unless given), per leader."""
        nodes, leaders = self._leaders(topic)
        wanted = sorted(set(partitions)) if partitions is not None else sorted(leaders)
        missing = [p for p in wanted if p not in leaders]
        if missing:
            raise AdminError(
                f"topic {topic!r} has no partition {missing[0]}: its partitions are "
                f"0-{len(leaders) - 1}"
            )
        by_leader: dict[int, list[int]] = {}
        for partition in wanted:
            leader = leaders[partition]
            if leader not in nodes:
                raise AdminError(
                    f"partition {topic}-{partition} has no leader right now; retry in a moment"
                )
            by_leader.setdefault(leader, []).append(partition)
        out: list[ProducerState] = []
        for leader, indexes in sorted(by_leader.items()):
            out.extend(self._producers_on(nodes[leader], topic, indexes))
        return sorted(out, key=lambda p: (p.partition, p.producer_id))

    def nodes(self) -> list[Node]:
        """The cluster's brokers, from a Metadata request to the bootstrap server."""
        response = self._metadata([])
        return sorted(
            (Node(int(b.node_id), b.host, int(b.port)) for b in response.brokers),
            key=lambda n: n.node_id,
        )

    def _describe_once(self, transactional_id: str) -> TransactionDescription:
        coordinator = self._coordinator(transactional_id)
        conn = self._connect(coordinator.address)
        response = conn.call(DESCRIBE_TRANSACTIONS, {"transactional_ids": [transactional_id]})
        states = [s for s in response.transaction_states if s.transactional_id == transactional_id]
        if not states:
            raise AdminError(
                f"the coordinator at {coordinator.address} did not describe {transactional_id!r}"
            )
        state = states[0]
        code = int(state.error_code)
        if code == TRANSACTIONAL_ID_NOT_FOUND:
            raise AdminError(f"no transactional id {transactional_id!r} on this cluster")
        if code != 0:
            message = f"cannot describe {transactional_id!r}: {error_name(code)}"
            if is_retriable(code):
                raise _Retriable(message)
            raise AdminError(message)
        started = state.transaction_start_time  # None when Kafka sent -1
        start_ms = -1 if started is None else millis(started)
        return TransactionDescription(
            transactional_id=transactional_id,
            coordinator_id=coordinator.node_id,
            state=state.transaction_state,
            producer_id=int(state.producer_id),
            producer_epoch=int(state.producer_epoch),
            timeout_ms=millis(state.transaction_timeout),
            start_ms=start_ms if start_ms >= 0 else -1,
            partitions=tuple(sorted((t.topic, int(p)) for t in state.topics for p in t.partitions)),
        )

    def _coordinator(self, transactional_id: str) -> Node:
        conn = self._bootstrap_connection()
        version = conn.version(FIND_COORDINATOR)
        if version >= BATCHED_FIND_COORDINATOR:
            body = {"key_type": TRANSACTION_KEY_TYPE, "coordinator_keys": [transactional_id]}
            response = conn.call(FIND_COORDINATOR, body)
            found = [c for c in response.coordinators if c.key == transactional_id]
            if not found:
                raise AdminError(f"FindCoordinator did not answer for {transactional_id!r}")
            answer = found[0]
        else:
            body = {"key_type": TRANSACTION_KEY_TYPE, "key": transactional_id}
            answer = conn.call(FIND_COORDINATOR, body)
        code = int(answer.error_code)
        if code != 0:
            message = (
                f"cannot find the transaction coordinator of {transactional_id!r}: "
                f"{error_name(code)}"
            )
            if is_retriable(code):
                raise _Retriable(message)
            raise AdminError(message)
        return Node(int(answer.node_id), answer.host, int(answer.port))

    def _leaders(self, topic: str) -> tuple[dict[int, Node], dict[int, int]]:
        response = self._metadata([topic])
        nodes = {
            int(b.node_id): Node(int(b.node_id), b.host, int(b.port)) for b in response.brokers
        }
        entries = [t for t in response.topics if t.name == topic]
        code = int(entries[0].error_code) if entries else UNKNOWN_TOPIC_OR_PARTITION
        if code == UNKNOWN_TOPIC_OR_PARTITION:
            raise AdminError(
                f"unknown topic {topic!r}: the cluster has no such topic; "
                "check the name with `headwater topics list`"
            )
        if code == INVALID_TOPIC:
            raise AdminError(f"{topic!r} is not a valid topic name")
        if code != 0:
            raise AdminError(f"cannot read metadata of topic {topic!r}: {error_name(code)}")
        leaders = {int(p.partition_index): int(p.leader_id) for p in entries[0].partitions}
        return nodes, leaders

    def _producers_on(self, node: Node, topic: str, indexes: list[int]) -> list[ProducerState]:
        conn = self._connect(node.address)
        body = {"topics": [{"name": topic, "partition_indexes": indexes}]}
        response = conn.call(DESCRIBE_PRODUCERS, body)
        out: list[ProducerState] = []
        for t in response.topics:
            for p in t.partitions:
                code = int(p.error_code)
                if code != 0:
                    detail = f" ({p.error_message})" if p.error_message else ""
                    hint = "; retry in a moment" if is_retriable(code) else ""
                    raise AdminError(
                        f"broker {node.node_id} cannot describe producers of "
                        f"{t.name}-{p.partition_index}: {error_name(code)}{detail}{hint}"
                    )
                out.extend(
                    ProducerState(
                        topic=t.name,
                        partition=int(p.partition_index),
                        producer_id=int(s.producer_id),
                        producer_epoch=int(s.producer_epoch),
                        last_sequence=int(s.last_sequence),
                        last_timestamp_ms=int(s.last_timestamp),
                        coordinator_epoch=int(s.coordinator_epoch),
                        current_txn_start_offset=int(s.current_txn_start_offset),
                    )
                    for s in p.active_producers
                )
        return out

    def _metadata(self, topics: list[str]) -> Any:
        body = {
            "topics": [{"name": name} for name in topics],
            # Looking a topic up must never create it on brokers that auto-create topics.
            "allow_auto_topic_creation": False,
        }
        return self._bootstrap_connection().call(METADATA, body)

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Retriable as exc:
                if _RETRY.exhausted(tries):
                    raise AdminError(f"{exc.message}; retry in a moment") from None
                # The coordinator may have moved: ask again on fresh connections.
                self.close()
                time.sleep(_RETRY.delay(tries))

    def _bootstrap_connection(self) -> Connection:
        """The first bootstrap server that answers; the error lists why each one did not."""
        errors = []
        for address in self._bootstrap:
            try:
                return self._connect(address, role="bootstrap server")
            except WireError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise WireError(errors[0])
        raise WireError("no bootstrap server answered: " + " | ".join(errors))

    def _connect(self, address: str, role: str = "broker at") -> Connection:
        conn = self._connections.get(address)
        if conn is None or conn.closed:  # a failed request closes its connection
            conn = Connection.open(address, timeout_s=self._timeout_s, role=role)
            self._connections[address] = conn
        return conn
