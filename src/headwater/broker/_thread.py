"""Run a broker on its own event loop in a background thread of this process.

For embedding (the demo, notebooks, tests): the caller keeps its own thread free for
synchronous Kafka clients, and ``stop()`` shuts the broker down cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from headwater.broker._config import BrokerConfig
from headwater.broker._loop import new_event_loop
from headwater.broker._server import Broker

_START_TIMEOUT_S = 60.0
T = TypeVar("T")


class BrokerThread:
    """``with BrokerThread(config) as b: ... b.bootstrap ...``"""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.broker = Broker(config)
        self._loop = new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="headwater-broker", daemon=True)

    @property
    def bootstrap(self) -> str:
        host, port = self.broker.advertised
        return f"{host}:{port}"

    def bootstrap_for(self, listener: str) -> str:
        """``host:port`` of the named listener, as clients connecting there are told."""
        host, port = self.broker.advertised_for(listener.upper())
        return f"{host}:{port}"

    def start(self) -> BrokerThread:
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("broker did not start within 60 s")
        if self._error is not None:
            raise RuntimeError(f"broker failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.broker.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.broker.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the broker's loop and return its result (tests set fault hooks so)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(_START_TIMEOUT_S)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
