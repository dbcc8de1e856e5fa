"""The client security profile: one set of TLS/SASL settings that every client gets.

Producers, consumers and admin clients made by this package (and so the streams runtime,
the sinks, the schema registry's store and every CLI command) start from the same settings,
so a secured cluster needs them written down once. They come from, lowest precedence first:
the properties file named by ``HEADWATER_CLIENT_CONFIG`` (``key=value`` lines, as Kafka's
tools take with ``--command-config``), then ``set_client_security()``. Settings a caller
passes for one client win over the profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ClientConfigError",
    "client_security",
    "read_client_properties",
    "set_client_security",
    "with_security",
]

_ENV = "HEADWATER_CLIENT_CONFIG"
_explicit: dict[str, str] = {}
_cache: tuple[str, int, dict[str, str]] | None = None  # (path, mtime_ns, settings)


class ClientConfigError(ValueError):
    """A client properties file that cannot be read or parsed; the message names the line."""


def read_client_properties(path: Path) -> dict[str, str]:
    """Settings from a Kafka-style properties file (``key=value``; ``#`` and ``!`` comments)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ClientConfigError(f"cannot read client properties {path}: {exc.strerror}") from None
    settings: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith(("#", "!")):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ClientConfigError(f"{path}:{number}: {text!r} is not key=value")
        settings[key.strip()] = value.strip()
    return settings


def set_client_security(settings: Mapping[str, str] | None) -> None:
    """Use ``settings`` (e.g. security.protocol, sasl.*, ssl.*) for every client from now on;
    None goes back to the file in ``HEADWATER_CLIENT_CONFIG`` alone."""
    _explicit.clear()
    _explicit.update(settings or {})


def client_security() -> dict[str, str]:
    """The profile in force now (read again when the file changes)."""
    global _cache
    from_file: dict[str, str] = {}
    path = os.environ.get(_ENV)
    if path:
        try:
            mtime = Path(path).stat().st_mtime_ns
        except OSError as exc:
            raise ClientConfigError(f"{_ENV}={path}: {exc.strerror}") from None
        if _cache is None or _cache[:2] != (path, mtime):
            _cache = (path, mtime, read_client_properties(Path(path)))
        from_file = _cache[2]
    return {**from_file, **_explicit}


def with_security(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` on top of the security profile: one client's own settings win."""
    return {**client_security(), **config}
