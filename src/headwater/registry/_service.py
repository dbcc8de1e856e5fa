"""The registry's operations: what each REST call does to the state and the ``_schemas`` log.

Reads come from the in-memory state; every change is one record written to the log, and the
caller returns only after the log has been read back into the state. Writes are serialized in
this process and ids come from the highest id in the log, which is safe with one writing
instance at a time (several instances may serve reads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from headwater.registry import _errors as err
from headwater.registry import _state as st
from headwater.registry._compat import DEFAULT_LEVEL, LEVELS, check
from headwater.registry._formats import Parsed, SchemaParseError, parse
from headwater.registry._state import Reference, RegistryState, SchemaVersion

Writer = Callable[[bytes, bytes | None], None]
MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")
VERSION_MAX = 2**31 - 1
_PARSED_CACHE_MAX = 4096


def parse_version(text: str) -> int | None:
    """A version number, or None for "latest" (also -1); 42202 for anything else."""
    if text == "latest":
        return None
    try:
        number = int(text)
    except ValueError:
        raise err.invalid_version(text) from None
    if number == -1:
        return None
    if not 1 <= number <= VERSION_MAX:
        raise err.invalid_version(text)
    return number


class Registry:
    """Subjects, versions, ids, compatibility, configs and modes over one ``_schemas`` log."""

    def __init__(self, state: RegistryState, write: Writer) -> None:
        self.state = state
        self._write = write
        self._write_lock = threading.Lock()
        self._parsed: dict[tuple[str, str, tuple[Reference, ...]], Parsed] = {}

    # -- parsing --------------------------------------------------------------------------
    def _resolve(self, ref: Reference) -> SchemaVersion:
        for v in self.state.versions(ref.subject, deleted=True):
            if v.version == ref.version:
                return v
        raise err.invalid_schema(
            f"reference {ref.name!r} names subject {ref.subject!r} version {ref.version}, "
            "which is not registered; register it first"
        )

    def parse(self, schema_type: str, text: str, refs: tuple[Reference, ...]) -> Parsed:
        key = (schema_type, text, refs)
        found = self._parsed.get(key)
        if found is None:
            try:
                found = parse(schema_type, text, refs, self._resolve)
            except SchemaParseError as exc:
                raise err.invalid_schema(str(exc)) from None
            if len(self._parsed) >= _PARSED_CACHE_MAX:
                self._parsed.clear()
            self._parsed[key] = found
        return found

    def _parse_stored(self, v: SchemaVersion) -> Parsed:
        return self.parse(v.schema_type, v.schema, v.references)

    def parse_request(self, body: Any) -> tuple[Parsed, tuple[Reference, ...]]:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise err.invalid_schema("the request needs a 'schema' string")
        schema_type = str(body.get("schemaType") or "AVRO").upper()
        try:
            refs = st.parse_references(body.get("references"))
        except ValueError as exc:
            raise err.invalid_schema(str(exc)) from None
        return self.parse(schema_type, body["schema"], refs), refs

    # -- subjects and versions ------------------------------------------------------------
    def subjects(self, prefix: str, *, deleted: bool, deleted_only: bool) -> list[str]:
        names = self.state.subject_names(deleted=deleted, deleted_only=deleted_only)
        return [n for n in names if n.startswith(prefix)]

    def versions(self, subject: str, *, deleted: bool) -> list[SchemaVersion]:
        found = self.state.versions(subject, deleted=deleted)
        if not found:
            raise err.subject_not_found(subject)
        return found

    def version(self, subject: str, text: str, *, deleted: bool) -> SchemaVersion:
        number = parse_version(text)
        found = self.versions(subject, deleted=deleted)
        if number is None:
            return found[-1]
        for v in found:
            if v.version == number:
                return v
        raise err.version_not_found(subject, number)

    def referenced_by(self, subject: str, text: str) -> list[int]:
        v = self.version(subject, text, deleted=True)
        return self.state.referenced_by(subject, v.version)

    def lookup(self, subject: str, body: Any, *, deleted: bool) -> SchemaVersion:
        found = self.versions(subject, deleted=deleted)
        parsed, refs = self.parse_request(body)
        content = (parsed.schema_type, parsed.canonical, refs)
        for v in reversed(found):
            if v.content == content:
                return v
        raise err.schema_not_found()

    # -- schemas by id --------------------------------------------------------------------
    def by_id(self, schema_id: int, subject: str | None = None) -> SchemaVersion:
        found = self.state.by_id(schema_id)
        if subject:
            found = [v for v in found if v.subject == subject] or found
        if not found:
            raise err.schema_not_found(schema_id)
        return found[0]

    def id_versions(self, schema_id: int, *, deleted: bool) -> list[SchemaVersion]:
        found = self.state.by_id(schema_id)
        if not found:
            raise err.schema_not_found(schema_id)
        return [v for v in found if deleted or not v.deleted]

    # -- configs and modes ----------------------------------------------------------------
    def level(self, subject: str | None) -> str:
        with self.state.lock:
            config = self.state.configs.get(subject) if subject else None
            config = config or self.state.configs.get(None) or {}
        return str(config.get("compatibilityLevel") or DEFAULT_LEVEL)

    def get_config(self, subject: str | None, *, default_to_global: bool) -> dict[str, Any]:
        with self.state.lock:
            if subject is None:
                return {"compatibilityLevel": DEFAULT_LEVEL, **self.state.configs.get(None, {})}
            config = self.state.configs.get(subject)
        if config is not None:
            return dict(config)
        if default_to_global:
            return self.get_config(None, default_to_global=False)
        raise err.RegistryError(
            err.SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
            f"Subject '{subject}' does not have subject-level compatibility configured",
        )

    def set_config(self, subject: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise err.invalid_compatibility(None)
        raw = body.get("compatibility", body.get("compatibilityLevel"))
        level = str(raw).upper() if isinstance(raw, str) else None
        if level not in LEVELS:
            raise err.invalid_compatibility(raw)
        stored = {k: v for k, v in body.items() if k not in ("compatibility", "compatibilityLevel")}
        stored["compatibilityLevel"] = level
        with self._write_lock:
            self._write(st.config_key(subject), st.encode(stored))
        return {"compatibility": level}

    def delete_config(self, subject: str | None) -> dict[str, Any]:
        previous = self.get_config(subject, default_to_global=False)
        with self._write_lock:
            self._write(st.config_key(subject), None)
        return previous

    def mode(self, subject: str | None) -> str:
        with self.state.lock:
            found = self.state.modes.get(subject) if subject else None
            return found or self.state.modes.get(None) or "READWRITE"

    def get_mode(self, subject: str | None, *, default_to_global: bool) -> str:
        with self.state.lock:
            found = self.state.modes.get(subject)
        if found is not None or subject is None:
            return found or "READWRITE"
        if default_to_global:
            return self.mode(None)
        raise err.RegistryError(
            err.SUBJECT_MODE_NOT_CONFIGURED,
            f"Subject '{subject}' does not have subject-level mode configured",
        )

    def set_mode(self, subject: str | None, body: Any, *, force: bool) -> str:
        raw = body.get("mode") if isinstance(body, dict) else None
        mode = str(raw).upper() if isinstance(raw, str) else ""
        if mode not in MODES:
            raise err.RegistryError(
                err.INVALID_MODE,
                f"Invalid mode {raw!r}. Valid values are READWRITE, READONLY, "
                "READONLY_OVERRIDE and IMPORT",
            )
        if mode == "IMPORT" and not force:
            names = [subject] if subject else self.state.subject_names(deleted=True)
            if any(self.state.versions(n, deleted=True) for n in names):
                raise err.RegistryError(
                    err.OPERATION_NOT_PERMITTED,
                    "Cannot import since found existing subjects; use force=true to import "
                    "on top of them",
                )
        with self._write_lock:
            self._write(st.mode_key(subject), st.encode({"mode": mode}))
        return mode

    def delete_mode(self, subject: str) -> str:
        previous = self.get_mode(subject, default_to_global=False)
        with self._write_lock:
            self._write(st.mode_key(subject), None)
        return previous

    def _writable(self, subject: str) -> str:
        mode = self.mode(subject)
        if mode in ("READONLY", "READONLY_OVERRIDE"):
            raise err.RegistryError(
                err.OPERATION_NOT_PERMITTED,
                f"Subject {subject} is in read-only mode; set its mode to READWRITE to change it",
            )
        return mode

    # -- compatibility --------------------------------------------------------------------
    def _reasons(self, subject: str, new: Parsed, upto: int | None = None) -> list[str]:
        level = self.level(subject)
        live = [v for v in self.state.versions(subject) if upto is None or v.version <= upto]
        previous = [(v.version, self._parse_stored(v)) for v in live]
        return check(level, new, previous)

    def test_compatibility(self, subject: str, version: str | None, body: Any) -> list[str]:
        """Reasons ``body`` is incompatible with ``version`` (None: every version)."""
        new, _refs = self.parse_request(body)
        if version is None:
            if not self.state.versions(subject):
                return []
            level = self.level(subject)
            transitive = (
                level
                if level.endswith("_TRANSITIVE") or level == "NONE"
                else (f"{level}_TRANSITIVE")
            )
            previous = [(v.version, self._parse_stored(v)) for v in self.state.versions(subject)]
            return check(transitive, new, previous)
        target = self.version(subject, version, deleted=False)
        level = self.level(subject)
        if level.endswith("_TRANSITIVE"):
            return self._reasons(subject, new, upto=target.version)
        return check(level, new, [(target.version, self._parse_stored(target))])

    # -- registration ---------------------------------------------------------------------
    def register(self, subject: str, body: Any) -> SchemaVersion:
        """Register (or find) ``body`` under ``subject``; same schema, same id and version."""
        if not subject or any(c in subject for c in "\x00\n"):
            raise err.RegistryError(err.INVALID_SUBJECT, f"Invalid subject {subject!r}")
        mode = self._writable(subject)
        parsed, refs = self.parse_request(body)
        wanted_id = body.get("id") if isinstance(body, dict) else None
        wanted_version = body.get("version") if isinstance(body, dict) else None
        content = (parsed.schema_type, parsed.canonical, refs)
        with self._write_lock:
            for v in reversed(self.state.versions(subject)):
                if v.content == content and wanted_id in (None, v.schema_id):
                    return v
            if mode == "IMPORT":
                schema_id, version = self._import_slot(subject, content, wanted_id, wanted_version)
            else:
                if wanted_id not in (None, -1) or wanted_version not in (None, -1):
                    raise err.RegistryError(
                        err.OPERATION_NOT_PERMITTED,
                        f"Subject {subject} is not in import mode; ids and versions are "
                        "assigned by the registry",
                    )
                reasons = self._reasons(subject, parsed)
                if reasons:
                    raise err.RegistryError(
                        err.INCOMPATIBLE_SCHEMA,
                        "Schema being registered is incompatible with an earlier schema for "
                        f'subject "{subject}", details: [{"; ".join(reasons)}]',
                    )
                existing = self.state.id_of(content)
                schema_id = existing if existing is not None else self.state.max_id + 1
                version = self._next_version(subject)
            record = SchemaVersion(
                subject, version, schema_id, parsed.schema_type, parsed.canonical, refs
            )
            self._write(st.schema_key(subject, version), st.schema_value(record))
        return record

    def _next_version(self, subject: str) -> int:
        known = self.state.versions(subject, deleted=True)
        return known[-1].version + 1 if known else 1

    def _import_slot(
        self, subject: str, content: tuple[str, str, tuple[Reference, ...]], id_: Any, ver: Any
    ) -> tuple[int, int]:
        """The id and version an IMPORT-mode registration asks for, if they are free."""
        if not isinstance(id_, int) or id_ < 1:
            existing = self.state.id_of(content)
            id_ = existing if existing is not None else self.state.max_id + 1
        for other in self.state.by_id(id_):
            if other.content != content:
                raise err.RegistryError(
                    err.ID_DOES_NOT_MATCH,
                    f"Schema id {id_} is already used by a different schema; import it with "
                    "its original id",
                )
        if not isinstance(ver, int) or ver < 1:
            ver = self._next_version(subject)
        if any(v.version == ver for v in self.state.versions(subject, deleted=True)):
            raise err.RegistryError(
                err.OPERATION_NOT_PERMITTED,
                f"Version {ver} of subject {subject} already exists; it cannot be overwritten",
            )
        return id_, ver

    # -- deletes --------------------------------------------------------------------------
    def _refuse_if_referenced(self, subject: str, version: int) -> None:
        users = self.state.referenced_by(subject, version)
        if users:
            raise err.RegistryError(
                err.REFERENCE_EXISTS,
                f"One or more references exist to the schema {{subject={subject}, "
                f"version={version}}}: schema ids {users}; delete those first",
            )

    def delete_subject(self, subject: str, *, permanent: bool) -> list[int]:
        self._writable(subject)
        with self._write_lock:
            everything = self.state.versions(subject, deleted=True)
            if not everything:
                raise err.subject_not_found(subject)
            live = [v for v in everything if not v.deleted]
            if permanent and live:
                raise err.RegistryError(
                    err.SUBJECT_NOT_SOFT_DELETED,
                    f"Subject '{subject}' was not deleted first before being permanently "
                    "deleted; delete it without permanent=true first",
                )
            if not permanent and not live:
                raise err.RegistryError(
                    err.SUBJECT_SOFT_DELETED,
                    f"Subject '{subject}' was soft deleted. Set permanent=true to delete "
                    "permanently",
                )
            targets = everything if permanent else live
            for v in targets:
                self._refuse_if_referenced(subject, v.version)
            for v in targets:
                self._delete(v, permanent=permanent)
            if permanent:
                with self.state.lock:
                    has_config = subject in self.state.configs
                    has_mode = subject in self.state.modes
                if has_config:
                    self._write(st.config_key(subject), None)
                if has_mode:
                    self._write(st.mode_key(subject), None)
        return [v.version for v in targets]

    def delete_version(self, subject: str, text: str, *, permanent: bool) -> int:
        self._writable(subject)
        number = parse_version(text)
        with self._write_lock:
            everything = self.state.versions(subject, deleted=True)
            if not everything:
                raise err.subject_not_found(subject)
            if number is None:
                pool = everything if permanent else [v for v in everything if not v.deleted]
                if not pool:
                    raise err.version_not_found(subject, text)
                target = pool[-1]
            else:
                found = [v for v in everything if v.version == number]
                if not found:
                    raise err.version_not_found(subject, number)
                target = found[0]
            if permanent and not target.deleted:
                raise err.RegistryError(
                    err.VERSION_NOT_SOFT_DELETED,
                    f"Subject '{subject}' Version {target.version} was not deleted first before "
                    "being permanently deleted; delete it without permanent=true first",
                )
            if not permanent and target.deleted:
                raise err.RegistryError(
                    err.VERSION_SOFT_DELETED,
                    f"Subject '{subject}' Version {target.version} was soft deleted. Set "
                    "permanent=true to delete permanently",
                )
            self._refuse_if_referenced(subject, target.version)
            self._delete(target, permanent=permanent)
        return target.version

    def _delete(self, v: SchemaVersion, *, permanent: bool) -> None:
        key = st.schema_key(v.subject, v.version)
        if permanent:
            self._write(key, None)
            return
        soft = SchemaVersion(
            v.subject, v.version, v.schema_id, v.schema_type, v.schema, v.references, True
        )
        self._write(key, st.schema_value(soft))
