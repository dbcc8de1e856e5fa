"""Audit records: CloudEvents 1.0 (JSON format) built from plain values, and their writer.

The builders are pure: they take what happened and the time, and return a dict, so the broker
and the HTTP services describe events the same way and tests need no sockets. Nothing secret
may reach a record: builders take names, counts and codes, never passwords, salts, keys,
tokens, SASL bytes or record contents, and every config value goes through ``config_value``,
which hides values whose name says they are secret.

``AuditLog`` appends one JSON line per event to ``audit.log`` and rotates by size, as
``logging.handlers.RotatingFileHandler`` does (``audit.log.1`` is the newest rotated file),
keeping ``files_max`` files in all, so the log can never take more than about
``bytes_max * files_max`` bytes. Each record is one ``write(2)`` on an ``O_APPEND`` descriptor:
in the OS's hands when ``write`` returns (not fsynced), never interleaved with another record,
and cheap enough (a few microseconds) to run on the event loop. Files are mode 0600.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from headwater.protocol import ErrorCode

log = logging.getLogger(__name__)

SPEC_VERSION = "1.0"
TYPE_PREFIX = "io.headwater."
AUTHENTICATION = TYPE_PREFIX + "authentication"
AUTHORIZATION_DENIED = TYPE_PREFIX + "authorization.denied"
TRANSACTION_TIMEOUT_ABORT = TYPE_PREFIX + "transaction.timeout-abort"
ADMIN_PREFIX = TYPE_PREFIX + "admin."
HIDDEN = "[hidden]"
# A config whose name holds one of these carries a secret: its value is never recorded.
SENSITIVE_MARKERS = ("password", "secret", "sasl.jaas", "ssl.key")
AUDIT_DIR = "audit"
AUDIT_FILE = "audit.log"
BYTES_MAX_DEFAULT = 100 * 1024 * 1024
FILES_MAX_DEFAULT = 10
# Free text (a refusal's reason) is cut here, so a client cannot make records arbitrarily big.
TEXT_CHARS_MAX = 500

TopicSink = Callable[[bytes], None]


def audit_path(data_dir: Path) -> Path:
    """Where a broker with this data directory writes its audit log by default."""
    return data_dir / AUDIT_DIR / AUDIT_FILE


def broker_source(node_id: int) -> str:
    return f"headwater://broker/{node_id}"


def is_sensitive(config_name: str) -> bool:
    lowered = config_name.lower()
    return any(marker in lowered for marker in SENSITIVE_MARKERS)


def config_value(config_name: str, value: str | None) -> str | None:
    """The value as a record may show it: ``[hidden]`` for a secret (even a null one)."""
    if is_sensitive(config_name):
        return HIDDEN
    return value


def error_name(error_code: int) -> str:
    try:
        return ErrorCode(error_code).name.upper()
    except ValueError:
        return "UNKNOWN"


def outcome(error_code: int) -> dict[str, Any]:
    """``result`` of a record: success or failure, with the Kafka error code and its name."""
    return {
        "status": "success" if error_code == 0 else "failure",
        "error_code": error_code,
        "error_name": error_name(error_code),
    }


def text(value: str | None) -> str | None:
    if value is None or len(value) <= TEXT_CHARS_MAX:
        return value
    return value[:TEXT_CHARS_MAX] + "…"


def rfc3339(time_s: float) -> str:
    """UTC with milliseconds and a ``Z``: ``2025-01-31T09:15:02.345Z``."""
    moment = datetime.datetime.fromtimestamp(time_s, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def subject(resource_type: str, name: str | None) -> str:
    """The CloudEvents subject of a resource: ``topic/orders``, ``cluster/kafka-cluster``."""
    return f"{resource_type.lower().replace('_', '-')}/{name or ''}"


def cloud_event(
    type_: str,
    source: str,
    subject_: str,
    data: Mapping[str, Any],
    *,
    time_s: float,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One CloudEvent (spec 1.0, JSON format); ``event_id`` is a new uuid4 unless given."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id if event_id is not None else str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": rfc3339(time_s),
        "datacontenttype": "application/json",
        "subject": subject_,
        "data": dict(data),
    }


def request_data(
    *,
    principal: str | None,
    client_address: str | None,
    client_id: str | None,
    listener: str | None,
    api: str,
    operation: str,
    resource_type: str,
    resource_name: str | None,
    error_code: int,
    change: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``data`` of a record: who, from where, what on which resource, and how it went."""
    data: dict[str, Any] = {
        "principal": principal,
        "client_address": client_address,
        "client_id": client_id,
        "listener": listener,
        "api": api,
        "operation": operation,
        "resource_type": resource_type,
        "resource_name": resource_name,
        "result": outcome(error_code),
    }
    if change is not None:
        data["change"] = dict(change)
    data.update(extra)
    return data


