"""The console's HTTP routes: the page, its static files, and the metrics it polls."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from headwater.console._source import MetricsSource

_log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# The page polls every second; a cached answer would freeze the charts.
_NO_STORE = {"cache-control": "no-store"}


def _json(data: object, status_code: int = 200) -> Response:
    # orjson writes NaN and infinities as null, so a bad reading cannot break the page's parser.
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        media_type="application/json",
        headers=_NO_STORE,
    )


def create_console(source: MetricsSource) -> Starlette:
    """The dashboard as an ASGI app over ``source``; serve it with uvicorn or ConsoleServer."""

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)

    async def metrics(_request: Request) -> Response:
        try:
            snapshot = await run_in_threadpool(source.snapshot)
            return _json(snapshot)
        except Exception as exc:
            # The page keeps polling and shows it is disconnected; the log says why.
            _log.warning("metrics snapshot failed reason=%r", exc)
            return _json({"error": f"metrics snapshot failed: {exc}"}, status_code=503)

    async def health(_request: Request) -> Response:
        return _json({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/metrics", metrics),
            Route("/api/health", health),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    )
