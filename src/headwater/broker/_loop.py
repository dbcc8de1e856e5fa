"""The broker's event loop: uvloop where it is installed, asyncio's own otherwise.

Every request crosses the loop several times (read, dispatch, group-commit wake-up, write), so
a transaction's round trips are mostly loop overhead; uvloop cuts that by 5-10% of
transactional throughput (bench/transactions.py). It is a dependency on Linux and macOS;
elsewhere the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