def _default(value: Any) -> Any:
    """JSON for what orjson does not know (enums are handled; bytes never belong here)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError("bytes in an audit record: builders must never pass raw bytes")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode(event: Mapping[str, Any]) -> bytes:
    """One record as a JSON line (with its newline)."""
    return orjson.dumps(event, default=_default, option=orjson.OPT_APPEND_NEWLINE)


class AuditLog:
    """Appends audit records to a size-rotated file, and optionally hands them to a topic.

    ``topic_sink`` gets each encoded record (one JSON line) after the file has it, e.g. to
    produce it to an internal ``__audit`` topic; it must not block, and a failing sink is
    logged and never stops the file. A file that cannot be written (disk full) is logged and
    counted in ``dropped``; the broker keeps serving.
    """

    def __init__(
        self,
        path: Path,
        *,
        source: str = "headwater://broker",
        bytes_max: int = BYTES_MAX_DEFAULT,
        files_max: int = FILES_MAX_DEFAULT,
        topic_sink: TopicSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bytes_max < 1024:
            raise ValueError(f"audit_log_bytes_max={bytes_max} must be at least 1024")
        if files_max < 1:
            raise ValueError(f"audit_log_files_max={files_max} must be at least 1")
        self.path = path
        self.source = source
        self.bytes_max = bytes_max
        self.files_max = files_max
        self.topic_sink = topic_sink
        self._clock = clock
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0
        self._closed = False
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older run may have been made wider
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def record(self, type_: str, subject_: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Build an event of this log's source at the current time, write it, return it."""
        event = cloud_event(type_, self.source, subject_, data, time_s=self._clock())
        self.write(event)
        return event

    def write(self, event: Mapping[str, Any]) -> None:
        line = encode(event)
        with self._lock:
            if self._closed:
                self.dropped += 1
                return
            try:
                if self._fd < 0:  # a rotation that failed half-way: try a fresh file
                    self._open()
                if self._size and self._size + len(line) > self.bytes_max:
                    self._rotate()
                os.write(self._fd, line)
                self._size += len(line)
                self.written += 1
            except OSError as exc:
                self.dropped += 1
                log.error("audit record not written path=%s error=%s", self.path, exc)
                return
        if self.topic_sink is not None:
            try:
                self.topic_sink(line)
            except Exception:
                log.exception("audit topic sink failed")

    def _rotate(self) -> None:
        """audit.log → audit.log.1 → … → audit.log.<files_max-1>; the oldest goes."""
        os.close(self._fd)
        self._fd = -1
        keep = self.files_max - 1
        if keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            oldest = self._rotated(keep)
            oldest.unlink(missing_ok=True)
            for i in range(keep - 1, 0, -1):
                older = self._rotated(i)
                if older.exists():
                    older.rename(self._rotated(i + 1))
            self.path.rename(self._rotated(1))
        self._open()

    def _rotated(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


__all__ = [
    "ADMIN_PREFIX",
    "AUTHENTICATION",
    "AUTHORIZATION_DENIED",
    "HIDDEN",
    "TRANSACTION_TIMEOUT_ABORT",
    "AuditLog",
    "audit_path",
    "broker_source",
    "cloud_event",
    "config_value",
    "encode",
    "is_sensitive",
    "outcome",
    "request_data",
    "subject",
]
