"""Public test helpers: an embedded broker on a free loopback port, in-thread or as a process.

Users' own tests can start a real broker in a fixture the same way ours do.
"""

from headwater.testing._brokers import BrokerProcess, embedded_broker
from headwater.testing._postgres import PostgresServer, postgres_server

__all__ = ["BrokerProcess", "PostgresServer", "embedded_broker", "postgres_server"]
