"""ConsoleServer: uvicorn serving the console in a background thread of the calling process.

The demo and the tests run the console beside a broker and a pipeline in one process, so the
server owns a thread and its own event loop instead of taking over the main one. The socket is
bound before the thread starts, so port 0 becomes a real port and ``url`` is known at once.

With ``ssl_certfile``/``ssl_keyfile`` it serves HTTPS; with ``auth`` every page and API call
needs HTTP Basic credentials of one of the broker's SCRAM users (any role: the console only
reads), except ``/api/health`` so that load balancers can probe it.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from headwater.console._app import create_console
from headwater.console._source import MetricsSource
from headwater.registry._server import uvicorn_config
from headwater.security._http_auth import BasicAuth, BasicAuthMiddleware

# Startup is a few milliseconds; the bound is for a machine busy with other work.
_START_TIMEOUT_S = 60.0


class ConsoleError(RuntimeError):
    """The console could not be started; the message says why and what to change."""


class ConsoleServer:
    """Serves ``create_console(source)`` on ``host:port`` until ``stop()``; port 0 picks one."""

    def __init__(
        self,
        source: MetricsSource,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | Path | None = None,
        ssl_keyfile: str | Path | None = None,
        auth: BasicAuth | None = None,
    ) -> None:
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ConsoleError("HTTPS needs both ssl_certfile and ssl_keyfile")
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.auth = auth
        self.source = source
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (``https://`` with TLS) of the running console."""
        if self._server is None:
            raise ConsoleError("the console is not started; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "http" if self.ssl_certfile is None else "https"
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> ConsoleServer:
        if self._server is not None:
            raise ConsoleError("the console is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConsoleError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                "choose another port, or 0 for a free one"
            ) from None
        self.port = sock.getsockname()[1]
        self._socket = sock
        try:
            config = self._config()
        except ConsoleError:
            self._close_socket()
            raise
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="headwater-console", daemon=True)
        self._thread.start()
        self._wait_started()
        return self

    def _config(self) -> uvicorn.Config:
        app: Any = create_console(self.source)
        if self.auth is not None:
            # Read-only: nothing to refuse by method; the routes only answer GET anyway.
            app = BasicAuthMiddleware(
                app, self.auth, write_methods=(), public_paths=("/api/health",)
            )
        try:
            return uvicorn_config(app, "console", self.ssl_certfile, self.ssl_keyfile)
        except ValueError as exc:
            raise ConsoleError(str(exc)) from None

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by _wait_started on the caller's thread
            self._failure = exc

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise ConsoleError(f"the console stopped while starting: {self._failure!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConsoleError(f"the console did not start within {_START_TIMEOUT_S:.0f} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and wait for open requests to finish."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close_socket()
        self._server = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
