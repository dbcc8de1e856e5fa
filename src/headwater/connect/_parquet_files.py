"""Parquet file names, atomic writes and the clean-up of files no commit covers.

A file's name is its source partition and offset range, zero-padded so names sort by offset:
``<topic>-<partition>-<first offset>-<last offset>.parquet``. Writing the same records again
produces the same name, and any file whose first offset is at or past the committed offset
was written by a flush whose commit never happened, so it is removed before replaying.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from fsspec.implementations.local import LocalFileSystem  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

_DIGITS = 20


def file_name(topic: str, partition: int, first: int, last: int) -> str:
    return f"{topic}-{partition}-{first:0{_DIGITS}d}-{last:0{_DIGITS}d}.parquet"


def parse_range(name: str, topic: str, partition: int) -> tuple[int, int] | None:
    """The offset range in ``name`` if it is a data file of ``topic``/``partition``."""
    prefix = f"{topic}-{partition}-"
    if not name.startswith(prefix) or not name.endswith(".parquet"):
        return None
    parts = name[len(prefix) : -len(".parquet")].split("-")
    if len(parts) != 2 or not all(len(p) == _DIGITS and p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


@dataclass(frozen=True, slots=True)
class Store:
    """A base directory on some fsspec filesystem (local disk, S3, …)."""

    fs: fsspec.AbstractFileSystem
    root: str

    @classmethod
    def open(cls, base_url: str, storage_options: dict[str, Any] | None = None) -> Store:
        fs, root = fsspec.core.url_to_fs(base_url, **(storage_options or {}))
        return cls(fs, root.rstrip("/"))

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def write(self, relative: str, table: pa.Table, compression: str) -> str:
        """Write ``table`` so that the final name appears complete or not at all."""
        final = self.path(relative)
        if self.local:
            _write_local(final, table, compression)
        else:
            # Object stores publish an object only when its upload completes.
            with self.fs.open(final, "wb") as out:
                pq.write_table(table, out, compression=compression)
        return final

    def files_of(self, topic: str, partition: int) -> list[tuple[str, int, int]]:
        """Every data file of the partition, with its offset range."""
        self.fs.invalidate_cache()
        pattern = self.path("dt=*", "hour=*", f"{topic}-{partition}-*")
        found = []
        for path in self.fs.glob(pattern):
            span = parse_range(posixpath.basename(str(path)), topic, partition)
            if span is not None:
                found.append((str(path), *span))
        return found

    def remove_uncommitted(self, topic: str, partition: int, committed: int | None) -> int:
        """Delete the partition's files at or past ``committed`` (all of them when None)."""
        removed = 0
        for path, first, _last in self.files_of(topic, partition):
            if committed is None or first >= committed:
                self.fs.rm(path)
                removed += 1
                log.info("removed uncommitted file path=%s committed=%s", path, committed)
        if self.local:
            for path in self.fs.glob(self.path("dt=*", "hour=*", f".{topic}-{partition}-*.tmp")):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(str(path))
        return removed


def _write_local(final: str, table: pa.Table, compression: str) -> None:
    directory = os.path.dirname(final)
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f".{os.path.basename(final)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "wb") as out:
            pq.write_table(table, out, compression=compression)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    # The rename is durable only once the directory entry is.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
