"""The live web console of a running pipeline: stat tiles, charts and tables in one page.

``create_console(source)`` builds the ASGI app; ``ConsoleServer(source)`` serves it from a
background thread on 127.0.0.1. The page polls ``GET /api/metrics`` every second and draws
its charts with its own small SVG code, so it needs nothing from the internet.

Routes: ``GET /`` (the page), ``GET /static/...`` (its script and style), ``GET /api/metrics``
(the snapshot as JSON, 503 with ``{"error": ...}`` if the source fails) and ``GET /api/health``.

A ``MetricsSource`` returns this JSON-able snapshot::

    {"time_ms": int,                    # when the snapshot was taken, ms since the epoch
     "uptime_s": float,
     "rates": {"events_in_per_s": float, "events_out_per_s": float},
     "totals": {"events_in": int, "events_out": int, "dead_letters": int,
                "alerts": int, "orders": int, "revenue": float},
     "series": {"events_in_per_s": [[t_ms, v], ...],
                "events_out_per_s": [[t_ms, v], ...],
                "revenue_per_minute": [[window_start_ms, revenue], ...],
                "clicks_per_minute": [[window_start_ms, count], ...],
                "freshness_ms": [[t_ms, v], ...]},
     "alerts": [{"key": str, "value": float, "score": float, "timestamp": int}, ...],
                                        # anomaly alerts, latest first, at most 20
     "lag": {group: {"total": int, "partitions": {"topic[p]": int}}},
                                        # headwater.monitor.lag_snapshot() gives this shape
     "freshness_ms": {"last": float | None, "p50": float | None, "p99": float | None}}

Series are drawn as given, oldest first; keep them bounded (a few minutes of points).
"""

from headwater.console._app import create_console
from headwater.console._server import ConsoleError, ConsoleServer
from headwater.console._source import MetricsSource

__all__ = ["ConsoleError", "ConsoleServer", "MetricsSource", "create_console"]
