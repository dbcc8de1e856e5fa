"""File names and crash-safe small writes shared by the log, recovery and compaction."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
TMP_SUFFIX = ".tmp"
RECOVERY_POINT = "recovery-point"
LOG_START_OFFSET = "log-start-offset"
# Checkpoint files are a handful of digits; anything larger is not ours.
_CHECKPOINT_BYTES_MAX = 256
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def segment_name(base_offset: int, suffix: str) -> str:
    """Kafka's 20-digit zero-padded base offset, so a directory listing sorts by offset."""
    return f"{base_offset:020d}{suffix}"


def parse_segment_name(name: str, suffix: str) -> int | None:
    stem = name[: -len(suffix)] if name.endswith(suffix) else ""
    if len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until everything is written; a zero-byte write counts as a full disk."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "short write made no progress")
        view = view[written:]


def pread_exact(fd: int, size: int, position: int) -> bytes:
    """Read ``size`` bytes or fewer at end of file (pread may return short on some systems)."""
    out = os.pread(fd, size, position)
    if len(out) >= size or not out:
        return out
    parts = [out]
    got = len(out)
    while got < size:
        more = os.pread(fd, size - got, position + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Replace ``path`` so that a crash leaves either the old or the new contents."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def read_checkpoint(path: Path, fields: int) -> tuple[int, ...] | None:
    """The integers stored by ``write_checkpoint``; None (with a warning) if absent or invalid."""
    try:
        with path.open("rb") as f:
            raw = f.read(_CHECKPOINT_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    parts = raw.split()
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(raw) > _CHECKPOINT_BYTES_MAX or len(values) != fields + 1 or values[0] != 1:
        log.warning("ignoring invalid checkpoint path=%s", path)
        return None
    if any(v < 0 for v in values):
        log.warning("ignoring checkpoint with negative values path=%s", path)
        return None
    return values[1:]


def write_checkpoint(path: Path, *values: int) -> None:
    """Version 1, then the values, space separated: readable by operators, cheap to parse."""
    write_atomically(path, " ".join(str(v) for v in (1, *values)).encode() + b"\n")


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
