"""The demo pipeline a new user runs first: events in, processed in flight, queryable at once."""

from headwater.demo._generator import EventGenerator, GeneratorStats
from headwater.demo._pipeline import build_pipeline
from headwater.demo._run import Demo, DemoSettings, create_demo_topics

__all__ = [
    "Demo",
    "DemoSettings",
    "EventGenerator",
    "GeneratorStats",
    "build_pipeline",
    "create_demo_topics",
]
