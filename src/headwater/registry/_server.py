"""The registry process: follow ``_schemas`` from the broker and serve HTTP with uvicorn.

Nothing is kept on local disk; the state is rebuilt from the topic on every start, which is
why a restarted registry, or a second one, answers with the same schemas and ids.

With ``ssl_certfile``/``ssl_keyfile`` it serves HTTPS (uvicorn's TLS); with ``auth`` every
request logs in with HTTP Basic against the broker's SCRAM users, and only read-write users
may change anything (see docs/security.md, "HTTP services").
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from headwater.client._topic_table import TopicTable
from headwater.registry._http import build_app
from headwater.registry._service import Registry
from headwater.registry._state import SCHEMAS_TOPIC, RegistryState
from headwater.security._http_auth import BasicAuth, BasicAuthMiddleware

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 60.0


class RegistryServer:
    """A schema registry on ``host:port`` backed by the ``_schemas`` topic at ``bootstrap``."""

    def __init__(
        self,
        bootstrap: str,
        host: str = "127.0.0.1",
        port: int = 8081,
        *,
        topic: str = SCHEMAS_TOPIC,
        write_timeout_s: float = 30.0,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
        auth: BasicAuth | None = None,
    ) -> None:
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("HTTPS needs both ssl_certfile and ssl_keyfile")
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.auth = auth
        self.bootstrap = bootstrap
        self.host = host
        self.port = port
        self.state = RegistryState()
        self._table = TopicTable(bootstrap, topic, on_record=self.state.apply, partitions=1)
        self._write_timeout_s = write_timeout_s
        self.registry = Registry(self.state, self._write)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _write(self, key: bytes, value: bytes | None) -> None:
        self._table.put(key, value, timeout_s=self._write_timeout_s)

    @property
    def url(self) -> str:
        scheme = "http" if self.ssl_certfile is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def _uvicorn(self) -> uvicorn.Server:
        app: Any = build_app(self.registry)
        if self.auth is not None:
            app = BasicAuthMiddleware(app, self.auth)
        config = uvicorn_config(
            app, "registry", self.ssl_certfile, self.ssl_keyfile, host=self.host, port=self.port
        )
        return uvicorn.Server(config)

    def _bound_port(self, server: uvicorn.Server) -> int:
        for listener in server.servers:
            for sock in listener.sockets:
                return int(sock.getsockname()[1])
        return self.port

    def start(self, timeout_s: float = _START_TIMEOUT_S) -> RegistryServer:
        """Read ``_schemas`` to its end, then listen in a background thread."""
        server = self._server = self._uvicorn()
        self._table.start(timeout_s)
        self._thread = threading.Thread(target=server.run, name="registry-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._table.close()
                raise RuntimeError(f"registry could not listen on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self._bound_port(server)
        log.info("registry ready url=%s schemas=%d", self.url, len(self._table))
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._table.close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def uvicorn_config(
    app: Any,
    what: str,
    ssl_certfile: str | Path | None,
    ssl_keyfile: str | Path | None,
    **options: Any,
) -> uvicorn.Config:
    """A quiet uvicorn config for one of Headwater's HTTP services, HTTPS when given a pair.

    The certificate is loaded here rather than in the server thread, so a bad one is
    reported to the caller as such (``ValueError``) instead of as a failure to listen.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ssl_certfile=None if ssl_certfile is None else str(ssl_certfile),
        ssl_keyfile=None if ssl_keyfile is None else str(ssl_keyfile),
        **options,
    )
    try:
        config.load()
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load the {what}'s TLS certificate ssl_certfile={ssl_certfile} "
            f"ssl_keyfile={ssl_keyfile}: {exc}"
        ) from None
    return config
