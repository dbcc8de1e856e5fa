"""JSON Schema compatibility: does the reader schema accept every document the writer accepts?

Confluent's semantics: BACKWARD asks whether the new schema accepts everything the old one
did, so this check is "reader ⊇ writer" over the sets of valid documents. It reasons about the
keywords that matter in practice (type, properties with open or closed content models,
required, enum/const, numeric and length bounds, items, combinators) and says which rule
failed, using Confluent's difference names.
"""

from __future__ import annotations

from typing import Any

from headwater.registry._formats import Parsed

_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
# Lower bounds that must not rise and upper bounds that must not fall.
_LOWER = {
    "minimum": "MINIMUM_INCREASED",
    "exclusiveMinimum": "EXCLUSIVE_MINIMUM_INCREASED",
    "minLength": "MIN_LENGTH_INCREASED",
    "minItems": "MIN_ITEMS_INCREASED",
    "minProperties": "MIN_PROPERTIES_INCREASED",
}
_UPPER = {
    "maximum": "MAXIMUM_DECREASED",
    "exclusiveMaximum": "EXCLUSIVE_MAXIMUM_DECREASED",
    "maxLength": "MAX_LENGTH_DECREASED",
    "maxItems": "MAX_ITEMS_DECREASED",
    "maxProperties": "MAX_PROPERTIES_DECREASED",
}


