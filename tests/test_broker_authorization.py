"""ACL enforcement on a real broker: every API's checks, as Apache Kafka 4.x makes them.

One broker with a SASL_PLAINTEXT listener, the authorizer on and ``User:admin`` as super user.
Each user is made in the credential store (a running broker reads it at the next login). The
table walk takes every API of ``headwater.broker._authorize.CHECKS``: a fresh user with no ACL
is refused with the API's first code; the admin then grants, through confluent-kafka's
AdminClient (CreateAcls), one ACL after another, and each grant moves the refusal to the next
check until the same user succeeds. Requests go over raw sockets authenticated with SASL PLAIN,
so each answer's exact error code is seen; the client behaviours (a producer's
TopicAuthorizationException, a consumer's GROUP_AUTHORIZATION_FAILED) use confluent-kafka.
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

import rawkafka
from headwater.broker import BrokerThread
from headwater.broker._authorize import CHECKS, render_markdown
from headwater.protocol._records import NewRecord, build_batch
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker

LISTENER = "SASL_PLAINTEXT"
ADMIN = "User:admin"
TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED = 29, 30, 31, 53
CLUSTER = "kafka-cluster"
DOCS = Path(__file__).parent.parent / "docs" / "security.md"


def add_user(data_dir: Path, user: str) -> None:
    store = CredentialStore(credentials_path(data_dir))
    store.upsert(user, ScramCredential.from_password("SCRAM-SHA-256", f"{user}-pw", 4096))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerThread]:
    data = tmp_path_factory.mktemp("authz-broker")
    add_user(data, "admin")
    with embedded_broker(
        data,
        listeners=f"{LISTENER}://127.0.0.1:0",
        authorizer_enabled=True,
        super_users=[ADMIN],
        connection_failed_authentication_delay_ms=10,
    ) as running:
        yield running


def client_config(broker: BrokerThread, user: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.bootstrap_for(LISTENER),
        "security.protocol": LISTENER,
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": f"{user}-pw",
        **extra,
    }


def new_user(broker: BrokerThread) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    add_user(broker.broker.config.data_dir, name)
    return name


def login(broker: BrokerThread, user: str) -> socket.socket:
    """A raw socket authenticated as ``user`` with SASL PLAIN (SaslHandshake v1, then
    SaslAuthenticate v2)."""
    sock = rawkafka.connect(broker.bootstrap_for(LISTENER))
    handshake = rawkafka.call(sock, 17, 1, {"mechanism": "PLAIN"})
    assert int(handshake.error_code) == 0
    token = f"\0{user}\0{user}-pw".encode()
    answer = rawkafka.call(sock, 36, 2, {"auth_bytes": token})
    assert int(answer.error_code) == 0, answer
    return sock


_RESOURCE = {
    "TOPIC": ResourceType.TOPIC,
    "GROUP": ResourceType.GROUP,
    "CLUSTER": ResourceType.BROKER,
    "TRANSACTIONAL_ID": ResourceType.TRANSACTIONAL_ID,
}


def grant(
    admin: AdminClient,
    principal: str,
    resource: str,
    name: str,
    operation: str,
    *,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    permission: AclPermissionType = AclPermissionType.ALLOW,
) -> None:
    binding = AclBinding(
        _RESOURCE[resource],
        name,
        pattern,
        principal,
        "*",
        getattr(AclOperation, operation),
        permission,
    )
    for future in admin.create_acls([binding]).values():
        future.result(timeout=15)


@pytest.fixture(scope="module")
def admin(broker: BrokerThread) -> AdminClient:
    return AdminClient(client_config(broker, "admin"))


def create_topic(admin: AdminClient, name: str, partitions: int = 1) -> None:
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(timeout=15)


# -- the table walk ----------------------------------------------------------------------


@dataclass
class Names:
    topic: str
    group: str
    txn: str
    state: dict[str, Any] = field(default_factory=dict)


Attempt = Callable[[socket.socket, Names], int]
# (resource type, name: "topic", "group", "txn" or "cluster", operation), and the code the
# request answers before that grant.
Step = tuple[str, str, str, int]


@dataclass
class Case:
    api: str
    attempt: Attempt
    steps: list[Step]
    success: int = 0
    prepare: Callable[[socket.socket, Names], None] | None = None


def _batch(**kwargs: Any) -> bytes:
    return bytes(build_batch([NewRecord(None, b"v", 1_700_000_000_000)], **kwargs))


def _produce(sock: socket.socket, topic: str, batch: bytes, txn: str | None = None) -> int:
    body = {
        "transactional_id": txn,
        "acks": -1,
        "timeout": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
    }
    response = rawkafka.call(sock, 0, 9, body)
    return int(response.responses[0].partition_responses[0].error_code)


def _partition_code(response: Any, topics: str, partitions: str, code: str = "error_code") -> int:
    return int(getattr(getattr(getattr(response, topics)[0], partitions)[0], code))


def _init_txn(sock: socket.socket, names: Names) -> None:
    answer = rawkafka.call(
        sock, 22, 4, {"transactional_id": names.txn, "transaction_timeout": 60000}
    )
    assert int(answer.error_code) == 0
    names.state["pid"] = int(answer.producer_id)
    names.state["epoch"] = int(answer.producer_epoch)


def _begin_txn(sock: socket.socket, names: Names) -> None:
    """As the admin: an open transaction of names.txn holding partition 0 of names.topic."""
    _init_txn(sock, names)
    body = {
        "v3_and_below_transactional_id": names.txn,
        "v3_and_below_producer_id": names.state["pid"],
        "v3_and_below_producer_epoch": names.state["epoch"],
        "v3_and_below_topics": [{"name": names.topic, "partitions": [0]}],
    }
    answer = rawkafka.call(sock, 24, 3, body)
    assert (
        _partition_code(
            answer, "results_by_topic_v3_and_below", "results_by_partition", "partition_error_code"
        )
        == 0
    )


def _begin_txn_with_group(sock: socket.socket, names: Names) -> None:
    _begin_txn(sock, names)
    rawkafka.call(sock, 25, 3, {**_txn(names), "group_id": names.group})


def _txn(names: Names) -> dict[str, Any]:
    return {
        "transactional_id": names.txn,
        "producer_id": names.state["pid"],
        "producer_epoch": names.state["epoch"],
    }


def _txn_produce(sock: socket.socket, names: Names) -> int:
    batch = _batch(
        producer_id=names.state["pid"],
        producer_epoch=names.state["epoch"],
        base_sequence=0,
        transactional=True,
    )
    return _produce(sock, names.topic, batch, names.txn)


def _commit(sock: socket.socket, names: Names) -> int:
    body = {
        "group_id": names.group,
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "topics": [
            {
                "name": names.topic,
                "partitions": [{"partition_index": 0, "committed_offset": 0}],
            }
        ],
    }
    return _partition_code(rawkafka.call(sock, 8, 8, body), "topics", "partitions")


def _offset_fetch(sock: socket.socket, names: Names) -> int:
    body = {
        "groups": [
            {"group_id": names.group, "topics": [{"name": names.topic, "partition_indexes": [0]}]}
        ]
    }
    group = rawkafka.call(sock, 9, 8, body).groups[0]
    if int(group.error_code):
        return int(group.error_code)
    return int(group.topics[0].partitions[0].error_code)


def _find(key_type: int) -> Attempt:
    def attempt(sock: socket.socket, names: Names) -> int:
        key = names.group if key_type == 0 else names.txn
        body = {"key_type": key_type, "coordinator_keys": [key]}
        return int(rawkafka.call(sock, 10, 4, body).coordinators[0].error_code)

    return attempt


def _top(api_key: int, version: int, body: Callable[[Names], dict[str, Any]]) -> Attempt:
    """An attempt whose answer has a top-level error_code."""

    def attempt(sock: socket.socket, names: Names) -> int:
        return int(rawkafka.call(sock, api_key, version, body(names)).error_code)

    return attempt


def _first(
    api_key: int, version: int, body: Callable[[Names], dict[str, Any]], path: str
) -> Attempt:
    """An attempt whose code is at ``path`` ("results.0.error_code") in the answer."""

    def attempt(sock: socket.socket, names: Names) -> int:
        value: Any = rawkafka.call(sock, api_key, version, body(names))
        for part in path.split("."):
            value = value[int(part)] if part.isdigit() else getattr(value, part)
        return int(value)

    return attempt


def _metadata_create(sock: socket.socket, names: Names) -> int:
    body = {"topics": [{"name": names.topic + "-auto"}], "allow_auto_topic_creation": True}
    return int(rawkafka.call(sock, 3, 9, body).topics[0].error_code)


def _create_topics(sock: socket.socket, names: Names) -> int:
    """Create topic-new and (as the admin) delete it again, so the next attempt can."""
    name = names.topic + "-new"
    body = {
        "topics": [{"name": name, "num_partitions": 1, "replication_factor": 1}],
        "timeout": 5000,
    }
    topic = rawkafka.call(sock, 19, 5, body).topics[0]
    if int(topic.error_code) == 0:
        rawkafka.call(names.state["admin"], 20, 5, {"topic_names": [name], "timeout": 5000})
    return int(topic.error_code) or int(topic.topic_config_error_code)


def _offset_delete(sock: socket.socket, names: Names) -> int:
    response = rawkafka.call(sock, 47, 0, {"group_id": names.group, "topics": _tp(names)})
    return int(response.error_code) or int(response.topics[0].partitions[0].error_code)


def _consumer_heartbeat(sock: socket.socket, names: Names) -> int:
    body = {
        "group_id": names.group,
        "member_id": "",
        "member_epoch": 0,
        "rebalance_timeout": 30000,
        "subscribed_topic_names": [names.topic],
        "server_assignor": None,
        "topic_partitions": [],
    }
    return int(rawkafka.call(sock, 68, 0, body).error_code)


def _listed(api_key: int, version: int, key: str, attr: str, want: str) -> Attempt:
    """For listings that leave out what the caller may not see: 0 when ``want`` is listed,
    else -1."""

    def attempt(sock: socket.socket, names: Names) -> int:
        response = rawkafka.call(sock, api_key, version, {})
        listed = {getattr(item, attr) for item in getattr(response, key)}
        return 0 if getattr(names, want) in listed else -1

    return attempt


def _cluster_operations(api_key: int, version: int) -> Attempt:
    """0 when the answer's cluster operations are filled in, -1 when they are 0."""

    def attempt(sock: socket.socket, names: Names) -> int:
        body = {"include_cluster_authorized_operations": True, "topics": []}
        ops = int(rawkafka.call(sock, api_key, version, body).cluster_authorized_operations)
        return 0 if ops else -1

    return attempt


