"""The registry's REST API, through confluent-kafka's SchemaRegistryClient and raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka.schema_registry import (
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
)

from headwater.registry import RegistryServer

USER_V1 = {"type": "record", "name": "User", "namespace": "acme", "fields": [
    {"name": "id", "type": "long"}]}  # fmt: skip
USER_V2 = {**USER_V1, "fields": [*USER_V1["fields"], {"name": "email", "type": "string",
                                                       "default": ""}]}  # fmt: skip
USER_BAD = {**USER_V1, "fields": [{"name": "id", "type": "string"}]}
CT = "application/vnd.schemaregistry.v1+json"


def avro(obj: object) -> Schema:
    return Schema(json.dumps(obj), "AVRO")


@pytest.fixture
def registry(bootstrap: str) -> Iterator[RegistryServer]:
    with RegistryServer(bootstrap, port=0) as server:
        yield server


_OPEN: list[SchemaRegistryClient] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def connect(url: str) -> SchemaRegistryClient:
    """A client with empty caches, so every call reaches the server; closed after the test."""
    c = SchemaRegistryClient({"url": url})
    _OPEN.append(c)
    return c


@pytest.fixture
def client(registry: RegistryServer) -> SchemaRegistryClient:
    return connect(registry.url)


@pytest.fixture
def http(registry: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, headers={"Content-Type": CT}) as c:
        yield c


def fresh(registry: RegistryServer) -> SchemaRegistryClient:
    return connect(registry.url)


def test_register_get_and_same_schema_same_id(
    client: SchemaRegistryClient, registry: RegistryServer
) -> None:
    first = client.register_schema("users-value", avro(USER_V1))
    second = client.register_schema("users-value", avro(USER_V2))
    assert second == first + 1
    again = fresh(registry)
    assert again.register_schema("users-value", avro(USER_V1)) == first
    assert again.register_schema("other-value", avro(USER_V1)) == first
    assert again.get_subjects() == ["other-value", "users-value"]
    assert again.get_versions("users-value") == [1, 2]
    latest = again.get_latest_version("users-value")
    assert (latest.version, latest.schema_id) == (2, second)
    assert json.loads(latest.schema.schema_str) == USER_V2
    v1 = again.get_version("users-value", 1)
    assert v1.schema_id == first
    assert json.loads(again.get_schema(first).schema_str) == USER_V1
    assert sorted(again.get_subjects_by_schema_id(first)) == ["other-value", "users-value"]
    pairs = {(v.subject, v.version) for v in again.get_schema_versions(first)}
    assert pairs == {("users-value", 1), ("other-value", 1)}
    found = again.lookup_schema("users-value", avro(USER_V2))
    assert (found.schema_id, found.version) == (second, 2)
    assert sorted(again.get_schema_types()) == ["AVRO", "JSON", "PROTOBUF"]


def test_incompatible_schema_is_refused_with_reasons(
    client: SchemaRegistryClient, http: httpx.Client
) -> None:
    client.register_schema("users-value", avro(USER_V1))
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema("users-value", avro(USER_BAD))
    assert info.value.http_status_code == 409
    assert info.value.error_code == 409
    answer = http.post("/subjects/users-value/versions", json={"schema": json.dumps(USER_BAD)})
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith(CT)
    assert "TYPE_MISMATCH" in answer.json()["message"]
    assert client.test_compatibility("users-value", avro(USER_V2)) is True
    assert client.test_compatibility("users-value", avro(USER_BAD)) is False
    verbose = http.post(
        "/compatibility/subjects/users-value/versions/latest?verbose=true",
        json={"schema": json.dumps(USER_BAD)},
    ).json()
    assert verbose["is_compatible"] is False
    assert any("TYPE_MISMATCH" in m for m in verbose["messages"])
    assert client.test_compatibility_all_versions("users-value", avro(USER_V2)) is True


def test_error_codes(client: SchemaRegistryClient, http: httpx.Client) -> None:
    assert http.get("/subjects/nope/versions").json()["error_code"] == 40401
    assert http.get("/subjects/nope/versions").status_code == 404
    client.register_schema("s", avro(USER_V1))
    assert http.get("/subjects/s/versions/7").json()["error_code"] == 40402
    assert http.get("/subjects/s/versions/0").json()["error_code"] == 42202
    assert http.get("/subjects/s/versions/abc").status_code == 422
    assert http.get("/schemas/ids/999").json()["error_code"] == 40403
    bad = http.post("/subjects/s/versions", json={"schema": "{not json"})
    assert (bad.status_code, bad.json()["error_code"]) == (422, 42201)
    bad_type = http.post("/subjects/s/versions", json={"schema": '{"type": "nosuch"}'})
    assert bad_type.json()["error_code"] == 42201
    missing = http.post("/subjects/s", json={"schema": json.dumps(USER_V2)})
    assert missing.json()["error_code"] == 40403
    assert http.put("/config", json={"compatibility": "SIDEWAYS"}).json()["error_code"] == 42203
    assert http.put("/mode", json={"mode": "WRONG"}).json()["error_code"] == 42204
    assert http.get("/config/s").json()["error_code"] == 40408
    assert http.get("/no/such/path").status_code == 404


def test_config_global_and_per_subject(client: SchemaRegistryClient, http: httpx.Client) -> None:
    assert client.get_compatibility() == "BACKWARD"
    assert client.set_compatibility(level="FULL") == {"compatibility": "FULL"}
    assert client.get_compatibility() == "FULL"
    client.register_schema("s", avro(USER_V1))
    client.set_compatibility("s", "NONE")
    assert client.get_compatibility("s") == "NONE"
    client.register_schema("s", avro(USER_BAD))  # NONE lets anything through
    assert http.get("/config/other?defaultToGlobal=true").json()["compatibilityLevel"] == "FULL"
    assert http.delete("/config/s").json()["compatibilityLevel"] == "NONE"
    assert http.get("/config/s?defaultToGlobal=true").json()["compatibilityLevel"] == "FULL"
    config = client.get_config()
    assert config.compatibility_level is not None


def test_modes(client: SchemaRegistryClient, http: httpx.Client) -> None:
    assert client.get_global_mode() == "READWRITE"
    client.register_schema("s", avro(USER_V1))
    assert client.update_mode("s", "READONLY") == "READONLY"
    assert client.get_mode("s") == "READONLY"
    refused = http.post("/subjects/s/versions", json={"schema": json.dumps(USER_V2)})
    assert refused.json()["error_code"] == 42205
    client.delete_mode("s")
    # IMPORT keeps ids and versions from another registry.
    assert http.put("/mode/imported", json={"mode": "IMPORT"}).json()["mode"] == "IMPORT"
    answer = http.post(
        "/subjects/imported/versions",
        json={"schema": json.dumps(USER_BAD), "id": 100, "version": 5},
    ).json()
    assert (answer["id"], answer["version"]) == (100, 5)
    assert http.get("/subjects/imported/versions/5").json()["id"] == 100
    clash = http.post(
        "/subjects/imported/versions", json={"schema": json.dumps(USER_V2), "id": 100}
    )
    assert clash.json()["error_code"] == 42207
    not_import = http.post("/subjects/s/versions", json={"schema": json.dumps(USER_V2), "id": 7})
    assert not_import.json()["error_code"] == 42205
    # New ids continue above the imported ones.
    assert client.register_schema("later", avro(USER_V2)) == 101


def test_soft_and_permanent_deletes(
    client: SchemaRegistryClient, registry: RegistryServer, http: httpx.Client
) -> None:
    client.register_schema("s", avro(USER_V1))
    client.register_schema("s", avro(USER_V2))
    assert http.delete("/subjects/s/versions/1?permanent=true").json()["error_code"] == 40407
    assert client.delete_version("s", 1) == 1
    assert http.delete("/subjects/s/versions/1").json()["error_code"] == 40406
    assert client.get_versions("s") == [2]
    assert http.get("/subjects/s/versions?deleted=true").json() == [1, 2]
    assert http.get("/subjects/s/versions/1").json()["error_code"] == 40402
    assert http.get("/subjects/s/versions/1?deleted=true").json()["version"] == 1
    assert client.delete_version("s", 1, permanent=True) == 1
    assert http.get("/subjects/s/versions?deleted=true").json() == [2]
    assert http.delete("/subjects/s?permanent=true").json()["error_code"] == 40405
    assert client.delete_subject("s") == [2]
    assert http.delete("/subjects/s").json()["error_code"] == 40404
    assert fresh(registry).get_subjects() == []
    assert http.get("/subjects?deleted=true").json() == ["s"]
    assert http.get("/subjects?deleted_only=true").json() == ["s"]
    assert client.delete_subject("s", permanent=True) == [2]
    assert http.get("/subjects?deleted=true").json() == []
    assert http.get("/subjects/s/versions").json()["error_code"] == 40401


def test_references_and_referenced_by(client: SchemaRegistryClient, http: httpx.Client) -> None:
    address = {"type": "record", "name": "Address", "namespace": "acme",
               "fields": [{"name": "city", "type": "string"}]}  # fmt: skip
    client.register_schema("address", avro(address))
    order = {"type": "record", "name": "Order", "namespace": "acme",
             "fields": [{"name": "ship_to", "type": "acme.Address"}]}  # fmt: skip
    with_ref = Schema(json.dumps(order), "AVRO", [SchemaReference("acme.Address", "address", 1)])
    order_id = client.register_schema("orders-value", with_ref)
    assert client.get_referenced_by("address", 1) == [order_id]
    got = client.get_latest_version("orders-value")
    assert got.schema.references[0].subject == "address"
    blocked = http.delete("/subjects/address/versions/1")
    assert blocked.json()["error_code"] == 42206
    missing_ref = http.post(
        "/subjects/x/versions",
        json={"schema": json.dumps(order), "references": [
            {"name": "acme.Address", "subject": "address", "version": 9}]},
    )  # fmt: skip
    assert missing_ref.json()["error_code"] == 42201


def test_json_schema_and_protobuf_register(
    client: SchemaRegistryClient, http: httpx.Client
) -> None:
    js = {"type": "object", "properties": {"n": {"type": "integer"}}}
    jid = client.register_schema("j", Schema(json.dumps(js), "JSON"))
    assert http.get(f"/schemas/ids/{jid}").json()["schemaType"] == "JSON"
    proto = 'syntax = "proto3";\npackage acme;\nmessage Ping { int64 at = 1; }\n'
    pid = client.register_schema("p", Schema(proto, "PROTOBUF"))
    assert client.get_schema(pid).schema_type == "PROTOBUF"
    narrowed = 'syntax = "proto3";\npackage acme;\nmessage Ping { string at = 1; }\n'
    assert client.test_compatibility("p", Schema(narrowed, "PROTOBUF")) is False
    bad = http.post("/subjects/p/versions", json={"schema": "message {", "schemaType": "PROTOBUF"})
    assert bad.json()["error_code"] == 42201


def test_restart_keeps_everything(bootstrap: str) -> None:
    with RegistryServer(bootstrap, port=0) as first:
        c = connect(first.url)
        sid = c.register_schema("s", avro(USER_V1))
        c.register_schema("s", avro(USER_V2))
        c.delete_version("s", 1)
        c.set_compatibility("s", "FULL")
        c.update_mode("s", "READONLY")
    with RegistryServer(bootstrap, port=0) as second:
        c = connect(second.url)
        assert c.get_versions("s") == [2]
        assert json.loads(c.get_schema(sid).schema_str) == USER_V1
        assert c.get_compatibility("s") == "FULL"
        assert c.get_mode("s") == "READONLY"
        c.delete_mode("s")
        assert c.register_schema("t", avro({"type": "string"})) == sid + 2


def test_two_instances_share_state(registry: RegistryServer, bootstrap: str) -> None:
    with RegistryServer(bootstrap, port=0) as other:
        sid = fresh(registry).register_schema("s", avro(USER_V1))
        # The other instance follows the topic; its view catches up without a restart.
        reader = connect(other.url)
        for _ in range(200):
            if other.state.versions("s"):
                break
            time.sleep(0.05)
        assert reader.get_latest_version("s").schema_id == sid
