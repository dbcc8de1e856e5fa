"""The ``headwater`` command: wiring only, the logic lives in the packages it calls."""

from headwater.cli._app import app, main

__all__ = ["app", "main"]
