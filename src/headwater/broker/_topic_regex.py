"""Topic regexes of KIP-848 subscriptions, matched in linear time.

Kafka compiles ``SubscribedTopicRegex`` with RE2/J and keeps topics whose whole name matches.
Here Python's own parser reads the pattern (so the syntax is ``re``'s, which agrees with RE2 on
the common subset: literals, ``.``, classes with ranges and ``\\d \\w \\s``, groups,
alternation, ``* + ? {n,m}`` greedy or lazy, ``^ $ \\A \\Z \\b \\B``) and a Thompson NFA runs it,
one pass over the name with a set of states. Backtracking is never used, so a hostile pattern
such as ``(a+)+$`` costs the same as any other instead of hanging the broker. What RE2 refuses
is refused here too: backreferences, lookaround, atomic groups and possessive quantifiers,
conditionals. Inline flags and POSIX classes (``[[:alpha:]]``) are not supported.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DFA_STEPS_MAX",
    "PATTERN_CHARS_MAX",
    "PROGRAM_SIZE_MAX",
    "RegexError",
    "TopicRegex",
    "compile_regex",
]

# A subscription regex longer than this is refused; topic names are at most 249 characters.
PATTERN_CHARS_MAX = 1024
# Instructions after expanding counted repeats: bounds both memory and time per topic name.
PROGRAM_SIZE_MAX = 1024
# Cached DFA steps per regex; cleared when full, so memory stays bounded for any pattern.
DFA_STEPS_MAX = 4096

_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

Pred = Callable[[str], bool]

# The parser behind ``re`` itself; typeshed has no stubs for these private modules.
sre_parse: Any = importlib.import_module("re._parser")
sre: Any = importlib.import_module("re._constants")


class RegexError(ValueError):
    """The pattern is not a regex this broker can run; the message says why."""


@dataclass(slots=True)
class _Ins:
    """One NFA instruction: match a char, branch, jump, assert a position, or accept."""

    op: str  # "char" | "split" | "jmp" | "at" | "match"
    pred: Pred | None = None
    x: int = 0
    y: int = 0
    at: str = ""


class TopicRegex:
    """A compiled subscription regex; ``matches`` is a full match, like RE2/J's ``matches()``.

    Like RE2 it builds a DFA lazily: each (state set, char, position kind) step is computed
    once and cached, so matching thousands of topic names costs one lookup per character.
    """

    def __init__(self, pattern: str, program: list[_Ins]) -> None:
        self.pattern = pattern
        self._program = program
        self._steps: dict[tuple[frozenset[int], str, tuple[bool, ...]], frozenset[int]] = {}
        self._starts: dict[tuple[bool, ...], frozenset[int]] = {}
        self._sets: dict[frozenset[int], frozenset[int]] = {}

    def matches(self, name: str) -> bool:
        where = _where(name, 0)
        current = self._starts.get(where)
        if current is None:
            current = self._starts[where] = self._closure({0}, name, 0)
        for pos, char in enumerate(name):
            where = _where(name, pos + 1)
            key = (current, char, where)
            stepped = self._steps.get(key)
            if stepped is None:
                moved = {pc + 1 for pc in current if _accepts(self._program[pc], char)}
                stepped = self._closure(moved, name, pos + 1)
                if len(self._steps) >= DFA_STEPS_MAX:
                    self._steps.clear()
                    self._sets.clear()
                stepped = self._sets.setdefault(stepped, stepped)
                self._steps[key] = stepped
            if not stepped:
                return False
            current = stepped
        return any(self._program[pc].op == "match" for pc in current)

    def _closure(self, pcs: set[int], name: str, pos: int) -> frozenset[int]:
        out: set[int] = set()
        stack = list(pcs)
        seen: set[int] = set()
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            ins = self._program[pc]
            if ins.op == "jmp":
                stack.append(ins.x)
            elif ins.op == "split":
                stack.extend((ins.x, ins.y))
            elif ins.op == "at":
                if _at(ins.at, name, pos):
                    stack.append(pc + 1)
            else:
                out.add(pc)
        return frozenset(out)


def _where(name: str, pos: int) -> tuple[bool, ...]:
    """All that position assertions can see: at either end, and word chars on either side."""
    return (
        pos == 0,
        pos == len(name),
        pos > 0 and name[pos - 1] in _WORD,
        pos < len(name) and name[pos] in _WORD,
    )


def _accepts(ins: _Ins, char: str) -> bool:
    return ins.pred is not None and ins.pred(char)


def _at(kind: str, name: str, pos: int) -> bool:
    if kind in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        return pos == 0
    if kind in ("AT_END", "AT_END_STRING"):
        return pos == len(name)
    before = pos > 0 and name[pos - 1] in _WORD
    after = pos < len(name) and name[pos] in _WORD
    return (before != after) if kind == "AT_BOUNDARY" else (before == after)


def compile_regex(pattern: str) -> TopicRegex:
    """Parse and compile, or raise RegexError with the reason."""
    if len(pattern) > PATTERN_CHARS_MAX:
        raise RegexError(f"longer than {PATTERN_CHARS_MAX} characters")
    if "[[:" in pattern:
        raise RegexError("POSIX character classes are not supported")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = sre_parse.parse(pattern)
    except (re.error, Warning, RecursionError, OverflowError) as exc:
        raise RegexError(str(exc)) from None
    if parsed.state.flags & ~sre.SRE_FLAG_UNICODE:
        raise RegexError("inline flags are not supported")
    program: list[_Ins] = []
    _emit(list(parsed), program)
    program.append(_Ins("match"))
    return TopicRegex(pattern, program)


def _grow(program: list[_Ins], ins: _Ins) -> int:
    if len(program) >= PROGRAM_SIZE_MAX:
        raise RegexError(f"too complex: more than {PROGRAM_SIZE_MAX} states")
    program.append(ins)
    return len(program) - 1


def _emit(items: list[tuple[Any, Any]], program: list[_Ins]) -> None:
    for op, av in items:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            _grow(program, _Ins("char", pred=_predicate(name, av)))
        elif name == "SUBPATTERN":
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise RegexError("inline flags are not supported")
            _emit(list(sub), program)
        elif name == "BRANCH":
            _emit_branch([list(alt) for alt in av[1]], program)
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = av
            _emit_repeat(list(sub), low, None if high == sre.MAXREPEAT else high, program)
        elif name == "AT":
            _grow(program, _Ins("at", at=str(av)))
        else:
            raise RegexError(f"{name.lower()} is not supported (RE2 syntax has no backtracking)")


def _emit_branch(alternatives: list[list[tuple[Any, Any]]], program: list[_Ins]) -> None:
    jumps: list[int] = []
    for index, alternative in enumerate(alternatives):
        if index < len(alternatives) - 1:
            split = _grow(program, _Ins("split"))
            program[split].x = split + 1
            _emit(alternative, program)
            jumps.append(_grow(program, _Ins("jmp")))
            program[split].y = len(program)
        else:
            _emit(alternative, program)
    for jump in jumps:
        program[jump].x = len(program)


def _emit_repeat(
    sub: list[tuple[Any, Any]], low: int, high: int | None, program: list[_Ins]
) -> None:
    for _ in range(low):
        _emit(sub, program)
    if high is None:
        split = _grow(program, _Ins("split"))
        program[split].x = split + 1
        _emit(sub, program)
        jump = _grow(program, _Ins("jmp"))
        program[jump].x = split
        program[split].y = len(program)
        return
    exits: list[int] = []
    for _ in range(high - low):
        split = _grow(program, _Ins("split"))
        program[split].x = split + 1
        exits.append(split)
        _emit(sub, program)
    for split in exits:
        program[split].y = len(program)


_CATEGORIES: dict[str, Pred] = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
}


def _in_range(low: str, high: str) -> Pred:
    return lambda c: low <= c <= high


def _predicate(name: str, av: Any) -> Pred:
    if name == "LITERAL":
        char = chr(av)
        return lambda c: c == char
    if name == "NOT_LITERAL":
        char = chr(av)
        return lambda c: c != char
    if name == "ANY":
        return lambda c: c != "\n"
    negate = False
    tests: list[Pred] = []
    for item_op, item_av in av:
        item = str(item_op)
        if item == "NEGATE":
            negate = True
        elif item in ("LITERAL", "NOT_LITERAL"):
            tests.append(_predicate(item, item_av))
        elif item == "RANGE":
            tests.append(_in_range(chr(item_av[0]), chr(item_av[1])))
        elif item == "CATEGORY" and str(item_av) in _CATEGORIES:
            tests.append(_CATEGORIES[str(item_av)])
        else:
            raise RegexError(f"character class item {item.lower()} is not supported")
    if negate:
        return lambda c: not any(test(c) for test in tests)
    return lambda c: any(test(c) for test in tests)
