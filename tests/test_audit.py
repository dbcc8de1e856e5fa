"""The audit log: record shape, redaction, rotation, the broker hooks and ``headwater audit``."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from headwater.broker import _audit
from headwater.broker._config import BrokerConfig
from headwater.broker._context import RequestContext
from headwater.broker._registry import HANDLERS
from headwater.broker._server import Broker
from headwater.broker._session import Session
from headwater.cli._app import app as cli_app
from headwater.protocol._codec import RequestHeader, request_type, to_entity
from headwater.security._audit import HIDDEN, AuditLog, audit_path, broker_source
from headwater.security._audit_read import EventFilter, Follower, last_events
from headwater.security._scram import ScramCredential

REQUIRED = ("specversion", "id", "source", "type", "time", "datacontenttype", "subject", "data")
SALT = b"pepper-salt-0123456789"
SALTED = bytes(range(200, 232))  # SCRAM-SHA-256: 32 bytes
SALTED_512 = bytes(range(64, 128))  # SCRAM-SHA-512: 64 bytes
PASSWORD = "hunter2-correct-horse"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _log(tmp_path: Path, **kwargs: Any) -> AuditLog:
    return AuditLog(audit_path(tmp_path), source=broker_source(7), **kwargs)


def _broker(log: AuditLog | None) -> Any:
    return SimpleNamespace(audit=log, config=SimpleNamespace(node_id=7))


def _ctx(api_key: int, principal: str = "User:admin") -> Any:
    return SimpleNamespace(
        header=SimpleNamespace(api_key=api_key, client_id="adminclient-1"),
        client_host="10.0.0.5",
        principal=principal,
        listener="SASL_SSL",
    )


def _request(api_key: int, version: int, body: dict[str, Any]) -> Any:
    return to_entity(request_type(api_key, version), body)


def _audit_one(
    tmp_path: Path, api_key: int, version: int, body: dict[str, Any], response: dict[str, Any]
) -> list[dict[str, Any]]:
    log = _log(tmp_path)
    request = _request(api_key, version, body)
    _audit.audit_request(_broker(log), _ctx(api_key), api_key, request, response)
    log.close()
    return _events(log.path) if log.path.exists() else []


# -- record shape ---------------------------------------------------------------------------
def test_record_is_a_cloudevent(tmp_path: Path) -> None:
    log = _log(tmp_path, clock=lambda: 1_700_000_000.25)
    log.record("io.headwater.admin.topics.create", "topic/orders", {"principal": "User:a"})
    log.close()
    (event,) = _events(log.path)
    assert set(REQUIRED) <= set(event)
    assert event["specversion"] == "1.0"
    assert uuid.UUID(event["id"]).version == 4
    assert event["source"] == "headwater://broker/7"
    assert event["datacontenttype"] == "application/json"
    assert event["time"] == "2023-11-14T22:13:20.250Z"
    parsed = datetime.datetime.fromisoformat(event["time"])
    assert parsed.utcoffset() == datetime.timedelta(0)
    assert event["subject"] == "topic/orders"
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600


def test_ids_are_unique(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for _ in range(50):
        log.record("io.headwater.authentication", "user/a", {})
    log.close()
    assert len({e["id"] for e in _events(log.path)}) == 50


def test_an_existing_file_is_made_private(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    path.chmod(0o644)
    AuditLog(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_bytes_never_reach_a_record(tmp_path: Path) -> None:
    log = _log(tmp_path)
    with pytest.raises(TypeError):
        log.record("io.headwater.authentication", "user/a", {"token": SALT})
    log.close()
    assert log.path.read_bytes() == b""


# -- rotation -------------------------------------------------------------------------------
def test_rotation_keeps_files_max_files(tmp_path: Path) -> None:
    log = _log(tmp_path, bytes_max=2048, files_max=3)
    for i in range(200):
        log.record("io.headwater.authentication", f"user/u{i}", {"n": i})
    log.close()
    files = sorted(p.name for p in log.path.parent.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    for path in log.path.parent.iterdir():
        assert path.stat().st_size <= 2048
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    newest = [e["data"]["n"] for _, e in last_events(log.path, 1000)]
    assert newest == list(range(newest[0], 200))  # contiguous across files, oldest first
    assert len(newest) > len(_events(log.path))  # reached into the rotated files


def test_topic_sink_gets_each_line_and_cannot_break_the_file(tmp_path: Path) -> None:
    lines: list[bytes] = []

    def sink(line: bytes) -> None:
        lines.append(line)
        if len(lines) == 2:
            raise RuntimeError("topic unavailable")

    log = _log(tmp_path, topic_sink=sink)
    for i in range(3):
        log.record("io.headwater.authentication", "user/a", {"n": i})
    log.close()
    assert lines == log.path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3


# -- the broker hooks -----------------------------------------------------------------------
def test_hooks_do_nothing_when_the_log_is_off() -> None:
    broker = _broker(None)
    _audit.audit_request(broker, _ctx(19), 19, object(), {"topics": [{"bad": 1}]})
    _audit.audit_authentication(broker, object(), "1.2.3.4", "PLAIN", False, "no")  # type: ignore[arg-type]
    _audit.audit_denied(broker, _ctx(0), object(), object(), "t")  # type: ignore[arg-type]


def test_unaudited_apis_and_client_end_txn_write_nothing(tmp_path: Path) -> None:
    log = _log(tmp_path)
    broker = _broker(log)
    end_txn = _request(26, 3, {"transactional_id": "t", "committed": False})
    _audit.audit_request(broker, _ctx(26), 26, end_txn, {"error_code": 0})
    commit = _request(
        8,
        9,
        {
            "group_id": "g",
            "generation_id_or_member_epoch": 5,
            "member_id": "consumer-1",
            "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}],
        },
    )
    _audit.audit_request(broker, _ctx(8), 8, commit, {"topics": []})
    log.close()
    assert log.path.read_bytes() == b""


def test_create_topics(tmp_path: Path) -> None:
    body = {
        "topics": [
            {
                "name": "orders",
                "num_partitions": 3,
                "replication_factor": -1,
                "configs": [
                    {"name": "retention.ms", "value": "60000"},
                    {"name": "ssl.key.password", "value": PASSWORD},
                ],
            },
            {"name": "denied", "num_partitions": 1, "replication_factor": 1},
        ],
        "validate_only": False,
    }
    topic_id = uuid.uuid4()
    response = {
        "topics": [
            {"name": "orders", "error_code": 0, "num_partitions": 3, "topic_id": topic_id},
            {"name": "denied", "error_code": 29, "num_partitions": -1},
        ]
    }
    created, refused = _audit_one(tmp_path, 19, 7, body, response)
    assert created["type"] == "io.headwater.admin.topics.create"
    assert created["subject"] == "topic/orders"
    data = created["data"]
    assert data["principal"] == "User:admin"
    assert data["client_address"] == "10.0.0.5"
    assert data["client_id"] == "adminclient-1"
    assert data["listener"] == "SASL_SSL"
    assert (data["api"], data["operation"], data["resource_type"]) == (
        "CreateTopics",
        "CREATE",
        "TOPIC",
    )
    assert data["result"] == {"status": "success", "error_code": 0, "error_name": "NONE"}
    assert data["change"]["num_partitions"] == 3
    assert data["change"]["configs"] == {"retention.ms": "60000", "ssl.key.password": HIDDEN}
    assert data["change"]["topic_id"] == str(topic_id)
    assert refused["data"]["result"] == {
        "status": "failure",
        "error_code": 29,
        "error_name": "TOPIC_AUTHORIZATION_FAILED",
    }


def test_delete_topics(tmp_path: Path) -> None:
    topic_id = uuid.uuid4()
    body = {"topics": [{"name": "orders"}, {"name": "gone"}]}
    response = {
        "responses": [
            {"name": "orders", "topic_id": topic_id, "error_code": 0},
            {"name": "gone", "topic_id": None, "error_code": 3},
        ]
    }
    deleted, missing = _audit_one(tmp_path, 20, 6, body, response)
    assert deleted["type"] == "io.headwater.admin.topics.delete"
    assert deleted["data"]["change"] == {"topic_id": str(topic_id)}
    assert missing["data"]["result"]["error_name"] == "UNKNOWN_TOPIC_OR_PARTITION"


def test_create_partitions(tmp_path: Path) -> None:
    body = {"topics": [{"name": "orders", "count": 6}], "validate_only": True}
    response = {"results": [{"name": "orders", "error_code": 0}]}
    (event,) = _audit_one(tmp_path, 37, 3, body, response)
    assert event["type"] == "io.headwater.admin.partitions.create"
    assert event["data"]["operation"] == "ALTER"
    assert event["data"]["change"] == {"partition_count": 6, "validate_only": True}


def test_delete_records(tmp_path: Path) -> None:
    body = {
        "topics": [
            {
                "name": "orders",
                "partitions": [
                    {"partition_index": 0, "offset": 10},
                    {"partition_index": 1, "offset": 99},
                ],
            }
        ]
    }
    response = {
        "topics": [
            {
                "name": "orders",
                "partitions": [
                    {"partition_index": 0, "low_watermark": 10, "error_code": 0},
                    {"partition_index": 1, "low_watermark": -1, "error_code": 1},
                ],
            }
        ]
    }
    (event,) = _audit_one(tmp_path, 21, 2, body, response)
    assert event["type"] == "io.headwater.admin.records.delete"
    assert event["data"]["result"]["error_name"] == "OFFSET_OUT_OF_RANGE"
    assert event["data"]["change"]["partitions"] == [
        {"partition": 0, "offset": 10, "low_watermark": 10, "error_code": 0},
        {"partition": 1, "offset": 99, "low_watermark": -1, "error_code": 1},
    ]


def test_alter_configs_hides_secrets(tmp_path: Path) -> None:
    body = {
        "resources": [
            {
                "resource_type": 2,
                "resource_name": "orders",
                "configs": [
                    {"name": "cleanup.policy", "value": "compact"},
                    {"name": "sasl.jaas.config", "value": f"password='{PASSWORD}'"},
                ],
            }
        ]
    }
    response = {"responses": [{"error_code": 0, "resource_type": 2, "resource_name": "orders"}]}
    (event,) = _audit_one(tmp_path, 33, 2, body, response)
    assert event["type"] == "io.headwater.admin.configs.alter"
    assert event["subject"] == "topic/orders"
    assert event["data"]["operation"] == "ALTER_CONFIGS"
    assert event["data"]["change"] == {
        "mode": "replace",
        "configs": [
            {"name": "cleanup.policy", "value": "compact"},
            {"name": "sasl.jaas.config", "value": HIDDEN},
        ],
    }


def test_incremental_alter_configs(tmp_path: Path) -> None:
    body = {
        "resources": [
            {
                "resource_type": 4,
                "resource_name": "1",
                "configs": [
                    {"name": "my.Secret.token", "config_operation": 0, "value": PASSWORD},
                    {"name": "retention.ms", "config_operation": 1, "value": None},
                    {"name": "cleanup.policy", "config_operation": 2, "value": "compact"},
                ],
            }
        ]
    }
    response = {"responses": [{"error_code": 31, "resource_type": 4, "resource_name": "1"}]}
    (event,) = _audit_one(tmp_path, 44, 1, body, response)
    assert event["type"] == "io.headwater.admin.configs.incremental-alter"
    assert event["subject"] == "broker/1"
    assert event["data"]["resource_type"] == "BROKER"
    assert event["data"]["result"]["error_name"] == "CLUSTER_AUTHORIZATION_FAILED"
    assert event["data"]["change"]["configs"] == [
        {"name": "my.Secret.token", "operation": "SET", "value": HIDDEN},
        {"name": "retention.ms", "operation": "DELETE"},
        {"name": "cleanup.policy", "operation": "APPEND", "value": "compact"},
    ]


def test_create_acls(tmp_path: Path) -> None:
    body = {
        "creations": [
            {
                "resource_type": 2,
                "resource_name": "orders",
                "resource_pattern_type": 4,
                "principal": "User:bob",
                "host": "*",
                "operation": 3,
                "permission_type": 3,
            }
        ]
    }
    (event,) = _audit_one(tmp_path, 30, 3, body, {"results": [{"error_code": 0}]})
    assert event["type"] == "io.headwater.admin.acls.create"
    assert event["subject"] == "topic/orders"
    assert event["data"]["change"]["binding"] == {
        "resource_type": "TOPIC",
        "resource_name": "orders",
        "pattern_type": "PREFIXED",
        "principal": "User:bob",
        "host": "*",
        "operation": "READ",
        "permission": "ALLOW",
    }


def test_delete_acls(tmp_path: Path) -> None:
    body = {
        "filters": [
            {
                "resource_type_filter": 1,
                "resource_name_filter": None,
                "pattern_type_filter": 1,
                "principal_filter": "User:bob",
                "host_filter": None,
                "operation": 1,
                "permission_type": 1,
            }
        ]
    }
    matched = {
        "error_code": 0,
        "resource_type": 3,
        "resource_name": "billing",
        "pattern_type": 3,
        "principal": "User:bob",
        "host": "*",
        "operation": 3,
        "permission_type": 3,
    }
    response = {"filter_results": [{"error_code": 0, "matching_acls": [matched]}]}
    (event,) = _audit_one(tmp_path, 31, 3, body, response)
    assert event["type"] == "io.headwater.admin.acls.delete"
    change = event["data"]["change"]
    assert change["filter"]["resource_type"] == "ANY"
    assert change["filter"]["principal"] == "User:bob"
    assert change["deleted"] == [
        {
            "resource_type": "GROUP",
            "resource_name": "billing",
            "pattern_type": "LITERAL",
            "principal": "User:bob",
            "host": "*",
            "operation": "READ",
            "permission": "ALLOW",
        }
    ]


def _scram_body() -> dict[str, Any]:
    return {
        "deletions": [{"name": "old", "mechanism": 1}],
        "upsertions": [
            {
                "name": "alice",
                "mechanism": 2,
                "iterations": 8192,
                "salt": SALT,
                "salted_password": SALTED_512,
            },
            {
                "name": "alice",
                "mechanism": 1,
                "iterations": 4096,
                "salt": SALT,
                "salted_password": SALTED,
            },
        ],
    }


def test_alter_user_scram_credentials(tmp_path: Path) -> None:
    response = {
        "results": [
            {"user": "old", "error_code": 91, "error_message": "no such user"},
            {"user": "alice", "error_code": 0, "error_message": None},
        ]
    }
    old, alice = _audit_one(tmp_path, 51, 0, _scram_body(), response)
    assert alice["type"] == "io.headwater.admin.users.alter-scram-credentials"
    assert alice["subject"] == "user/alice"
    assert alice["data"]["change"] == {
        "upserted": [
            {"mechanism": "SCRAM-SHA-512", "iterations": 8192},
            {"mechanism": "SCRAM-SHA-256", "iterations": 4096},
        ],
        "deleted": [],
    }
    assert old["data"]["result"]["error_name"] == "RESOURCE_NOT_FOUND"
    assert old["data"]["change"]["deleted"] == [{"mechanism": "SCRAM-SHA-256"}]


def test_delete_groups(tmp_path: Path) -> None:
    body = {"groups_names": ["billing", "ghost"]}
    response = {
        "results": [
            {"group_id": "billing", "error_code": 0},
            {"group_id": "ghost", "error_code": 69},
        ]
    }
    billing, ghost = _audit_one(tmp_path, 42, 2, body, response)
    assert billing["type"] == "io.headwater.admin.groups.delete"
    assert billing["subject"] == "group/billing"
    assert ghost["data"]["result"]["error_name"] == "GROUP_ID_NOT_FOUND"


def test_offset_delete(tmp_path: Path) -> None:
    body = {
        "group_id": "billing",
        "topics": [{"name": "orders", "partitions": [{"partition_index": 0}]}],
    }
    response = {
        "error_code": 0,
        "topics": [{"name": "orders", "partitions": [{"partition_index": 0, "error_code": 0}]}],
    }
    (event,) = _audit_one(tmp_path, 47, 0, body, response)
    assert event["type"] == "io.headwater.admin.offsets.delete"
    assert event["subject"] == "group/billing"
    assert event["data"]["change"]["partitions"] == [
        {"topic": "orders", "partition": 0, "error_code": 0}
    ]


@pytest.mark.parametrize("version", [2, 9])
def test_offset_commit_from_a_tool_is_a_reset(tmp_path: Path, version: int) -> None:
    body = {
        "group_id": "billing",
        "generation_id_or_member_epoch": -1,
        "member_id": "",
        "topics": [
            {
                "name": "orders",
                "partitions": [
                    {"partition_index": 0, "committed_offset": 42, "committed_metadata": "x"},
                    {"partition_index": 1, "committed_offset": 7},
                ],
            }
        ],
    }
    response = {
        "topics": [
            {
                "name": "orders",
                "partitions": [
                    {"partition_index": 0, "error_code": 0},
                    {"partition_index": 1, "error_code": 3},
                ],
            }
        ]
    }
    (event,) = _audit_one(tmp_path, 8, version, body, response)
    assert event["type"] == "io.headwater.admin.offsets.reset"
    assert event["data"]["resource_type"] == "GROUP"
    assert event["data"]["result"]["error_code"] == 3
    assert event["data"]["change"]["partitions"] == [
        {"topic": "orders", "partition": 0, "offset": 42, "error_code": 0},
        {"topic": "orders", "partition": 1, "offset": 7, "error_code": 3},
    ]


def test_authentication(tmp_path: Path) -> None:
    log = _log(tmp_path)
    broker = _broker(log)
    listener = SimpleNamespace(name="SASL_SSL")
    ok = SimpleNamespace(principal="User:alice", listener=listener)
    anonymous = SimpleNamespace(principal="User:ANONYMOUS", listener=listener)
    _audit.audit_authentication(broker, ok, "10.0.0.9", "SCRAM-SHA-512", True, client_id="app")
    _audit.audit_authentication(
        broker, anonymous, "10.0.0.9", "PLAIN", False, "Authentication failed: x", user="mallory"
    )
    log.close()
    success, failure = _events(log.path)
    assert success["type"] == failure["type"] == "io.headwater.authentication"
    assert success["subject"] == "user/alice"
    assert success["data"]["principal"] == "User:alice"
    assert success["data"]["mechanism"] == "SCRAM-SHA-512"
    assert success["data"]["client_id"] == "app"
    assert success["data"]["result"]["status"] == "success"
    assert "reason" not in success["data"]
    assert failure["subject"] == "user/mallory"
    assert failure["data"]["result"]["error_name"] == "SASL_AUTHENTICATION_FAILED"
    assert failure["data"]["reason"] == "Authentication failed: x"


def test_failed_authentication_without_a_user_name(tmp_path: Path) -> None:
    log = _log(tmp_path)
    listener = SimpleNamespace(name="SASL_PLAINTEXT")
    first = SimpleNamespace(principal="User:ANONYMOUS", listener=listener)
    reauth = SimpleNamespace(principal="User:alice", listener=listener)
    _audit.audit_authentication(_broker(log), first, "10.0.0.9", "SCRAM-SHA-256", False, "no")
    _audit.audit_authentication(_broker(log), reauth, "10.0.0.9", "SCRAM-SHA-256", False, "no")
    log.close()
    anonymous, alice = _events(log.path)
    assert (anonymous["subject"], anonymous["data"]["resource_name"]) == ("user/", None)
    assert anonymous["data"]["principal"] == "User:ANONYMOUS"
    assert alice["subject"] == "user/alice"


def test_denied(tmp_path: Path) -> None:
    from headwater.security._acl import AclOperation, ResourceType

    log = _log(tmp_path)
    _audit.audit_denied(
        _broker(log), _ctx(1, "User:bob"), AclOperation.READ, ResourceType.TOPIC, "pay"
    )
    log.close()
    (event,) = _events(log.path)
    assert event["type"] == "io.headwater.authorization.denied"
    assert event["subject"] == "topic/pay"
    assert event["data"]["api"] == "Fetch"
    assert event["data"]["operation"] == "READ"
    assert event["data"]["principal"] == "User:bob"
    assert event["data"]["result"]["error_name"] == "TOPIC_AUTHORIZATION_FAILED"


def test_no_secret_reaches_the_file(tmp_path: Path) -> None:
    """Requests that carry secrets, through every hook: none of their bytes is written."""
    log = _log(tmp_path)
    broker = _broker(log)
    scram = _request(51, 0, _scram_body())
    _audit.audit_request(
        broker, _ctx(51), 51, scram, {"results": [{"user": "alice", "error_code": 0}]}
    )
    secret_configs = [
        {"name": name, "value": PASSWORD}
        for name in ("ssl.key.password", "sasl.jaas.config", "ssl.keystore.password", "x.secret")
    ]
    topics = _request(
        19, 7, {"topics": [{"name": "t", "num_partitions": 1, "configs": secret_configs}]}
    )
    _audit.audit_request(broker, _ctx(19), 19, topics, {"topics": [{"name": "t", "error_code": 0}]})
    alter = _request(
        44,
        1,
        {
            "resources": [
                {
                    "resource_type": 2,
                    "resource_name": "t",
                    "configs": [{**c, "config_operation": 0} for c in secret_configs],
                }
            ]
        },
    )
    _audit.audit_request(broker, _ctx(44), 44, alter, {"responses": [{"error_code": 0}]})
    session = SimpleNamespace(principal="User:ANONYMOUS", listener=SimpleNamespace(name="SASL"))
    _audit.audit_authentication(broker, session, "1.2.3.4", "PLAIN", False, "bad", user="alice")
    log.close()
    written = log.path.read_bytes()
    credential = ScramCredential.from_salted_password("SCRAM-SHA-512", SALT, SALTED_512, 8192)
    for secret in (
        SALT,
        SALTED,
        SALTED_512,
        PASSWORD.encode(),
        credential.stored_key,
        credential.server_key,
    ):
        for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert form not in written
    assert written.count(HIDDEN.encode()) == 2 * len(secret_configs)


# -- with a real broker's handlers ----------------------------------------------------------
async def test_real_handlers_answer_what_the_audit_reads(tmp_path: Path) -> None:
    """The response shapes the builders read are the ones the handlers return."""
    broker = Broker(BrokerConfig(data_dir=tmp_path / "data", port=0))
    await broker.start()
    try:
        log = _log(tmp_path)
        broker.audit = log  # type: ignore[attr-defined]
        session = Session.open(broker.listeners[0], None)

        async def call(api_key: int, version: int, body: dict[str, Any]) -> None:
            request = _request(api_key, version, body)
            ctx = RequestContext(
                broker, RequestHeader(api_key, version, 1, "tool"), "127.0.0.1", session
            )
            response = await HANDLERS[api_key].fn(ctx, request)
            _audit.audit_request(broker, ctx, api_key, request, response)

        await call(
            19,
            7,
            {
                "topics": [
                    {
                        "name": "t",
                        "num_partitions": 1,
                        "replication_factor": -1,
                        "configs": [{"name": "retention.ms", "value": "60000"}],
                    }
                ]
            },
        )
        await call(37, 3, {"topics": [{"name": "t", "count": 2}]})
        await call(
            44,
            1,
            {
                "resources": [
                    {
                        "resource_type": 2,
                        "resource_name": "t",
                        "configs": [
                            {"name": "cleanup.policy", "config_operation": 0, "value": "compact"}
                        ],
                    }
                ]
            },
        )
        await call(
            33,
            2,
            {
                "resources": [
                    {
                        "resource_type": 2,
                        "resource_name": "t",
                        "configs": [{"name": "retention.ms", "value": "1000"}],
                    }
                ]
            },
        )
        await call(
            8,
            9,
            {
                "group_id": "g",
                "generation_id_or_member_epoch": -1,
                "member_id": "",
                "topics": [
                    {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 0}]}
                ],
            },
        )
        await call(
            47,
            0,
            {"group_id": "g", "topics": [{"name": "t", "partitions": [{"partition_index": 0}]}]},
        )
        await call(
            21, 2, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "offset": 0}]}]}
        )
        await call(
            30,
            3,
            {
                "creations": [
                    {
                        "resource_type": 2,
                        "resource_name": "t",
                        "resource_pattern_type": 3,
                        "principal": "User:bob",
                        "host": "*",
                        "operation": 3,
                        "permission_type": 3,
                    }
                ]
            },
        )
        await call(
            31,
            3,
            {
                "filters": [
                    {
                        "resource_type_filter": 2,
                        "resource_name_filter": "t",
                        "pattern_type_filter": 3,
                        "principal_filter": None,
                        "host_filter": None,
                        "operation": 1,
                        "permission_type": 1,
                    }
                ]
            },
        )
        await call(51, 0, _scram_body())
        await call(42, 2, {"groups_names": ["g"]})
        await call(20, 6, {"topics": [{"name": "t"}]})
        log.close()
        events = _events(log.path)
        got = [
            (
                e["type"].removeprefix("io.headwater.admin."),
                e["subject"],
                e["data"]["result"]["error_code"],
            )
            for e in events
        ]
        assert got == [
            ("topics.create", "topic/t", 0),
            ("partitions.create", "topic/t", 0),
            ("configs.incremental-alter", "topic/t", 0),
            ("configs.alter", "topic/t", 0),
            ("offsets.reset", "group/g", 0),
            ("offsets.delete", "group/g", 0),
            ("records.delete", "topic/t", 0),
            ("acls.create", "topic/t", 0),
            ("acls.delete", "topic/t", 0),
            ("users.alter-scram-credentials", "user/old", 91),
            ("users.alter-scram-credentials", "user/alice", 0),
            ("groups.delete", "group/g", 69),  # its offsets went with OffsetDelete
            ("topics.delete", "topic/t", 0),
        ]
        assert events[-1]["data"]["change"]["topic_id"] == events[0]["data"]["change"]["topic_id"]
        assert events[8]["data"]["change"]["deleted"][0]["principal"] == "User:bob"
        written = log.path.read_bytes()
        assert SALT not in written and SALTED not in written and SALTED_512 not in written
    finally:
        await broker.close()


async def test_transaction_timeout_abort_is_recorded(tmp_path: Path) -> None:
    now = [1_000_000.0]
    broker = Broker(BrokerConfig(data_dir=tmp_path / "data", port=0), clock=lambda: now[0])
    await broker.start()
    try:
        log = _log(tmp_path)
        broker.audit = log  # type: ignore[attr-defined]
        coordinator = broker.transactions
        pid, epoch = await coordinator.init_producer_id("txn-1", 5000, -1, -1)
        broker.topics.create("t", 1, {}, broker.now_ms())
        await coordinator.add_partitions("txn-1", pid, epoch, [("t", 0)])
        assert await _audit.expire_transactions(broker) == 0
        now[0] += 10
        assert await _audit.expire_transactions(broker) == 1
        log.close()
        (event,) = _events(log.path)
        assert event["type"] == "io.headwater.transaction.timeout-abort"
        assert event["subject"] == "transactional-id/txn-1"
        assert event["data"]["initiator"] == "broker"
        assert event["data"]["change"]["partitions"] == [{"topic": "t", "partition": 0}]
        assert event["data"]["change"]["producer_epoch"] == epoch + 1
    finally:
        await broker.close()


# -- reading it back ------------------------------------------------------------------------
def _write_sample(path: Path) -> AuditLog:
    log = AuditLog(path, clock=lambda: 1_700_000_000.0)
    broker = _broker(log)
    listener = SimpleNamespace(name="SASL_SSL")
    for user in ("alice", "bob"):
        session = SimpleNamespace(principal=f"User:{user}", listener=listener)
        _audit.audit_authentication(broker, session, "10.0.0.1", "PLAIN", True)
    body = {"topics": [{"name": f"t{i}", "num_partitions": 1} for i in range(3)]}
    response = {"topics": [{"name": f"t{i}", "error_code": 29 if i == 2 else 0} for i in range(3)]}
    _audit.audit_request(broker, _ctx(19), 19, _request(19, 7, body), response)
    return log


runner = CliRunner()


def test_cli_tail(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    _write_sample(path).close()
    result = runner.invoke(cli_app, ["audit", "tail", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert len(rows) == 5
    assert rows[0] == [
        "2023-11-14T22:13:20.000Z",
        "authentication",
        "User:alice",
        "user/alice",
        "success",
    ]
    assert rows[-1] == [
        "2023-11-14T22:13:20.000Z",
        "admin.topics.create",
        "User:admin",
        "topic/t2",
        "failure TOPIC_AUTHORIZATION_FAILED (29)",
    ]
    last2 = runner.invoke(cli_app, ["audit", "tail", "--file", str(path), "-n", "2"])
    assert [r.split("\t")[3] for r in last2.output.splitlines()] == ["topic/t1", "topic/t2"]
    typed = runner.invoke(
        cli_app, ["audit", "tail", "--file", str(path), "--type", "authentication"]
    )
    assert len(typed.output.splitlines()) == 2
    full = runner.invoke(
        cli_app, ["audit", "tail", "--file", str(path), "--type", "io.headwater.admin"]
    )
    assert len(full.output.splitlines()) == 3
    who = runner.invoke(
        cli_app, ["audit", "tail", "--file", str(path), "--principal", "bob", "--json"]
    )
    (line,) = who.output.splitlines()
    assert json.loads(line)["data"]["principal"] == "User:bob"
    assert line.encode() in path.read_bytes().splitlines()


def test_cli_tail_errors(tmp_path: Path) -> None:
    missing = runner.invoke(cli_app, ["audit", "tail", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no audit log" in missing.output
    both = runner.invoke(cli_app, ["audit", "tail", "--data-dir", "a", "--file", "b"])
    assert both.exit_code == 1


def test_filter() -> None:
    event = {"type": "io.headwater.admin.topics.create", "data": {"principal": "User:al"}}
    assert EventFilter("admin.topics")(event)
    assert EventFilter("io.headwater.admin")(event)
    assert not EventFilter("authentication")(event)
    assert EventFilter(principal="al")(event) and EventFilter(principal="User:al")(event)
    assert not EventFilter(principal="bob")(event)


def test_follower_sees_appends_partial_lines_and_rotation(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    log = AuditLog(path, bytes_max=1024, files_max=3)
    log.record("io.headwater.authentication", "user/before", {})
    follower = Follower(path)
    assert follower.poll() == []
    log.record("io.headwater.authentication", "user/a", {})
    assert [e["subject"] for _, e in follower.poll()] == ["user/a"]
    with path.open("ab") as handle:
        handle.write(b'{"type": "x", "subject": "part')
    assert follower.poll() == []
    with path.open("ab") as handle:
        handle.write(b'ial"}\n')
    assert [e["subject"] for _, e in follower.poll()] == ["partial"]
    seen = []
    for i in range(40):  # several rotations
        log.record("io.headwater.authentication", f"user/u{i}", {})
        seen += [e["subject"] for _, e in follower.poll()]
    assert seen == [f"user/u{i}" for i in range(40)]
    follower.close()
    log.close()


def test_cli_follow_prints_an_appended_event(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    log = _write_sample(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", "audit", "tail", "--file", str(path), "-n", "1", "-f"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "topic/t2" in proc.stdout.readline()
        time.sleep(0.2)
        log.record("io.headwater.authentication", "user/late", {"principal": "User:late"})
        assert "user/late" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()
