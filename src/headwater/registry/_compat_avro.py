"""Avro schema resolution: can data written with one schema be read with another?

The rules are the Avro specification's "Schema Resolution": matching names (or aliases),
reader fields missing from the writer need defaults, numeric promotions
int→long→float→double, string↔bytes, enum symbols the reader lacks need a reader default, and
unions resolve branch by branch. Messages name the rule (Confluent's error types) and the path.
"""

from __future__ import annotations

from typing import Any

from headwater.registry._formats import Parsed

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def avro_incompatibilities(reader: Parsed, writer: Parsed) -> list[str]:
    """Why ``reader`` cannot read everything written with ``writer`` (empty when it can)."""
    return _Check(reader.named, writer.named).run(reader.tree, writer.tree, "")


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Check:
    def __init__(self, reader_named: dict[str, Any], writer_named: dict[str, Any]) -> None:
        self.reader_named = reader_named
        self.writer_named = writer_named
        self.assumed: set[tuple[str, str]] = set()

    def _deref(self, schema: Any, named: dict[str, Any]) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return named.get(schema, schema)
        if isinstance(schema, dict) and schema.get("type") in PRIMITIVES:
            return schema["type"]
        return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, dict):
            return str(schema.get("type"))
        return str(schema)

    def run(self, r: Any, w: Any, path: str) -> list[str]:
        r = self._deref(r, self.reader_named)
        w = self._deref(w, self.writer_named)
        rk, wk = self._kind(r), self._kind(w)
        if wk == "union":
            problems = []
            for i, branch in enumerate(w):
                found = self.run(r, branch, f"{path}/{i}")
                if found:
                    problems.append(
                        f"TYPE_MISMATCH at '{path or '/'}': writer union branch "
                        f"{self._kind(self._deref(branch, self.writer_named))!r} cannot be read"
                    )
                    problems.extend(found)
            return problems
        if rk == "union":
            if any(not self.run(branch, w, path) for branch in r):
                return []
            return [
                f"MISSING_UNION_BRANCH at '{path or '/'}': reader union has no branch for {wk!r}"
            ]
        if rk != wk:
            if wk in PROMOTIONS and rk in PROMOTIONS[wk]:
                return []
            return [f"TYPE_MISMATCH at '{path or '/'}': reader type {rk!r} cannot read {wk!r}"]
        if rk == "record":
            return self._record(r, w, path)
        if rk == "enum":
            return self._enum(r, w, path)
        if rk == "fixed":
            return self._fixed(r, w, path)
        if rk == "array":
            return self.run(r["items"], w["items"], f"{path}/items")
        if rk == "map":
            return self.run(r["values"], w["values"], f"{path}/values")
        return []

    def _names_match(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        rname, wname = str(r["name"]), str(w["name"])
        aliases = {str(a) for a in r.get("aliases", [])} | {
            _short(str(a)) for a in r.get("aliases", [])
        }
        if _short(rname) == _short(wname) or wname in aliases or _short(wname) in aliases:
            return []
        return [
            f"NAME_MISMATCH at '{path or '/'}': reader name {rname!r} does not match "
            f"writer name {wname!r}"
        ]

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        problems = self._names_match(r, w, path)
        if problems:
            return problems
        pair = (str(r["name"]), str(w["name"]))
        if pair in self.assumed:
            return []  # a recursive type: already being checked further up
        self.assumed.add(pair)
        writer_fields = {str(f["name"]): f for f in w.get("fields", [])}
        for i, field in enumerate(r.get("fields", [])):
            names = [str(field["name"]), *(str(a) for a in field.get("aliases", []))]
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            if match is not None:
                problems += self.run(field["type"], match["type"], f"{path}/fields/{i}/type")
            elif "default" not in field:
                problems.append(
                    f"READER_FIELD_MISSING_DEFAULT_VALUE at '{path}/fields/{i}': field "
                    f"{field['name']!r} is missing in the writer schema and has no default"
                )
        self.assumed.discard(pair)
        return problems

    def _enum(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        problems = self._names_match(r, w, path)
        missing = [s for s in w.get("symbols", []) if s not in set(r.get("symbols", []))]
        if missing and r.get("default") is None:
            problems.append(
                f"MISSING_ENUM_SYMBOLS at '{path}/symbols': reader enum {r['name']!r} lacks "
                f"{', '.join(map(str, missing))} and has no default symbol"
            )
        return problems

    def _fixed(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        problems = self._names_match(r, w, path)
        if r.get("size") != w.get("size"):
            problems.append(
                f"FIXED_SIZE_MISMATCH at '{path}/size': reader size {r.get('size')} "
                f"differs from writer size {w.get('size')}"
            )
        return problems
