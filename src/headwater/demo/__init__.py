"""The demo pipeline a new user runs first: events in, processed in flight, queryable at once."""

from headwater.demo._generator import EventGenerator, GeneratorStats
from headwater.demo._run import Demo, DemoSettings

__all__ = ["Demo", "DemoSettings", "EventGenerator", "GeneratorStats"]
