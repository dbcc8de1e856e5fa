"""A broker-wide bound on the request bytes held in memory, as Kafka's queued.max.request.bytes.

A frame's size is reserved from the budget as soon as its size prefix arrives and given back
when its handler finishes, so the bytes of every partly received and every in-flight request
together never exceed the bound, however many connections announce large frames. A connection
that cannot reserve waits (it is not read from) until others give bytes back.
"""

from __future__ import annotations

import asyncio


class ByteBudget:
    """Bytes that may be reserved at once; ``reserve`` waits when they are taken."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.free_bytes = total_bytes
        self._freed = asyncio.Event()

    def try_reserve(self, size: int) -> bool:
        if size <= self.free_bytes:
            self.free_bytes -= size
            return True
        return False

    async def reserve(self, size: int) -> None:
        """Take ``size`` bytes, waiting for releases if needed (size <= total_bytes)."""
        assert size <= self.total_bytes, "a frame larger than the budget could never be read"
        while not self.try_reserve(size):
            self._freed.clear()
            await self._freed.wait()

    def release(self, size: int) -> None:
        self.free_bytes += size
        assert self.free_bytes <= self.total_bytes, "released more than was reserved"
        self._freed.set()
