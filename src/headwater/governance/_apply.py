"""Make the cluster and the registry match a contract, or report where they differ.

The topic goes through the Kafka admin API and the schema through the registry's REST API,
so contracts apply to any Kafka-compatible cluster with a Confluent-compatible registry
(broker-side validation is a Headwater topic config; other clusters ignore or refuse it).
"""

from __future__ import annotations

from typing import Any

import httpx

from headwater.client import Admin, AdminError
from headwater.client._registry_access import RegistryAccess
from headwater.governance._contract import Contract, ContractError

VALIDATION_CONFIG = "headwater.schema.validation"
_CT = "application/vnd.schemaregistry.v1+json"
_TIMEOUT_S = 30.0


def _topic_configs(contract: Contract) -> dict[str, str]:
    configs = {VALIDATION_CONFIG: "true" if contract.validation else "false"}
    if contract.retention_ms is not None:
        configs["retention.ms"] = str(contract.retention_ms)
    return configs


def _registry(url: str, access: RegistryAccess | None) -> httpx.Client:
    options = (access or RegistryAccess.resolve()).httpx_options()
    return httpx.Client(base_url=url, headers={"Content-Type": _CT}, timeout=_TIMEOUT_S, **options)


def _schema_body(contract: Contract) -> dict[str, Any]:
    return {"schema": contract.schema, "schemaType": contract.schema_type}


def _refused(what: str, answer: httpx.Response) -> ContractError:
    try:
        message = answer.json().get("message", answer.text)
    except ValueError:
        message = answer.text
    return ContractError(f"{what}: registry answered {answer.status_code}: {message}")


def apply(
    contract: Contract,
    bootstrap: str,
    registry_url: str,
    *,
    access: RegistryAccess | None = None,
) -> list[str]:
    """Create or update the topic, set compatibility, register the schema; returns actions.

    ``access``: Basic credentials and CA for the registry, else from the environment.
    """
    done: list[str] = []
    admin = Admin(bootstrap)
    configs = _topic_configs(contract)
    try:
        existing = admin.list_topics()
        if contract.topic not in existing:
            admin.create_topic(contract.topic, contract.partitions, configs)
            done.append(f"created topic {contract.topic} ({contract.partitions} partitions)")
        else:
            if existing[contract.topic] < contract.partitions:
                admin.add_partitions(contract.topic, contract.partitions)
                done.append(f"raised {contract.topic} to {contract.partitions} partitions")
            admin.alter_configs(contract.topic, configs, [])
            done.append(f"set configs of {contract.topic}: {configs}")
    except AdminError as exc:
        raise ContractError(f"topic {contract.topic!r}: {exc}") from None
    with _registry(registry_url, access) as http:
        answer = http.put(
            f"/config/{contract.subject}", json={"compatibility": contract.compatibility}
        )
        if answer.status_code != 200:
            raise _refused(f"compatibility of {contract.subject}", answer)
        done.append(f"set {contract.subject} compatibility {contract.compatibility}")
        answer = http.post(f"/subjects/{contract.subject}/versions", json=_schema_body(contract))
        if answer.status_code != 200:
            raise _refused(f"schema of {contract.subject}", answer)
        done.append(f"registered {contract.subject} schema id {answer.json()['id']}")
    return done


def check(
    contract: Contract,
    bootstrap: str,
    registry_url: str,
    *,
    access: RegistryAccess | None = None,
) -> list[str]:
    """Where the cluster or the registry differs from ``contract``; empty when they match."""
    drift: list[str] = []
    admin = Admin(bootstrap)
    if contract.topic not in admin.list_topics():
        drift.append(f"topic {contract.topic} does not exist")
    else:
        info = admin.describe_topic(contract.topic)
        if len(info.partitions) != contract.partitions:
            drift.append(
                f"topic {contract.topic} has {len(info.partitions)} partitions, "
                f"contract says {contract.partitions}"
            )
        for name, wanted in _topic_configs(contract).items():
            actual = info.configs.get(name, ("<unset>", True))[0]
            if actual != wanted:
                drift.append(f"topic {contract.topic} {name}={actual}, contract says {wanted}")
    with _registry(registry_url, access) as http:
        drift += _registry_drift(contract, http)
    return drift


def _registry_drift(contract: Contract, http: httpx.Client) -> list[str]:
    drift = []
    level = http.get(f"/config/{contract.subject}", params={"defaultToGlobal": "true"})
    if level.status_code == 200:
        actual = level.json().get("compatibilityLevel")
        if actual != contract.compatibility:
            drift.append(
                f"{contract.subject} compatibility is {actual}, contract says "
                f"{contract.compatibility}"
            )
    found = http.post(f"/subjects/{contract.subject}", json=_schema_body(contract))
    if found.status_code != 200:
        drift.append(f"{contract.subject} does not have the contract's schema registered")
        return drift
    latest = http.get(f"/subjects/{contract.subject}/versions/latest")
    if latest.status_code == 200 and latest.json()["version"] != found.json()["version"]:
        drift.append(
            f"{contract.subject} latest version is {latest.json()['version']}, the contract's "
            f"schema is version {found.json()['version']}"
        )
    return drift
