"""The broker's ACL bindings, kept durably in ``<data-dir>/__meta/acls.json``.

Every change writes the whole set with a crash-safe rename before it applies in memory, so a
crash leaves either the old or the new set and an answered CreateAcls or DeleteAcls is on
disk. ACL changes are rare and the set is small, which is why one JSON file is enough
(Kafka keeps them as records in its metadata log). One owner mutates the store: the broker's
event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headwater.security._acl import (
    INVALID_REQUEST,
    NONE,
    AclBinding,
    AclBindingFilter,
    AclIndex,
    Authorizer,
    binding_problem,
    sort_key,
)
from headwater.storage._durable_file import read_json, write_json

FORMAT_VERSION = 1
# A bound on the set: each check walks the bindings on one resource, but describe, delete
# and every save walk them all.
BINDINGS_MAX = 100_000
UNKNOWN_SERVER_ERROR = -1


def acl_path(data_dir: Path) -> Path:
    return data_dir / "__meta" / "acls.json"


class CorruptAclFileError(Exception):
    """acls.json holds something that is not a set of valid ACL bindings."""


class AclStore:
    """The bindings, their index, and the file that makes them survive a restart."""

    def __init__(self, path: Path, *, bindings_max: int = BINDINGS_MAX) -> None:
        self.path = path
        self.bindings_max = bindings_max
        self.index = AclIndex(self._load())

    def _load(self) -> list[AclBinding]:
        try:
            raw = read_json(self.path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptAclFileError(f"{self.path} is not valid JSON: {exc}") from None
        if raw is None:
            return []
        if not isinstance(raw, dict) or not isinstance(raw.get("acls"), list):
            raise CorruptAclFileError(f"{self.path} must hold an object with an 'acls' list")
        if raw.get("version") != FORMAT_VERSION:
            raise CorruptAclFileError(
                f"{self.path} has format version {raw.get('version')!r}; this broker reads "
                f"version {FORMAT_VERSION}"
            )
        out = []
        for i, entry in enumerate(raw["acls"]):
            try:
                binding = AclBinding.from_json(entry)
            except ValueError as exc:
                raise CorruptAclFileError(f"{self.path}: ACL #{i} is unreadable: {exc}") from None
            problem = binding_problem(binding)
            if problem is not None:
                raise CorruptAclFileError(f"{self.path}: ACL #{i} is invalid: {problem}")
            out.append(binding)
        return out

    def _save(self, bindings: list[AclBinding]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(bindings, key=sort_key)
        value: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "acls": [b.to_json() for b in ordered],
        }
        write_json(self.path, value)

    def __len__(self) -> int:
        return len(self.index)

    def create(self, bindings: Sequence[AclBinding]) -> list[tuple[int, str | None]]:
        """Add the valid bindings; (error code, message) per binding, in request order.

        A binding that exists already succeeds without a second copy, as in Kafka. If the
        file cannot be written nothing changes and the valid bindings report
        UNKNOWN_SERVER_ERROR.
        """
        results: list[tuple[int, str | None]] = []
        new: dict[AclBinding, None] = {}
        for binding in bindings:
            problem = binding_problem(binding)
            if problem is not None:
                results.append((INVALID_REQUEST, problem))
            elif binding not in self.index and binding not in new:
                if len(self.index) + len(new) >= self.bindings_max:
                    results.append(
                        (INVALID_REQUEST, f"the broker holds at most {self.bindings_max} ACLs")
                    )
                    continue
                new[binding] = None
                results.append((NONE, None))
            else:
                results.append((NONE, None))
        if not new:
            return results
        try:
            self._save([*self.index, *new])
        except OSError as exc:
            message = f"cannot write {self.path}: {exc}"
            return [(UNKNOWN_SERVER_ERROR, message) if c == NONE else (c, m) for c, m in results]
        for binding in new:
            self.index.add(binding)
        return results

    def delete(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        """Remove every binding any filter matches; what each filter matched, in order.

        All filters see the set as it was before the call (a binding two filters match is
        listed under both), and the removal is one write, as Kafka's controller does it.
        Raises OSError, with nothing changed, when the file cannot be written.
        """
        matched = [self.index.matching(f) for f in filters]
        doomed = {b for found in matched for b in found}
        if doomed:
            self._save([b for b in self.index if b not in doomed])
            for binding in doomed:
                self.index.remove(binding)
        return matched

    def describe(self, acl_filter: AclBindingFilter) -> list[AclBinding]:
        return self.index.matching(acl_filter)

    def authorizer(
        self,
        super_users: frozenset[str] = frozenset(),
        allow_everyone_if_no_acl_found: bool = False,
    ) -> Authorizer:
        """An authorizer over the live bindings: later changes apply to its next check."""
        return Authorizer(
            self.index,
            super_users=super_users,
            allow_everyone_if_no_acl_found=allow_everyone_if_no_acl_found,
        )
