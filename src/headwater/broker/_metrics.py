"""The broker's own counters, in a Prometheus registry that belongs to one broker.

A registry per broker (not prometheus-client's global one) so that several brokers in one
process, as in tests, count separately. Labels never carry raw values from the wire: an API key
the broker does not handle is counted as ``unknown``, so a hostile peer cannot create series.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from headwater.broker._registry import HANDLERS

UNKNOWN_API = "unknown"


def api_label(api_key: int) -> str:
    """The API's name for a label, or ``unknown`` for keys nothing handles."""
    handler = HANDLERS.get(api_key)
    return handler.name if handler is not None else UNKNOWN_API


class BrokerMetrics:
    """Connection and request counters; ``registry`` is what a /metrics endpoint serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections_active = Gauge(
            "headwater_broker_connections_active",
            "Client connections open now.",
            registry=self.registry,
        )
        self.connections_accepted = Counter(
            "headwater_broker_connections_accepted",
            "Client connections accepted.",
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "headwater_broker_connections_refused",
            "Connections refused at accept, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "headwater_broker_connections_closed",
            "Connections the broker closed, by reason (malformed input, idle, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.requests = Counter(
            "headwater_broker_requests",
            "Requests decoded and dispatched, by API.",
            ["api"],
            registry=self.registry,
        )
        self.requests_rejected = Counter(
            "headwater_broker_requests_rejected",
            "Requests refused before a handler answered them, by API and reason.",
            ["api", "reason"],
            registry=self.registry,
        )
        self.authentications = Counter(
            "headwater_broker_authentications",
            "SASL authentications, by listener, mechanism and result (success, failure).",
            ["listener", "mechanism", "result"],
            registry=self.registry,
        )
        # Children bound once: the request path increments without a label lookup.
        self._requests_by_key = {
            key: self.requests.labels(handler.name) for key, handler in HANDLERS.items()
        }

    def request(self, api_key: int) -> None:
        child = self._requests_by_key.get(api_key)
        if child is not None:
            child.inc()

    def rejected(self, api_key: int | None, reason: str) -> None:
        api = UNKNOWN_API if api_key is None else api_label(api_key)
        self.requests_rejected.labels(api, reason).inc()


class MetricsServer:
    """``/metrics`` over HTTP for one registry, on a daemon thread (prometheus-client's)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, host, registry)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
