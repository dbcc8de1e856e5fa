"""Crash-safe small files: write to a temporary name, fsync, rename, fsync the directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    ``mode`` applies to the new file: 0o600 for files that hold secrets.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, value: Any, mode: int = 0o644) -> None:
    write_atomically(path, json.dumps(value, indent=1, sort_keys=True).encode(), mode)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it does not exist yet."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
