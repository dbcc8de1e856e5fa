"""Durable state stores: in memory while running, on local disk between runs, and in a
compacted changelog topic for when the local disk is gone or the partition moved.

Writes go to memory; at each commit the keys changed since the last commit are written once
each (not once per update) to the changelog and, after the commit succeeded, to a local SQLite
file together with the changelog offset they reach (the checkpoint). Restoring reads the
local file and then replays the changelog from the checkpoint, so a restart replays only what
the local file missed and a new machine replays the whole (compacted) changelog.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

import orjson

from headwater.streams._core import MemoryStore

_BYTES_TAG = "$b"


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES_TAG: base64.b64encode(bytes(value)).decode()}
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in a state store")


def encode(value: Any) -> bytes:
    """Changelog bytes for a key or value (JSON; bytes are tagged so they come back as bytes)."""
    return orjson.dumps(value, default=_default)


def _revive(value: Any, lists_as_tuples: bool) -> Any:
    if isinstance(value, list):
        items = [_revive(v, lists_as_tuples) for v in value]
        return tuple(items) if lists_as_tuples else items
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES_TAG in value:
            return base64.b64decode(value[_BYTES_TAG])
        return {k: _revive(v, lists_as_tuples) for k, v in value.items()}
    return value


def decode_key(data: bytes) -> Hashable:
    """Keys are hashable, so any JSON array in one was a tuple."""
    key: Hashable = _revive(orjson.loads(data), lists_as_tuples=True)
    return key


def decode_value(data: bytes) -> Any:
    return _revive(orjson.loads(data), lists_as_tuples=False)


class LocalStateFile:
    """The on-disk copy of one store partition: SQLite, written once per commit."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER)")

    def checkpoint(self) -> int:
        """The changelog offset the file has caught up to, or -1 when it has none."""
        row = self.db.execute("SELECT value FROM meta WHERE name = 'checkpoint'").fetchone()
        return -1 if row is None else int(row[0])

    def load(self) -> dict[Hashable, Any]:
        return {decode_key(k): decode_value(v) for k, v in self.db.execute("SELECT k, v FROM kv")}

    def save(self, changes: Iterable[tuple[bytes, bytes | None]], checkpoint: int) -> None:
        """Apply ``changes`` (``None`` deletes) and move the checkpoint, atomically."""
        db = self.db
        db.execute("BEGIN")
        try:
            for key, value in changes:
                if value is None:
                    db.execute("DELETE FROM kv WHERE k = ?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))
            db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('checkpoint', ?)",
                (checkpoint,),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def wipe(self) -> None:
        """Forget everything (the changelog will be replayed from its start)."""
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM kv")
        self.db.execute("DELETE FROM meta")
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class DurableStore(MemoryStore):
    """A :class:`MemoryStore` that knows its changelog partition and local file."""

    def __init__(self, name: str, changelog: str, partition: int, local: LocalStateFile) -> None:
        super().__init__()
        self.name = name
        self.changelog = changelog
        self.partition = partition
        self.local = local
        #: Encoded changes sent to the changelog but not yet saved locally.
        self.unsaved: list[tuple[bytes, bytes | None]] = []
        #: Highest changelog offset acknowledged for ``unsaved`` (-1: none).
        self.last_offset = -1

    def encoded_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changes since the last commit, encoded for the changelog, remembered for saving."""
        changes = [
            (encode(key), None if value is None else encode(value))
            for key, value in self.take_changes()
        ]
        self.unsaved.extend(changes)
        return changes

    def committed(self) -> None:
        """The changelog holds ``unsaved``: copy them to the local file with the checkpoint."""
        if not self.unsaved:
            return
        checkpoint = self.last_offset + 1 if self.last_offset >= 0 else self.local.checkpoint()
        self.local.save(self.unsaved, checkpoint)
        self.unsaved = []

    def discard_uncommitted(self) -> None:
        """A transaction was aborted: changes in ``unsaved`` never became visible."""
        self.unsaved = []
        self.dirty.clear()