def _describe_txn_topics(sock: socket.socket, names: Names) -> int:
    body = {"transactional_ids": [names.txn]}
    sock.sendall(rawkafka.encode_request(65, 0, body))
    frame = rawkafka.read_frame(sock)
    assert frame is not None
    # kio cannot read the refusal's transaction_start_time of -1 (Kafka's value), so the
    # first state's error code is read where it sits: after the flexible response header,
    # the throttle time and the one-byte array length.
    code = struct.unpack_from(">h", frame, 10)[0]
    if code:
        return int(code)
    response = rawkafka.call(sock, 65, 0, body)
    state = response.transaction_states[0]
    return 0 if [t.topic for t in state.topics] == [names.topic] else -1


def _config(kind: int, names: Names) -> dict[str, Any]:
    return {"resource_type": kind, "resource_name": names.topic if kind == 2 else "1"}


def _alter_configs(kind: int) -> Attempt:
    def attempt(sock: socket.socket, names: Names) -> int:
        configs = [{"name": "retention.ms", "value": "86400000"}] if kind == 2 else []
        body = {"resources": [{**_config(kind, names), "configs": configs}]}
        return int(rawkafka.call(sock, 33, 2, body).responses[0].error_code)

    return attempt


def _incremental(kind: int) -> Attempt:
    def attempt(sock: socket.socket, names: Names) -> int:
        configs = (
            [{"name": "retention.ms", "config_operation": 0, "value": "86400000"}]
            if kind == 2
            else []
        )
        body = {"resources": [{**_config(kind, names), "configs": configs}]}
        return int(rawkafka.call(sock, 44, 1, body).responses[0].error_code)

    return attempt


