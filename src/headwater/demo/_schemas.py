"""JSON Schemas of the demo's input topics, registered in the schema registry at start."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

_NUMBER = {"type": "number"}
_TS = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, dict[str, Any]] = {
    "orders-value": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "customer_id": {"type": "string"},
            "amount": {**_NUMBER, "minimum": 0},
            "items": {"type": "integer", "minimum": 1},
            "test": {"type": "boolean"},
            "ts": _TS,
        },
        "required": ["order_id", "customer_id", "amount", "ts"],
    },
    "clicks-value": {
        "type": "object",
        "properties": {"user_id": {"type": "string"}, "page": {"type": "string"}, "ts": _TS},
        "required": ["user_id", "page", "ts"],
    },
    "temperatures-value": {
        "type": "object",
        "properties": {"sensor_id": {"type": "string"}, "celsius": _NUMBER, "ts": _TS},
        "required": ["sensor_id", "celsius", "ts"],
    },
}


def register_schemas(registry_url: str) -> dict[str, int]:
    """Register every schema (idempotent: the same schema keeps its id); subject → id."""
    ids: dict[str, int] = {}
    with httpx.Client(base_url=registry_url, timeout=30) as client:
        for subject, schema in SCHEMAS.items():
            response = client.post(
                f"/subjects/{subject}/versions",
                content=orjson.dumps(
                    {"schemaType": "JSON", "schema": orjson.dumps(schema).decode()}
                ),
                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            )
            response.raise_for_status()
            ids[subject] = int(response.json()["id"])
    return ids
