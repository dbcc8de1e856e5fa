"""Reading an audit log back: the last events, and new ones as they are appended.

The log is ``audit.log`` plus its rotated files (``audit.log.1`` the newest), one JSON event
per line. ``last_events`` reads files backwards in blocks, so a tail of a 100 MB file reads
only its end; ``Follower`` polls for appended lines and follows the file across a rotation
(the renamed file is read to its end before the new one is opened). A line that is not a
JSON object (a torn write, an unrelated file) is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from headwater.security._audit import TYPE_PREFIX

BLOCK_BYTES = 64 * 1024
# A line longer than this is no record this broker wrote: it is skipped, not buffered.
LINE_BYTES_MAX = 16 * 1024 * 1024

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to show: a type prefix (with or without ``io.headwater.``), a principal
    (``alice`` or ``User:alice``)."""

    type_prefix: str | None = None
    principal: str | None = None

    def __call__(self, event: Event) -> bool:
        if self.type_prefix is not None:
            kind = str(event.get("type", ""))
            prefix = self.type_prefix
            if not (kind.startswith(prefix) or kind.startswith(TYPE_PREFIX + prefix)):
                return False
        if self.principal is not None:
            data = event.get("data")
            who = data.get("principal") if isinstance(data, dict) else None
            if who not in (self.principal, f"User:{self.principal}"):
                return False
        return True


def parse(line: bytes) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def log_files(path: Path) -> Iterator[Path]:
    """The log and its rotated files, newest first."""
    yield path
    index = 1
    while True:
        rotated = path.with_name(f"{path.name}.{index}")
        if not rotated.exists():
            return
        yield rotated
        index += 1


def _lines_backwards(handle: BinaryIO, end: int) -> Iterator[bytes]:
    """The lines of the first ``end`` bytes of a file, last first."""
    position = end
    rest = b""
    while position > 0:
        size = min(BLOCK_BYTES, position)
        position -= size
        handle.seek(position)
        block = handle.read(size) + rest
        lines = block.split(b"\n")
        rest = lines[0]
        if len(rest) > LINE_BYTES_MAX:
            rest = b""
        for line in reversed(lines[1:]):
            if line:
                yield line
    if rest:
        yield rest


def last_events(
    path: Path,
    count: int,
    match: Callable[[Event], bool] = lambda _: True,
    *,
    end: int | None = None,
) -> list[tuple[bytes, Event]]:
    """The last ``count`` matching events (raw line and parsed), oldest first, from the log
    and as many rotated files as it takes. ``end`` stops reading ``path`` at that offset."""
    found: list[tuple[bytes, Event]] = []
    for i, file in enumerate(log_files(path)):
        if len(found) >= count:
            break
        try:
            with file.open("rb") as handle:
                limit = os.fstat(handle.fileno()).st_size
                if i == 0 and end is not None:
                    limit = min(limit, end)
                for line in _lines_backwards(handle, limit):
                    event = parse(line)
                    if event is not None and match(event):
                        found.append((line, event))
                        if len(found) >= count:
                            break
        except FileNotFoundError:
            continue  # rotated away while we read
    found.reverse()
    return found


class Follower:
    """New events of a log from ``offset`` on, one ``poll()`` at a time, across rotations."""

    def __init__(self, path: Path, offset: int | None = None) -> None:
        self.path = path
        self._handle: BinaryIO | None = None
        self._pending = b""
        self._open(offset)

    def _open(self, offset: int | None) -> None:
        try:
            self._handle = self.path.open("rb")
        except FileNotFoundError:
            self._handle = None
            return
        if offset is None:
            self._handle.seek(0, os.SEEK_END)
        else:
            self._handle.seek(offset)

    @property
    def offset(self) -> int:
        return -1 if self._handle is None else self._handle.tell()

    def poll(self) -> list[tuple[bytes, Event]]:
        """The complete lines appended since the last poll (a partial last line waits)."""
        out: list[tuple[bytes, Event]] = []
        if self._handle is None:
            self._open(0)  # the log did not exist yet: read it all once it does
            if self._handle is None:
                return out
        self._read(out)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return out  # between the rename and the new file: look again next time
        handle_stat = os.fstat(self._handle.fileno())
        if (current.st_ino, current.st_dev) != (handle_stat.st_ino, handle_stat.st_dev):
            self._read(out)  # what reached the old file just before it was renamed
            self._handle.close()
            self._pending = b""
            self._open(0)
            self._read(out)
        elif current.st_size < self._handle.tell():  # truncated in place
            self._handle.seek(0)
            self._pending = b""
            self._read(out)
        return out

    def _read(self, out: list[tuple[bytes, Event]]) -> None:
        assert self._handle is not None
        while True:
            chunk = self._handle.read(BLOCK_BYTES)
            if not chunk:
                return
            lines = (self._pending + chunk).split(b"\n")
            self._pending = lines.pop()
            if len(self._pending) > LINE_BYTES_MAX:
                self._pending = b""
            for line in lines:
                event = parse(line) if line else None
                if event is not None:
                    out.append((line, event))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
