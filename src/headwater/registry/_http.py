"""The REST routes of the Confluent Schema Registry API over :class:`Registry`.

Endpoints are plain functions, so Starlette runs them in its thread pool: a write blocks until
the ``_schemas`` log has been read back, and must not block the event loop meanwhile.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from headwater.registry import _errors as err
from headwater.registry._formats import SCHEMA_TYPES
from headwater.registry._service import Registry
from headwater.registry._state import SchemaVersion

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
BODY_BYTES_MAX = 16 * 1024 * 1024


class _Json(Response):
    media_type = CONTENT_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _int_param(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise err.RegistryError(40400, f"{what} {value!r} is not a number") from None


def _version_json(v: SchemaVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": v.subject, "version": v.version, "id": v.schema_id}
    out.update(_schema_json(v))
    return out


def _schema_json(v: SchemaVersion) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if v.schema_type != "AVRO":
        out["schemaType"] = v.schema_type
    if v.references:
        out["references"] = [r.to_json() for r in v.references]
    out["schema"] = v.schema
    return out


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > BODY_BYTES_MAX:
        raise err.RegistryError(42209, f"request body is larger than {BODY_BYTES_MAX} bytes")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise err.RegistryError(400, f"request body is not JSON: {exc}") from None


def _reg(q: Request) -> Registry:
    registry: Registry = q.app.state.registry
    return registry


def _subject(q: Request) -> str:
    return str(q.path_params["subject"])


def _id(q: Request) -> int:
    return _int_param(q.path_params["id"], "schema id")


def root(_: Request) -> Response:
    return _Json({})


def schema_types(_: Request) -> Response:
    return _Json(sorted(SCHEMA_TYPES))


def contexts(_: Request) -> Response:
    return _Json(["."])


def subjects(q: Request) -> Response:
    prefix = q.query_params.get("subjectPrefix", "")
    names = _reg(q).subjects(
        prefix, deleted=_flag(q, "deleted"), deleted_only=_flag(q, "deleted_only")
    )
    return _Json(names)


def versions(q: Request) -> Response:
    found = _reg(q).versions(_subject(q), deleted=_flag(q, "deleted"))
    return _Json([v.version for v in found])


def version(q: Request) -> Response:
    v = _reg(q).version(_subject(q), q.path_params["version"], deleted=_flag(q, "deleted"))
    return _Json(_version_json(v))


def version_schema(q: Request) -> Response:
    v = _reg(q).version(_subject(q), q.path_params["version"], deleted=_flag(q, "deleted"))
    return Response(v.schema, media_type=CONTENT_TYPE)


def referenced_by(q: Request) -> Response:
    return _Json(_reg(q).referenced_by(_subject(q), q.path_params["version"]))


async def register(q: Request) -> Response:
    body = await _body(q)
    v = await run_in_threadpool(_reg(q).register, _subject(q), body)
    return _Json({"id": v.schema_id, "version": v.version, **_schema_json(v)})


async def lookup(q: Request) -> Response:
    body = await _body(q)
    v = _reg(q).lookup(_subject(q), body, deleted=_flag(q, "deleted"))
    return _Json(_version_json(v))


async def delete_subject(q: Request) -> Response:
    permanent = _flag(q, "permanent")
    out = await run_in_threadpool(lambda: _reg(q).delete_subject(_subject(q), permanent=permanent))
    return _Json(out)


async def delete_version(q: Request) -> Response:
    permanent, number = _flag(q, "permanent"), q.path_params["version"]
    out = await run_in_threadpool(
        lambda: _reg(q).delete_version(_subject(q), number, permanent=permanent)
    )
    return _Json(out)


def schema_by_id(q: Request) -> Response:
    return _Json(_schema_json(_reg(q).by_id(_id(q), q.query_params.get("subject"))))


def schema_text_by_id(q: Request) -> Response:
    v = _reg(q).by_id(_id(q), q.query_params.get("subject"))
    return Response(v.schema, media_type=CONTENT_TYPE)


def id_subjects(q: Request) -> Response:
    found = _reg(q).id_versions(_id(q), deleted=_flag(q, "deleted"))
    wanted = q.query_params.get("subject")
    return _Json(sorted({v.subject for v in found if wanted in (None, v.subject)}))


def id_versions(q: Request) -> Response:
    found = _reg(q).id_versions(_id(q), deleted=_flag(q, "deleted"))
    wanted = q.query_params.get("subject")
    pairs = [{"subject": v.subject, "version": v.version} for v in found]
    return _Json([p for p in pairs if wanted in (None, p["subject"])])


def schemas(q: Request) -> Response:
    registry = _reg(q)
    prefix = q.query_params.get("subjectPrefix", "")
    deleted, latest_only = _flag(q, "deleted"), _flag(q, "latestOnly")
    out = []
    for name in registry.subjects(prefix, deleted=deleted, deleted_only=False):
        found = registry.state.versions(name, deleted=deleted)
        out += [_version_json(v) for v in (found[-1:] if latest_only else found)]
    return _Json(out)


async def compatibility(q: Request) -> Response:
    body = await _body(q)
    reasons = _reg(q).test_compatibility(_subject(q), q.path_params.get("version"), body)
    out: dict[str, Any] = {"is_compatible": not reasons}
    if _flag(q, "verbose"):
        out["messages"] = reasons
    return _Json(out)


async def config(q: Request) -> Response:
    registry, subject = _reg(q), q.path_params.get("subject")
    if q.method == "GET":
        return _Json(registry.get_config(subject, default_to_global=_flag(q, "defaultToGlobal")))
    if q.method == "PUT":
        body = await _body(q)
        return _Json(await run_in_threadpool(registry.set_config, subject, body))
    return _Json(await run_in_threadpool(registry.delete_config, subject))


async def mode(q: Request) -> Response:
    registry, subject = _reg(q), q.path_params.get("subject")
    if q.method == "GET":
        found = registry.get_mode(subject, default_to_global=_flag(q, "defaultToGlobal"))
        return _Json({"mode": found})
    if q.method == "PUT":
        body, force = await _body(q), _flag(q, "force")
        return _Json(
            {"mode": await run_in_threadpool(lambda: registry.set_mode(subject, body, force=force))}
        )
    if subject is None:
        reset = {"mode": "READWRITE"}
        return _Json(
            {"mode": await run_in_threadpool(lambda: registry.set_mode(None, reset, force=True))}
        )
    return _Json({"mode": await run_in_threadpool(registry.delete_mode, subject)})


ROUTES = [
    Route("/", root),
    Route("/schemas/types", schema_types),
    Route("/schemas", schemas),
    Route("/schemas/ids/{id}", schema_by_id),
    Route("/schemas/ids/{id}/schema", schema_text_by_id),
    Route("/schemas/ids/{id}/subjects", id_subjects),
    Route("/schemas/ids/{id}/versions", id_versions),
    Route("/subjects", subjects),
    Route("/subjects/{subject}", lookup, methods=["POST"]),
    Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
    Route("/subjects/{subject}/versions", versions, methods=["GET"]),
    Route("/subjects/{subject}/versions", register, methods=["POST"]),
    Route("/subjects/{subject}/versions/{version}", version, methods=["GET"]),
    Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
    Route("/subjects/{subject}/versions/{version}/schema", version_schema),
    Route("/subjects/{subject}/versions/{version}/referencedby", referenced_by),
    Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
    Route("/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]),
    Route("/config", config, methods=["GET", "PUT", "DELETE"]),
    Route("/config/{subject}", config, methods=["GET", "PUT", "DELETE"]),
    Route("/mode", mode, methods=["GET", "PUT", "DELETE"]),
    Route("/mode/{subject}", mode, methods=["GET", "PUT", "DELETE"]),
    Route("/contexts", contexts),
]


async def _on_registry_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, err.RegistryError)
    return _Json(exc.body(), status_code=exc.status)


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    return _Json(
        {"error_code": status, "message": f"HTTP {status} {exc.detail}"}, status_code=status
    )


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("registry request failed", exc_info=exc)
    return _Json(
        {"error_code": err.STORE_ERROR, "message": f"Error in the backend data store: {exc}"},
        status_code=500,
    )


def build_app(registry: Registry) -> Starlette:
    """The Starlette application serving ``registry``."""
    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            err.RegistryError: _on_registry_error,
            HTTPException: _on_http,
            Exception: _on_unexpected,
        },
    )
    app.state.registry = registry
    return app
