"""The broker's own counters, in a Prometheus registry that belongs to one broker.

A registry per broker (not prometheus-client's global one) so that several brokers in one
process, as in tests, count separately. Labels never carry raw values from the wire: an API key
the broker does not handle is counted as ``unknown``, so a hostile peer cannot create series.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from headwater.broker._registry import HANDLERS
from headwater.security._http_auth import BasicAuth, wsgi_basic_auth

log = logging.getLogger(__name__)

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
        self.authorization_denied = Counter(
            "headwater_broker_authorization_denied",
            "Requests or parts of requests the authorizer refused, by API and resource type.",
            ["api", "resource_type"],
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


# A peer that connects and never finishes its TLS handshake (or request) holds one worker
# thread for this long, not the accept loop.
METRICS_SOCKET_TIMEOUT_S = 30.0


class _MetricsHttpServer(ThreadingWSGIServer):
    """prometheus-client's threaded WSGI server, with TLS handshakes on the worker thread.

    prometheus-client wraps the listening socket, so the handshake runs in ``accept`` on the
    one serving thread and a silent peer stops every scrape; here each connection is wrapped
    after accept, in its own thread, under a timeout.
    """

    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(METRICS_SOCKET_TIMEOUT_S)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            tls_socket = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("metrics tls handshake failed peer=%s reason=%s", client_address, exc)
            return
        with tls_socket:
            super().finish_request(tls_socket, client_address)


def _metrics_tls(certfile: str | Path, keyfile: str | Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load the metrics TLS certificate certfile={certfile} keyfile={keyfile}: "
            f"{exc}; check that they are PEM files and that the key belongs to the certificate"
        ) from None
    return context


class MetricsServer:
    """``/metrics`` for one registry on daemon threads: HTTP, or HTTPS with ``certfile`` and
    ``keyfile``, and HTTP Basic authentication against the broker's SCRAM users with ``auth``.

    The server is prometheus-client's own (``start_wsgi_server`` builds the same one), so the
    exposition (content negotiation, gzip, ``name[]`` filters) is unchanged.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        *,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        auth: BasicAuth | None = None,
    ) -> None:
        if (certfile is None) != (keyfile is None):
            raise ValueError("metrics TLS needs both a certfile and a keyfile")
        tls = None if certfile is None or keyfile is None else _metrics_tls(certfile, keyfile)
        app = make_wsgi_app(registry)
        if auth is not None:
            app = wsgi_basic_auth(app, auth)

        class _Server(_MetricsHttpServer):
            pass

        # As prometheus-client's _get_best_family: bind an IPv6 host with AF_INET6.
        family, *_, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        addr = str(sockaddr[0])
        _Server.address_family = family
        _Server.tls = tls
        self.tls = tls is not None
        self._server = make_server(addr, port, app, _Server, handler_class=_SilentHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="headwater-metrics", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Where the endpoint is served, e.g. ``https://127.0.0.1:9404/metrics``."""
        host = str(self._server.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
