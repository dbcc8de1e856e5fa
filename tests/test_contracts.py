"""Data contracts: apply to a real broker and registry, detect drift, validate quality rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from typer.testing import CliRunner

from headwater.cli._app import app
from headwater.client import Admin
from headwater.client._schema_serde import AvroSerde
from headwater.governance import ContractError, QualityRules, apply, check, load
from headwater.registry import RegistryServer

ORDER = {"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "double"},
    {"name": "status", "type": "string"}]}  # fmt: skip

CONTRACT = """\
topic: orders
owner: payments
description: Orders as placed by customers.
partitions: 2
retention.ms: 86400000
compatibility: FULL
schema:
  type: AVRO
  file: order.avsc
quality:
  required: [id, amount]
  ranges:
    amount: {min: 0, max: 10000}
  enums:
    status: [NEW, PAID, SHIPPED]
"""


@pytest.fixture
def registry(bootstrap: str) -> Iterator[RegistryServer]:
    with RegistryServer(bootstrap, port=0) as server:
        yield server


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    (tmp_path / "order.avsc").write_text(json.dumps(ORDER))
    path = tmp_path / "orders.yaml"
    path.write_text(CONTRACT)
    return path


def test_apply_then_check_has_no_drift(
    bootstrap: str, registry: RegistryServer, contract_file: Path
) -> None:
    contract = load(contract_file)
    assert contract.owner == "payments"
    actions = apply(contract, bootstrap, registry.url)
    assert any("created topic orders" in a for a in actions)
    assert check(contract, bootstrap, registry.url) == []
    info = Admin(bootstrap).describe_topic("orders")
    assert len(info.partitions) == 2
    assert info.configs["retention.ms"][0] == "86400000"
    assert info.configs["headwater.schema.validation"][0] == "true"
    # Applying again changes nothing that matters and still matches.
    apply(contract, bootstrap, registry.url)
    assert check(contract, bootstrap, registry.url) == []
    # Broker validation is on: plain JSON is refused, registry-framed Avro accepted.
    outcome: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0})
    client = SchemaRegistryClient({"url": registry.url})
    good = AvroSerde(client, use_latest=True).serialize(
        {"id": "o1", "amount": 5.0, "status": "NEW"}, "orders"
    )
    # One record per batch: a refused record fails its whole batch, as in Kafka.
    producer.produce("orders", value=good, on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(30)
    producer.produce("orders", value=b"{}", on_delivery=lambda e, _m: outcome.append(e))
    producer.flush(30)
    client.close()
    assert outcome[0] is None
    assert outcome[1] is not None and outcome[1].code() == KafkaError.INVALID_RECORD


def test_check_reports_drift(bootstrap: str, registry: RegistryServer, contract_file: Path) -> None:
    contract = load(contract_file)
    assert "topic orders does not exist" in check(contract, bootstrap, registry.url)
    apply(contract, bootstrap, registry.url)
    Admin(bootstrap).alter_configs("orders", {"retention.ms": "1000"}, [])
    drift = check(contract, bootstrap, registry.url)
    assert drift == ["topic orders retention.ms=1000, contract says 86400000"]
    runner = CliRunner()
    result = runner.invoke(
        app, ["contracts", "check", str(contract_file), "-b", bootstrap, "--registry", registry.url]
    )
    assert result.exit_code == 1
    assert "retention.ms=1000" in result.output
    result = runner.invoke(
        app, ["contracts", "apply", str(contract_file), "-b", bootstrap, "--registry", registry.url]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["contracts", "check", str(contract_file), "-b", bootstrap, "--registry", registry.url]
    )
    assert result.exit_code == 0, result.output
    assert "matches its contract" in result.output


def test_incompatible_contract_schema_is_refused(
    bootstrap: str, registry: RegistryServer, contract_file: Path
) -> None:
    apply(load(contract_file), bootstrap, registry.url)
    changed = {**ORDER, "fields": [{"name": "id", "type": "long"}]}
    (contract_file.parent / "order.avsc").write_text(json.dumps(changed))
    contract = load(contract_file)
    assert any("schema" in d for d in check(contract, bootstrap, registry.url))
    with pytest.raises(ContractError, match="409"):
        apply(contract, bootstrap, registry.url)


def test_bad_contract_files(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("topic: t\nowner: o\n")
    with pytest.raises(ContractError, match="missing required key 'schema'"):
        load(path)
    path.write_text("topic: t\nowner: o\ncompatibility: SIDEWAYS\nschema: {inline: '\"string\"'}\n")
    with pytest.raises(ContractError, match="compatibility 'SIDEWAYS'"):
        load(path)


@pytest.mark.parametrize(
    ("value", "reasons"),
    [
        ({"id": "a", "amount": 5, "status": "NEW"}, []),
        ({"amount": 5}, ["required field 'id' is missing or null"]),
        ({"id": "a", "amount": -1}, ["field 'amount' is -1, below the minimum 0"]),
        ({"id": "a", "amount": 10001}, ["field 'amount' is 10001, above the maximum 10000"]),
        ({"id": "a", "amount": "lots"}, ["field 'amount' must be a number, got 'lots'"]),
        (
            {"id": "a", "amount": 1, "status": "LOST"},
            ["field 'status' is 'LOST', not one of ['NEW', 'PAID', 'SHIPPED']"],
        ),
        ("not a record", ["record value is a str, not a mapping of fields"]),
    ],
)
def test_quality_rules(contract_file: Path, value: object, reasons: list[str]) -> None:
    assert load(contract_file).quality.validate(value) == reasons


def test_nested_rule_paths() -> None:
    rules = QualityRules.from_dict(
        {"required": ["customer.id"], "ranges": {"customer.age": {"min": 18}}}
    )
    assert rules.validate({"customer": {"id": 1, "age": 20}}) == []
    assert rules.validate({"customer": {"age": 3}}) == [
        "required field 'customer.id' is missing or null",
        "field 'customer.age' is 3, below the minimum 18",
    ]
