"""The registry's state, rebuilt from the records of the ``_schemas`` topic.

Keys and values follow Confluent's layout (JSON, ``keytype`` SCHEMA, CONFIG, MODE,
DELETE_SUBJECT, CLEAR_SUBJECT, NOOP), so an operator reading the topic recognises it. A
tombstone for a SCHEMA key is a permanent delete. Records that cannot be parsed are logged and
skipped: one bad record must not stop every instance from starting.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SCHEMAS_TOPIC = "_schemas"


@dataclass(frozen=True, slots=True)
class Reference:
    """A named dependency on another subject's version (an Avro type, a JSON $ref, an import)."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one subject."""

    subject: str
    version: int
    schema_id: int
    schema_type: str
    schema: str
    references: tuple[Reference, ...]
    deleted: bool = False

    @property
    def content(self) -> tuple[str, str, tuple[Reference, ...]]:
        """What makes two registrations the same schema (and so the same id)."""
        return (self.schema_type, self.schema, self.references)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def schema_key(subject: str, version: int) -> bytes:
    return _dumps({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1})


def schema_value(v: SchemaVersion) -> bytes:
    value: dict[str, Any] = {"subject": v.subject, "version": v.version, "id": v.schema_id}
    if v.schema_type != "AVRO":
        value["schemaType"] = v.schema_type
    if v.references:
        value["references"] = [r.to_json() for r in v.references]
    value["schema"] = v.schema
    value["deleted"] = v.deleted
    return _dumps(value)


def config_key(subject: str | None) -> bytes:
    return _dumps({"keytype": "CONFIG", "subject": subject, "magic": 0})


def mode_key(subject: str | None) -> bytes:
    return _dumps({"keytype": "MODE", "subject": subject, "magic": 0})


def encode(obj: dict[str, Any]) -> bytes:
    return _dumps(obj)


def parse_references(raw: Any) -> tuple[Reference, ...]:
    """References from a request or a stored value; raises ValueError when malformed."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError("references must be a list")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("each reference must be an object with name, subject and version")
        try:
            out.append(Reference(str(item["name"]), str(item["subject"]), int(item["version"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                "each reference needs a name, a subject and an integer version"
            ) from None
    return tuple(out)


class RegistryState:
    """Subjects, versions, ids, configs and modes; applied in log order by one thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.subjects: dict[str, dict[int, SchemaVersion]] = {}
        self.configs: dict[str | None, dict[str, Any]] = {}
        self.modes: dict[str | None, str] = {}
        self.max_id = 0
        self._by_id: dict[int, dict[tuple[str, int], SchemaVersion]] = {}
        self._ids: dict[tuple[str, str, tuple[Reference, ...]], int] = {}

    # -- applying records -----------------------------------------------------------------
    def apply(self, key: bytes, value: bytes | None, offset: int) -> None:
        try:
            k = json.loads(key)
            v = json.loads(value) if value is not None else None
            self._apply(k, v)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "skipping unreadable %s record offset=%d error=%s", SCHEMAS_TOPIC, offset, exc
            )

    def _apply(self, k: dict[str, Any], v: dict[str, Any] | None) -> None:
        keytype = k.get("keytype")
        with self.lock:
            if keytype == "SCHEMA":
                self._apply_schema(str(k["subject"]), int(k["version"]), v)
            elif keytype == "CONFIG":
                self._set(self.configs, k.get("subject"), v)
            elif keytype == "MODE":
                self._set(self.modes, k.get("subject"), None if v is None else str(v["mode"]))
            elif keytype == "DELETE_SUBJECT" and v is not None:
                self._soft_delete_upto(str(v["subject"]), int(v["version"]))
            elif keytype == "CLEAR_SUBJECT" and v is not None:
                for version in [x for x in self.subjects.get(str(v["subject"]), {}).values()]:
                    if version.deleted:
                        self._remove(version)

    @staticmethod
    def _set(table: dict[str | None, Any], subject: Any, value: Any) -> None:
        name = None if subject is None else str(subject)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value

    def _apply_schema(self, subject: str, version: int, v: dict[str, Any] | None) -> None:
        old = self.subjects.get(subject, {}).get(version)
        if old is not None:
            self._remove(old)
        if v is None:
            return
        record = SchemaVersion(
            subject=subject,
            version=version,
            schema_id=int(v["id"]),
            schema_type=str(v.get("schemaType") or "AVRO"),
            schema=str(v["schema"]),
            references=parse_references(v.get("references")),
            deleted=bool(v.get("deleted", False)),
        )
        self.subjects.setdefault(subject, {})[version] = record
        self._by_id.setdefault(record.schema_id, {})[(subject, version)] = record
        self._ids.setdefault(record.content, record.schema_id)
        self.max_id = max(self.max_id, record.schema_id)

    def _remove(self, record: SchemaVersion) -> None:
        versions = self.subjects.get(record.subject, {})
        versions.pop(record.version, None)
        if not versions:
            self.subjects.pop(record.subject, None)
        users = self._by_id.get(record.schema_id, {})
        users.pop((record.subject, record.version), None)
        if not users:
            self._by_id.pop(record.schema_id, None)
            if self._ids.get(record.content) == record.schema_id:
                del self._ids[record.content]

    def _soft_delete_upto(self, subject: str, upto: int) -> None:
        for record in list(self.subjects.get(subject, {}).values()):
            if record.version <= upto and not record.deleted:
                self._apply_schema(
                    subject,
                    record.version,
                    {
                        "id": record.schema_id,
                        "schemaType": record.schema_type,
                        "schema": record.schema,
                        "references": [r.to_json() for r in record.references],
                        "deleted": True,
                    },
                )

    # -- queries --------------------------------------------------------------------------
    def versions(self, subject: str, *, deleted: bool = False) -> list[SchemaVersion]:
        """The subject's versions, oldest first; soft-deleted ones only when asked."""
        with self.lock:
            found = self.subjects.get(subject, {})
            return [found[n] for n in sorted(found) if deleted or not found[n].deleted]

    def subject_names(self, *, deleted: bool = False, deleted_only: bool = False) -> list[str]:
        with self.lock:
            out = []
            for name, versions in self.subjects.items():
                live = any(not v.deleted for v in versions.values())
                if (deleted_only and not live) or (not deleted_only and (live or deleted)):
                    out.append(name)
            return sorted(out)

    def by_id(self, schema_id: int) -> list[SchemaVersion]:
        """Every subject version that carries ``schema_id``."""
        with self.lock:
            found = self._by_id.get(schema_id, {})
            return [found[k] for k in sorted(found)]

    def id_of(self, content: tuple[str, str, tuple[Reference, ...]]) -> int | None:
        with self.lock:
            return self._ids.get(content)

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of live schemas whose references point at ``subject`` ``version``."""
        with self.lock:
            out = set()
            for versions in self.subjects.values():
                for record in versions.values():
                    if record.deleted:
                        continue
                    if any(
                        r.subject == subject and r.version == version for r in record.references
                    ):
                        out.add(record.schema_id)
            return sorted(out)
