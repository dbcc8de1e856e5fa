"""The audit log on a running broker: logins, refusals and admin changes made by real clients
land in ``<data_dir>/audit/audit.log`` and ``headwater audit tail`` shows them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential
from headwater.testing import embedded_broker

PASSWORD = "audited-secret"


def events(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "audit" / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_logins_refusals_and_changes_are_audited(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = CredentialStore(credentials_path(data))
    store.upsert("admin", ScramCredential.from_password("SCRAM-SHA-256", PASSWORD))
    with embedded_broker(
        data,
        listeners="SASL_PLAINTEXT://127.0.0.1:0",
        audit_log_enabled=True,
        authorizer_enabled=True,
        super_users=["User:admin"],
        connection_failed_authentication_delay_ms=10,
    ) as running:
        client = {
            "bootstrap.servers": running.bootstrap_for("SASL_PLAINTEXT"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "admin",
            "sasl.password": PASSWORD,
        }
        admin = AdminClient(client)
        admin.create_topics([NewTopic("audited", 2)])["audited"].result(30)
        errors: list[KafkaError] = []
        wrong = Producer({**client, "sasl.password": "nope", "error_cb": errors.append})
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            wrong.poll(0.2)
        assert errors
    recorded = events(data)
    kinds = [event["type"] for event in recorded]
    assert "io.headwater.authentication" in kinds
    created = [e for e in recorded if e["type"] == "io.headwater.admin.topics.create"]
    assert created and created[0]["data"]["principal"] == "User:admin"
    assert created[0]["subject"].endswith("audited")
    outcomes = {
        e["data"]["result"]["status"]
        for e in recorded
        if e["type"] == "io.headwater.authentication"
    }
    assert outcomes == {"success", "failure"}
    text = (data / "audit" / "audit.log").read_text()
    assert PASSWORD not in text and "nope" not in text
    shown = subprocess.run(
        [sys.executable, "-m", "headwater", "audit", "tail", "--data-dir", str(data), "-n", "50"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "topics.create" in shown.stdout and "User:admin" in shown.stdout


def test_quota_changes_are_audited(tmp_path: Path) -> None:
    from headwater.client import QuotaAdmin

    data = tmp_path / "data"
    with (
        embedded_broker(data, audit_log_enabled=True) as running,
        QuotaAdmin(running.bootstrap) as admin,
    ):
        admin.alter({"user": "alice", "client-id": None}, {"producer_byte_rate": 1024.0})
    (event,) = [e for e in events(data) if e["type"] == "io.headwater.admin.quotas.alter"]
    assert event["subject"].endswith("user=alice,client-id=<default>")
    assert event["data"]["result"]["status"] == "success"
    assert event["data"]["change"]["ops"] == [
        {"key": "producer_byte_rate", "remove": False, "value": 1024.0}
    ]


def test_records_are_also_appended_to_the_audit_topic(tmp_path: Path) -> None:
    from confluent_kafka import Consumer, TopicPartition

    data = tmp_path / "data"
    with embedded_broker(data, audit_log_enabled=True, audit_topic_enabled=True) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap})
        admin.create_topics([NewTopic("watched", 1)])["watched"].result(30)
        consumer = Consumer({"bootstrap.servers": running.bootstrap, "group.id": "audit-readers"})
        consumer.assign([TopicPartition("__audit", 0, 0)])
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(json.loads(message.value()))
        consumer.close()
    assert found and found[0]["type"] == "io.headwater.admin.topics.create"
    assert found[0] == events(data)[0]  # the same record as in the file