def json_incompatibilities(reader: Parsed, writer: Parsed) -> list[str]:
    """Why ``reader`` rejects some document ``writer`` accepts (empty when it does not)."""
    return _Check(reader, writer).run(reader.tree, writer.tree, "#")


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        if "properties" in schema or "additionalProperties" in schema:
            return None  # applies to objects, accepts other types unchanged
        return None
    return {t} if isinstance(t, str) else set(t)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Check:
    def __init__(self, reader: Parsed, writer: Parsed) -> None:
        self.roots = {"r": reader.tree, "w": writer.tree}
        self.named = {"r": reader.named, "w": writer.named}
        self.seen: set[tuple[int, int]] = set()

    def _deref(self, schema: Any, side: str) -> Any:
        hops = 0
        while isinstance(schema, dict) and "$ref" in schema and hops < 32:
            schema = self._lookup(str(schema["$ref"]), side)
            hops += 1
        return schema

    def _lookup(self, ref: str, side: str) -> Any:
        doc, _, pointer = ref.partition("#")
        target: Any = self.roots[side] if not doc else self.named[side].get(doc, True)
        for part in [p for p in pointer.split("/") if p]:
            if not isinstance(target, dict):
                return True
            target = target.get(part.replace("~1", "/").replace("~0", "~"), True)
        return target

    def run(self, r: Any, w: Any, path: str) -> list[str]:
        r, w = self._deref(r, "r"), self._deref(w, "w")
        if r is True or r == {} or w is False:
            return []
        if r is False:
            return [f"SCHEMA_NARROWED at '{path}': the reader accepts nothing"]
        if w is True or w == {}:
            return [
                f"SCHEMA_NARROWED at '{path}': the writer accepted anything, the reader does not"
            ]
        key = (id(r), id(w))
        if key in self.seen:
            return []
        self.seen.add(key)
        try:
            return self._compare(r, w, path)
        finally:
            self.seen.discard(key)

    def _compare(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        for combinator in ("oneOf", "anyOf"):
            if combinator in w:
                return self._writer_choices(r, w[combinator], path, combinator)
            if combinator in r:
                branches = r[combinator]
                if any(not self.run(b, w, f"{path}/{combinator}") for b in branches):
                    return []
                return [
                    f"COMBINED_TYPE_SUBSCHEMAS_CHANGED at '{path}': no {combinator} branch "
                    "accepts the writer schema"
                ]
        problems = self._type(r, w, path)
        if problems:
            return problems
        problems += self._enum(r, w, path)
        problems += self._bounds(r, w, path)
        if r.get("pattern") is not None and r.get("pattern") != w.get("pattern"):
            problems.append(
                f"PATTERN_CHANGED at '{path}': pattern {r.get('pattern')!r} added or changed"
            )
        if r.get("multipleOf") is not None and r.get("multipleOf") != w.get("multipleOf"):
            problems.append(f"MULTIPLE_OF_CHANGED at '{path}': multipleOf added or changed")
        if r.get("uniqueItems") and not w.get("uniqueItems"):
            problems.append(f"UNIQUE_ITEMS_ADDED at '{path}': items must now be unique")
        for part in r.get("allOf", []):
            problems += self.run(part, w, f"{path}/allOf")
        problems += self._object(r, w, path)
        problems += self._array(r, w, path)
        return problems

    def _writer_choices(self, r: Any, choices: list[Any], path: str, name: str) -> list[str]:
        problems = []
        for i, branch in enumerate(choices):
            found = self.run(r, branch, f"{path}/{name}/{i}")
            if found:
                problems.append(
                    f"COMBINED_TYPE_SUBSCHEMAS_CHANGED at '{path}/{name}/{i}': "
                    "writer branch not accepted"
                )
                problems += found
        return problems

    def _type(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        rt, wt = _types(r), _types(w)
        if rt is None:
            return []
        if wt is None:
            return [f"TYPE_NARROWED at '{path}': the reader now requires type {sorted(rt)}"]
        if "number" in rt:
            rt = rt | {"integer"}
        missing = wt - rt
        if missing:
            kind = "TYPE_NARROWED" if rt & wt else "TYPE_CHANGED"
            return [f"{kind} at '{path}': the reader no longer accepts {sorted(missing)}"]
        return []

    def _enum(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        allowed = r["enum"] if "enum" in r else ([r["const"]] if "const" in r else None)
        if allowed is None:
            return []
        given = w["enum"] if "enum" in w else ([w["const"]] if "const" in w else None)
        if given is None:
            return [f"ENUM_ARRAY_NARROWED at '{path}': the reader added an enum the writer lacked"]
        lost = [v for v in given if v not in allowed]
        if lost:
            return [f"ENUM_ARRAY_NARROWED at '{path}': the reader no longer accepts {lost}"]
        return []

    def _bounds(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        problems = []
        for key, name in (*_LOWER.items(), *_UPPER.items()):
            new: Any = r.get(key)
            old: Any = w.get(key)
            if not _number(new):
                continue
            if not _number(old) or (old < new if key in _LOWER else old > new):
                problems.append(f"{name} at '{path}': {key} is now {new}, was {old}")
        return problems

    def _object(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        problems = []
        rprops: dict[str, Any] = r.get("properties", {})
        wprops: dict[str, Any] = w.get("properties", {})
        r_extra = r.get("additionalProperties", True)
        w_extra = w.get("additionalProperties", True)
        for name, wschema in wprops.items():
            at = f"{path}/properties/{name}"
            if name in rprops:
                problems += self.run(rprops[name], wschema, at)
            elif r_extra is False:
                problems.append(
                    f"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at '{at}': the reader "
                    f"rejects property {name!r}"
                )
            elif r_extra is not True:
                problems += self.run(r_extra, wschema, at)
        for name, rschema in rprops.items():
            if name in wprops:
                continue
            at = f"{path}/properties/{name}"
            if w_extra is False:
                continue  # the writer never produced it
            found = self.run(rschema, w_extra, at)
            if found:
                problems.append(
                    f"PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at '{at}': the writer allowed "
                    f"any {name!r}, the reader constrains it"
                )
        if r_extra is False and w_extra is not False:
            problems.append(
                f"ADDITIONAL_PROPERTIES_REMOVED at '{path}': the reader closed the content model"
            )
        elif isinstance(r_extra, dict) and w_extra is not False and "properties" not in r:
            problems += self.run(r_extra, w_extra, f"{path}/additionalProperties")
        required_before = set(w.get("required", []))
        for name in r.get("required", []):
            if name in required_before:
                continue
            if isinstance(rprops.get(name), dict) and "default" in rprops[name]:
                continue
            problems.append(
                f"REQUIRED_PROPERTY_ADDED at '{path}/required': {name!r} is now required"
            )
        return problems

    def _array(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        if "items" not in r:
            return []
        ritems, witems = r["items"], w.get("items", True)
        if isinstance(ritems, list):
            if not isinstance(witems, list):
                return [f"ITEMS_CHANGED at '{path}/items': the reader expects a tuple"]
            problems = []
            for i, (ri, wi) in enumerate(zip(ritems, witems, strict=False)):
                problems += self.run(ri, wi, f"{path}/items/{i}")
            return problems
        if isinstance(witems, list):
            problems = []
            for i, wi in enumerate(witems):
                problems += self.run(ritems, wi, f"{path}/items/{i}")
            return problems
        return self.run(ritems, witems, f"{path}/items")
