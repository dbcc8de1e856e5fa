"""Public test helpers: an embedded broker on a free loopback port, in-thread or as a process,
and headless Chromium for pages.

Users' own tests can start a real broker in a fixture the same way ours do.
"""

from headwater.testing._brokers import BrokerProcess, embedded_broker
from headwater.testing._browser import BrowserError, chromium_path, render
from headwater.testing._postgres import PostgresServer, postgres_server

__all__ = [
    "BrokerProcess",
    "BrowserError",
    "PostgresServer",
    "chromium_path",
    "embedded_broker",
    "postgres_server",
    "render",
]
