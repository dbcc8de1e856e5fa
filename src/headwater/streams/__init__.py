"""Stream processing on Kafka: filter, map, enrich, window, aggregate, detect anomalies.

Declare a pipeline on an :class:`App`, run it as a consumer group member (start more
instances to scale out), or run it in-process with :class:`TestDriver` in unit tests.
"""

from headwater.streams._app import App, Guarantee
from headwater.streams._core import MemoryStore, Processor, Record, StateStore, TaskContext
from headwater.streams._driver import TestDriver
from headwater.streams._dsl import Stream
from headwater.streams._runtime import AppStats, StreamsError
from headwater.streams._tables import GlobalTable
from headwater.streams._task import OperatorError

__all__ = [
    "App",
    "AppStats",
    "GlobalTable",
    "Guarantee",
    "MemoryStore",
    "OperatorError",
    "Processor",
    "Record",
    "StateStore",
    "Stream",
    "StreamsError",
    "TaskContext",
    "TestDriver",
]
