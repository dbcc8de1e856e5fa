"""Group commit: many acknowledgements share one fsync, run off the event loop.

A request that must be durable registers (log, offset) and awaits. One task runs fsyncs in a
worker thread, batching every log that became dirty while the previous fsync was running, so
the fsync rate stays bounded however many producers wait.
"""

from __future__ import annotations

import asyncio
import logging

from headwater.storage import PartitionLog

log = logging.getLogger(__name__)


class GroupCommitter:
    """Owns the fsync worker; only the event-loop thread calls ``wait_durable``."""

    def __init__(self) -> None:
        self._pending: dict[PartitionLog, list[tuple[int, asyncio.Future[None]]]] = {}
        self._wake = asyncio.Event()
        self.fsyncs = 0

    async def wait_durable(self, log_: PartitionLog, offset: int) -> None:
        """Return once everything up to and including ``offset`` in ``log_`` is fsynced."""
        if log_.flushed_offset > offset:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(log_, []).append((offset, future))
        self._wake.set()
        await future

    async def run(self) -> None:
        """Serve fsync rounds until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if not batch:
                continue
            logs = list(batch)
            try:
                await asyncio.to_thread(_flush_all, logs)
            except OSError as exc:
                log.error("fsync failed error=%s", exc)
                for waiters in batch.values():
                    for _, future in waiters:
                        if not future.done():
                            future.set_exception(exc)
                continue
            self.fsyncs += 1
            for log_, waiters in batch.items():
                for offset, future in waiters:
                    if future.done():
                        continue
                    if log_.flushed_offset > offset:
                        future.set_result(None)
                    else:  # appended after the flush began: goes to the next round
                        self._pending.setdefault(log_, []).append((offset, future))
                        self._wake.set()


def _flush_all(logs: list[PartitionLog]) -> None:
    for log_ in logs:
        log_.flush()