def _describe_configs(kind: int) -> Attempt:
    def attempt(sock: socket.socket, names: Names) -> int:
        body = {"resources": [{**_config(kind, names), "configuration_keys": None}]}
        return int(rawkafka.call(sock, 32, 4, body).results[0].error_code)

    return attempt


def _tp(names: Names, **partition: Any) -> list[dict[str, Any]]:
    return [{"name": names.topic, "partitions": [{"partition_index": 0, **partition}]}]


INVALID_REQUEST = 42
NOT_COORDINATOR_FREE = -1  # a code no step expects: "anything but the last refusal"

CASES = [
    Case(
        "Produce",
        lambda s, n: _produce(s, n.topic, _batch()),
        [("TOPIC", "topic", "WRITE", TOPIC_DENIED)],
    ),
    Case(
        "Produce",
        _txn_produce,
        [
            ("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED),
            ("TOPIC", "topic", "WRITE", TOPIC_DENIED),
        ],
        prepare=_begin_txn,
    ),
    Case(
        "Fetch",
        _first(
            1,
            12,
            lambda n: {
                "max_wait": 0,
                "min_bytes": 0,
                "max_bytes": 1 << 20,
                "topics": [
                    {
                        "topic": n.topic,
                        "partitions": [
                            {
                                "partition": 0,
                                "fetch_offset": 0,
                                "partition_max_bytes": 1 << 20,
                                "current_leader_epoch": -1,
                                "log_start_offset": -1,
                            }
                        ],
                    }
                ],
            },
            "responses.0.partitions.0.error_code",
        ),
        [("TOPIC", "topic", "READ", TOPIC_DENIED)],
    ),
    Case(
        "ListOffsets",
        _first(
            2,
            7,
            lambda n: {
                "replica_id": -1,
                "topics": [
                    {
                        "name": n.topic,
                        "partitions": [
                            {"partition_index": 0, "timestamp": -1, "current_leader_epoch": -1}
                        ],
                    }
                ],
            },
            "topics.0.partitions.0.error_code",
        ),
        [("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED)],
    ),
    Case(
        "Metadata",
        _first(3, 9, lambda n: {"topics": [{"name": n.topic}]}, "topics.0.error_code"),
        [("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED)],
    ),
    Case(
        "Metadata",
        _metadata_create,
        [
            ("TOPIC", "topic-auto", "DESCRIBE", TOPIC_DENIED),
            ("TOPIC", "topic-auto", "CREATE", TOPIC_DENIED),
        ],
    ),
    Case(
        "Metadata",
        _metadata_create,
        [
            ("TOPIC", "topic-auto", "DESCRIBE", TOPIC_DENIED),
            ("CLUSTER", "cluster", "CREATE", TOPIC_DENIED),
        ],
    ),
    Case(
        "OffsetCommit",
        _commit,
        [("GROUP", "group", "READ", GROUP_DENIED), ("TOPIC", "topic", "READ", TOPIC_DENIED)],
    ),
    Case(
        "OffsetFetch",
        _offset_fetch,
        [
            ("GROUP", "group", "DESCRIBE", GROUP_DENIED),
            ("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED),
        ],
    ),
    Case("FindCoordinator", _find(0), [("GROUP", "group", "DESCRIBE", GROUP_DENIED)]),
    Case("FindCoordinator", _find(1), [("TRANSACTIONAL_ID", "txn", "DESCRIBE", TXN_DENIED)]),
    Case(
        "JoinGroup",
        _top(
            11,
            5,
            lambda n: {
                "group_id": n.group,
                "session_timeout": 10000,
                "rebalance_timeout": 10000,
                "member_id": "",
                "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": b""}],
            },
        ),
        [("GROUP", "group", "READ", GROUP_DENIED)],
        success=79,  # MEMBER_ID_REQUIRED: the join goes on
    ),
    Case(
        "Heartbeat",
        _top(12, 4, lambda n: {"group_id": n.group, "generation_id": 1, "member_id": "m"}),
        [("GROUP", "group", "READ", GROUP_DENIED)],
        success=NOT_COORDINATOR_FREE,
    ),
    Case(
        "LeaveGroup",
        _top(13, 4, lambda n: {"group_id": n.group, "members": [{"member_id": "m"}]}),
        [("GROUP", "group", "READ", GROUP_DENIED)],
        success=NOT_COORDINATOR_FREE,
    ),
    Case(
        "SyncGroup",
        _top(
            14,
            5,
            lambda n: {
                "group_id": n.group,
                "generation_id": 1,
                "member_id": "m",
                "protocol_type": "consumer",
                "protocol_name": "range",
                "assignments": [],
            },
        ),
        [("GROUP", "group", "READ", GROUP_DENIED)],
        success=NOT_COORDINATOR_FREE,
    ),
    Case(
        "DescribeGroups",
        _first(15, 5, lambda n: {"groups": [n.group]}, "groups.0.error_code"),
        [("GROUP", "group", "DESCRIBE", GROUP_DENIED)],
    ),
    Case(
        "ListGroups",
        _listed(16, 4, "groups", "group_id", "group"),
        [("GROUP", "group", "DESCRIBE", -1)],
        prepare=lambda s, n: None if _commit(s, n) == 0 else pytest.fail("commit"),
    ),
    Case(
        "ListGroups",
        _listed(16, 4, "groups", "group_id", "group"),
        [("CLUSTER", "cluster", "DESCRIBE", -1)],
        prepare=lambda s, n: None if _commit(s, n) == 0 else pytest.fail("commit"),
    ),
    Case(
        "CreateTopics",
        _create_topics,
        [
            ("TOPIC", "topic-new", "CREATE", TOPIC_DENIED),
            ("TOPIC", "topic-new", "DESCRIBE_CONFIGS", TOPIC_DENIED),
        ],
    ),
    Case(
        "CreateTopics",
        lambda s, n: int(
            rawkafka.call(
                s,
                19,
                5,
                {
                    "topics": [
                        {"name": n.topic + "-new", "num_partitions": 1, "replication_factor": 1}
                    ],
                    "timeout": 5000,
                    "validate_only": True,
                },
            )
            .topics[0]
            .error_code
        ),
        [("CLUSTER", "cluster", "CREATE", TOPIC_DENIED)],
    ),
    Case(
        "DeleteTopics",
        _first(
            20, 5, lambda n: {"topic_names": [n.topic], "timeout": 5000}, "responses.0.error_code"
        ),
        [("TOPIC", "topic", "DELETE", TOPIC_DENIED)],
    ),
    Case(
        "DeleteRecords",
        _first(
            21,
            2,
            lambda n: {
                "topics": [{"name": n.topic, "partitions": [{"partition_index": 0, "offset": 0}]}],
                "timeout": 5000,
            },
            "topics.0.partitions.0.error_code",
        ),
        [("TOPIC", "topic", "DELETE", TOPIC_DENIED)],
    ),
    Case(
        "InitProducerId",
        _top(22, 4, lambda n: {"transactional_id": n.txn, "transaction_timeout": 60000}),
        [("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED)],
    ),
    Case(
        "InitProducerId",
        _top(22, 4, lambda n: {"transactional_id": None, "transaction_timeout": 60000}),
        [("CLUSTER", "cluster", "IDEMPOTENT_WRITE", CLUSTER_DENIED)],
    ),
    Case(
        "InitProducerId",
        _top(22, 4, lambda n: {"transactional_id": None, "transaction_timeout": 60000}),
        [("TOPIC", "topic", "WRITE", CLUSTER_DENIED)],
    ),
    Case(
        "OffsetForLeaderEpoch",
        _first(
            23,
            4,
            lambda n: {
                "replica_id": -1,
                "topics": [
                    {
                        "topic": n.topic,
                        "partitions": [
                            {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}
                        ],
                    }
                ],
            },
            "topics.0.partitions.0.error_code",
        ),
        [("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED)],
    ),
    Case(
        "AddPartitionsToTxn",
        _first(
            24,
            3,
            lambda n: {
                "v3_and_below_transactional_id": n.txn,
                "v3_and_below_producer_id": n.state["pid"],
                "v3_and_below_producer_epoch": n.state["epoch"],
                "v3_and_below_topics": [{"name": n.topic, "partitions": [0]}],
            },
            "results_by_topic_v3_and_below.0.results_by_partition.0.partition_error_code",
        ),
        [
            ("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED),
            ("TOPIC", "topic", "WRITE", TOPIC_DENIED),
        ],
        prepare=_init_txn,
    ),
    Case(
        "AddOffsetsToTxn",
        _top(25, 3, lambda n: {**_txn(n), "group_id": n.group}),
        [
            ("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED),
            ("GROUP", "group", "READ", GROUP_DENIED),
        ],
        prepare=_begin_txn,
    ),
    Case(
        "EndTxn",
        _top(26, 3, lambda n: {**_txn(n), "committed": False}),
        [("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED)],
        prepare=_begin_txn,
    ),
    Case(
        "TxnOffsetCommit",
        _first(
            28,
            3,
            lambda n: {
                **_txn(n),
                "group_id": n.group,
                "generation_id": -1,
                "member_id": "",
                "topics": _tp(n, committed_offset=0, committed_metadata=""),
            },
            "topics.0.partitions.0.error_code",
        ),
        [
            ("TRANSACTIONAL_ID", "txn", "WRITE", TXN_DENIED),
            ("GROUP", "group", "READ", GROUP_DENIED),
            ("TOPIC", "topic", "READ", TOPIC_DENIED),
        ],
        prepare=_begin_txn_with_group,
    ),
    Case(
        "DescribeAcls",
        _top(
            29,
            2,
            lambda n: {
                "resource_type_filter": 1,
                "pattern_type_filter": 1,
                "operation": 1,
                "permission_type": 1,
            },
        ),
        [("CLUSTER", "cluster", "DESCRIBE", CLUSTER_DENIED)],
    ),
    Case(
        "CreateAcls",
        _first(
            30,
            2,
            lambda n: {
                "creations": [
                    {
                        "resource_type": 2,
                        "resource_name": n.topic,
                        "resource_pattern_type": 3,
                        "principal": "User:nobody",
                        "host": "*",
                        "operation": 3,
                        "permission_type": 3,
                    }
                ]
            },
            "results.0.error_code",
        ),
        [("CLUSTER", "cluster", "ALTER", CLUSTER_DENIED)],
    ),
    Case(
        "DeleteAcls",
        _first(
            31,
            2,
            lambda n: {
                "filters": [
                    {
                        "resource_type_filter": 2,
                        "resource_name_filter": n.topic,
                        "pattern_type_filter": 3,
                        "principal_filter": "User:nobody",
                        "operation": 1,
                        "permission_type": 1,
                    }
                ]
            },
            "filter_results.0.error_code",
        ),
        [("CLUSTER", "cluster", "ALTER", CLUSTER_DENIED)],
    ),
    Case(
        "DescribeConfigs",
        _describe_configs(2),
        [("TOPIC", "topic", "DESCRIBE_CONFIGS", TOPIC_DENIED)],
    ),
    Case(
        "DescribeConfigs",
        _describe_configs(4),
        [("CLUSTER", "cluster", "DESCRIBE_CONFIGS", CLUSTER_DENIED)],
    ),
    Case("AlterConfigs", _alter_configs(2), [("TOPIC", "topic", "ALTER_CONFIGS", TOPIC_DENIED)]),
    Case(
        "AlterConfigs",
        _alter_configs(4),
        [("CLUSTER", "cluster", "ALTER_CONFIGS", CLUSTER_DENIED)],
        success=INVALID_REQUEST,  # broker configs are read-only here
    ),
    Case(
        "DescribeLogDirs",
        _top(35, 4, lambda n: {"topics": None}),
        [("CLUSTER", "cluster", "DESCRIBE", CLUSTER_DENIED)],
    ),
    Case(
        "CreatePartitions",
        _first(
            37,
            3,
            lambda n: {
                "topics": [{"name": n.topic, "count": 2, "assignments": None}],
                "timeout": 5000,
            },
            "results.0.error_code",
        ),
        [("TOPIC", "topic", "ALTER", TOPIC_DENIED)],
    ),
    Case(
        "DeleteGroups",
        _first(42, 2, lambda n: {"groups_names": [n.group]}, "results.0.error_code"),
        [("GROUP", "group", "DELETE", GROUP_DENIED)],
        prepare=lambda s, n: None if _commit(s, n) == 0 else pytest.fail("commit"),
    ),
    Case(
        "IncrementalAlterConfigs",
        _incremental(2),
        [("TOPIC", "topic", "ALTER_CONFIGS", TOPIC_DENIED)],
    ),
    Case(
        "IncrementalAlterConfigs",
        _incremental(4),
        [("CLUSTER", "cluster", "ALTER_CONFIGS", CLUSTER_DENIED)],
        success=INVALID_REQUEST,
    ),
    Case(
        "OffsetDelete",
        _offset_delete,
        [("GROUP", "group", "DELETE", GROUP_DENIED), ("TOPIC", "topic", "READ", TOPIC_DENIED)],
        prepare=lambda s, n: None if _commit(s, n) == 0 else pytest.fail("commit"),
    ),
    Case(
        "DescribeUserScramCredentials",
        _top(50, 0, lambda n: {"users": None}),
        [("CLUSTER", "cluster", "DESCRIBE", CLUSTER_DENIED)],
    ),
    Case(
        "AlterUserScramCredentials",
        _first(
            51,
            0,
            lambda n: {"deletions": [{"name": "nobody", "mechanism": 1}], "upsertions": []},
            "results.0.error_code",
        ),
        [("CLUSTER", "cluster", "ALTER", CLUSTER_DENIED)],
        success=91,  # RESOURCE_NOT_FOUND: allowed to try
    ),
    Case(
        "DescribeClientQuotas",
        _top(48, 1, lambda n: {"components": [], "strict": False}),
        [("CLUSTER", "cluster", "DESCRIBE_CONFIGS", CLUSTER_DENIED)],
    ),
    Case(
        "AlterClientQuotas",
        _first(
            49,
            1,
            lambda n: {
                "entries": [
                    {
                        "entity": [{"entity_type": "client-id", "entity_name": n.topic}],
                        "ops": [{"key": "producer_byte_rate", "value": 1e9, "remove": False}],
                    }
                ],
                "validate_only": True,
            },
            "entries.0.error_code",
        ),
        [("CLUSTER", "cluster", "ALTER_CONFIGS", CLUSTER_DENIED)],
    ),
    Case("DescribeCluster", _cluster_operations(60, 1), [("CLUSTER", "cluster", "DESCRIBE", -1)]),
    Case("Metadata", _cluster_operations(3, 9), [("CLUSTER", "cluster", "DESCRIBE", -1)]),
    Case(
        "DescribeProducers",
        _first(
            61,
            0,
            lambda n: {"topics": [{"name": n.topic, "partition_indexes": [0]}]},
            "topics.0.partitions.0.error_code",
        ),
        [("TOPIC", "topic", "READ", TOPIC_DENIED)],
    ),
    Case(
        "DescribeTransactions",
        _describe_txn_topics,
        [("TRANSACTIONAL_ID", "txn", "DESCRIBE", TXN_DENIED), ("TOPIC", "topic", "DESCRIBE", -1)],
        prepare=_begin_txn,
    ),
    Case(
        "ListTransactions",
        _listed(66, 1, "transaction_states", "transactional_id", "txn"),
        [("TRANSACTIONAL_ID", "txn", "DESCRIBE", -1)],
        prepare=_init_txn,
    ),
    Case(
        "ConsumerGroupHeartbeat",
        _consumer_heartbeat,
        [("GROUP", "group", "READ", GROUP_DENIED), ("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED)],
    ),
    Case(
        "ConsumerGroupDescribe",
        _first(
            69,
            0,
            lambda n: {"group_ids": [n.group], "include_authorized_operations": True},
            "groups.0.error_code",
        ),
        [("GROUP", "group", "DESCRIBE", GROUP_DENIED)],
        success=69,  # GROUP_ID_NOT_FOUND: no such consumer group, but the caller may ask
    ),
    Case(
        "DescribeTopicPartitions",
        _first(
            75,
            0,
            lambda n: {
                "topics": [{"name": n.topic}],
                "response_partition_limit": 100,
                "cursor": None,
            },
            "topics.0.error_code",
        ),
        [("TOPIC", "topic", "DESCRIBE", TOPIC_DENIED)],
    ),
]


def _resource_name(names: Names, which: str) -> str:
    if which == "cluster":
        return CLUSTER
    base, _, suffix = which.partition("-")
    value = str(getattr(names, base))
    return f"{value}-{suffix}" if suffix else value


def test_the_walk_covers_every_check_of_the_table() -> None:
    walked = {(c.api, s[2], s[0]) for c in CASES for s in c.steps}
    required = {
        (api, op.name, rt.name)
        for api, checks in CHECKS.items()
        for check in checks
        for op, rt in check.grants
    }
    assert required <= walked, sorted(required - walked)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.api)
def test_each_api_refuses_until_granted(
    broker: BrokerThread, admin: AdminClient, case: Case
) -> None:
    user = new_user(broker)
    principal = f"User:{user}"
    tag = uuid.uuid4().hex[:8]
    names = Names(f"t-{tag}", f"g-{tag}", f"x-{tag}")
    create_topic(admin, names.topic)
    with login(broker, "admin") as admin_sock, login(broker, user) as sock:
        names.state["admin"] = admin_sock
        if case.prepare is not None:
            case.prepare(admin_sock, names)
        for resource, which, operation, refused in case.steps:
            assert case.attempt(sock, names) == refused, (resource, operation)
            grant(admin, principal, resource, _resource_name(names, which), operation)
        code = case.attempt(sock, names)
        if case.success == NOT_COORDINATOR_FREE:
            assert code != case.steps[-1][3]
        else:
            assert code == case.success


# -- the rules of the ACL model, end to end ----------------------------------------------


def _describe_code(sock: socket.socket, topic: str) -> int:
    return int(rawkafka.call(sock, 3, 9, {"topics": [{"name": topic}]}).topics[0].error_code)


def test_deny_wins_over_allow(broker: BrokerThread, admin: AdminClient) -> None:
    user, topic = new_user(broker), f"deny-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic)
    grant(admin, f"User:{user}", "TOPIC", topic, "ALL")
    grant(admin, "User:*", "TOPIC", topic, "DESCRIBE", permission=AclPermissionType.DENY)
    with login(broker, user) as sock:
        assert _describe_code(sock, topic) == TOPIC_DENIED
        assert _produce(sock, topic, _batch()) == 0  # WRITE is not denied


def test_prefixed_acls_and_the_wildcard_principal(broker: BrokerThread, admin: AdminClient) -> None:
    user, prefix = new_user(broker), f"pre-{uuid.uuid4().hex[:8]}"
    create_topic(admin, f"{prefix}-a")
    create_topic(admin, f"other-{prefix}")
    grant(admin, "User:*", "TOPIC", prefix, "WRITE", pattern=ResourcePatternType.PREFIXED)
    with login(broker, user) as sock:
        assert _produce(sock, f"{prefix}-a", _batch()) == 0
        assert _produce(sock, f"other-{prefix}", _batch()) == TOPIC_DENIED


def test_super_users_bypass_the_acls(broker: BrokerThread, admin: AdminClient) -> None:
    topic = f"su-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic)
    grant(admin, "User:*", "TOPIC", topic, "ALL", permission=AclPermissionType.DENY)
    with login(broker, "admin") as sock:
        assert _produce(sock, topic, _batch()) == 0


def test_topic_existence_does_not_leak(broker: BrokerThread, admin: AdminClient) -> None:
    user, topic = new_user(broker), f"leak-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic)
    with login(broker, user) as sock:
        assert _describe_code(sock, topic) == TOPIC_DENIED
        assert _describe_code(sock, topic + "-missing") == TOPIC_DENIED
        assert _produce(sock, topic + "-missing", _batch()) == TOPIC_DENIED


def test_metadata_leaves_out_topics_it_may_not_describe(
    broker: BrokerThread, admin: AdminClient
) -> None:
    user, tag = new_user(broker), uuid.uuid4().hex[:8]
    create_topic(admin, f"seen-{tag}")
    create_topic(admin, f"hidden-{tag}")
    grant(admin, f"User:{user}", "TOPIC", f"seen-{tag}", "READ")  # READ implies DESCRIBE
    with login(broker, user) as sock:
        body = {"topics": None, "include_topic_authorized_operations": True}
        topics = rawkafka.call(sock, 3, 9, body).topics
    listed = {t.name: int(t.topic_authorized_operations) for t in topics}
    assert f"seen-{tag}" in listed and f"hidden-{tag}" not in listed
    assert listed[f"seen-{tag}"] == (1 << 3) | (1 << 8)  # READ and DESCRIBE


def test_denials_are_counted(broker: BrokerThread, admin: AdminClient) -> None:
    registry = broker.broker.metrics.registry
    labels = {"api": "Fetch", "resource_type": "TOPIC"}
    before = registry.get_sample_value("headwater_broker_authorization_denied_total", labels) or 0
    case = next(c for c in CASES if c.api == "Fetch")
    with login(broker, new_user(broker)) as sock:
        assert case.attempt(sock, Names("no-such-topic", "g", "x")) == TOPIC_DENIED
    after = registry.get_sample_value("headwater_broker_authorization_denied_total", labels)
    assert after == before + 1


def test_a_producer_is_told_the_topic_is_not_authorised(
    broker: BrokerThread, admin: AdminClient
) -> None:
    user, topic = new_user(broker), f"p-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic)
    grant(admin, f"User:{user}", "TOPIC", topic, "DESCRIBE")
    errors: list[KafkaError | None] = []
    producer = Producer(client_config(broker, user, **{"message.timeout.ms": 10000}))
    producer.produce(topic, b"v", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(15)
    assert errors
    assert errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_consumer_in_an_unauthorised_group_is_refused(
    broker: BrokerThread, admin: AdminClient
) -> None:
    user, topic = new_user(broker), f"c-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic)
    grant(admin, f"User:{user}", "TOPIC", topic, "READ")
    consumer = Consumer(
        client_config(broker, user, **{"group.id": f"cg-{topic}", "auto.offset.reset": "earliest"})
    )
    try:
        consumer.subscribe([topic])
        error = None
        for _ in range(30):
            try:
                message = consumer.poll(0.5)
            except KafkaException as exc:
                error = exc.args[0]
                break
            if message is not None and message.error() is not None:
                error = message.error()
                break
        assert error is not None
        assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()


def test_allow_everyone_if_no_acl_found(tmp_path: Path) -> None:
    add_user(tmp_path, "admin")
    add_user(tmp_path, "bob")
    with embedded_broker(
        tmp_path,
        listeners=f"{LISTENER}://127.0.0.1:0",
        authorizer_enabled=True,
        super_users=[ADMIN],
        allow_everyone_if_no_acl_found=True,
    ) as running:
        admin = AdminClient(client_config(running, "admin"))
        create_topic(admin, "open")
        create_topic(admin, "guarded")
        grant(admin, "User:admin", "TOPIC", "guarded", "WRITE")
        with login(running, "bob") as sock:
            assert _produce(sock, "open", _batch()) == 0  # no ACL on it at all
            assert _produce(sock, "guarded", _batch()) == TOPIC_DENIED


def test_docs_show_the_table_the_code_enforces() -> None:
    text = DOCS.read_text()
    assert render_markdown() in text, "docs/security.md: paste _authorize.render_markdown()"
