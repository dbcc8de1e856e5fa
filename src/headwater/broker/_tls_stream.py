"""TLS over an accepted connection's plain stream, with OpenSSL working on memory buffers.

asyncio's and uvloop's TLS transports drop the fatal alert OpenSSL prepares when they refuse
a handshake (an expired or unknown client certificate): the client sees the connection reset
and cannot tell why. Doing the TLS here, through ``ssl.MemoryBIO``, sends every byte OpenSSL
produces, the alert included, and lets the broker log the reason with the client's address.
The handshake also runs inside the connection's own task, so it counts against
``connections_max`` and is bounded by ``ssl_handshake_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import ssl

_RAW_READ_BYTES = 256 * 1024


class TlsStream:
    """One server-side TLS session: ``handshake()``, then ``read()``/``write()`` plaintext."""

    __slots__ = ("_incoming", "_outgoing", "_reader", "_writer", "ssl_object")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def handshake(self) -> None:
        """Complete the handshake; on refusal the alert is queued to the peer, then it raises
        ``ssl.SSLError`` (or ``ConnectionError`` if the peer left first)."""
        while True:
            try:
                self.ssl_object.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                if not await self._fill():
                    raise ConnectionError(
                        "the peer closed the connection during the TLS handshake"
                    ) from None
                continue
            except ssl.SSLError:
                self._flush()  # the fatal alert that says why
                raise
            self._flush()
            return

    async def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes of plaintext; b"" at the end of the stream."""
        while True:
            try:
                data = self.ssl_object.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                if not await self._fill():
                    return b""
                continue
            except ssl.SSLZeroReturnError:
                return b""  # the peer's close_notify
            self._flush()  # TLS 1.3 may answer key updates and tickets at any time
            return data

    def write(self, data: bytes) -> None:
        """Encrypt ``data`` and queue it on the connection."""
        self.ssl_object.write(data)
        self._flush()

    async def _fill(self) -> bool:
        raw = await self._reader.read(_RAW_READ_BYTES)
        if not raw:
            return False
        self._incoming.write(raw)
        return True

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._writer.write(pending)
