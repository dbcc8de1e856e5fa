"""Aggregations that window and table operators fold records into.

An aggregation owns three steps: ``initial()`` builds an empty accumulator, ``add(acc, value)``
folds one record value in and returns the new accumulator, ``result(acc)`` turns it into the
value emitted downstream. Accumulators are JSON-like because they are written to state stores
and travel through changelog topics. ``merge(a, b)`` combines two accumulators; session windows
need it when a record bridges two sessions.

``value_fn`` picks the number out of a record value (``lambda v: v["amount"]``); by default the
record value itself is the number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ValueFn = Callable[[Any], Any]


class Aggregation:
    """The fold a windowed operator applies; subclasses override all four steps."""

    #: Short name used in docs and errors.
    name = "aggregation"

    def initial(self) -> Any:
        raise NotImplementedError

    def add(self, acc: Any, value: Any) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def result(self, acc: Any) -> Any:
        return acc

    @property
    def mergeable(self) -> bool:
        """Whether :meth:`merge` is implemented (session windows require it)."""
        return type(self).merge is not Aggregation.merge


class Count(Aggregation):
    """Number of records; the accumulator is the count itself."""

    name = "count"

    def initial(self) -> int:
        return 0

    def add(self, acc: int, value: Any) -> int:
        return acc + 1

    def merge(self, a: int, b: int) -> int:
        return a + b


class Sum(Aggregation):
    """Sum of ``value_fn(value)``."""

    name = "sum"

    def __init__(self, value_fn: ValueFn | None = None) -> None:
        self.value_fn = value_fn
        # Binding the fast path once keeps the per-record call to a single method.
        if value_fn is None:
            self.add = self._add_plain  # type: ignore[method-assign]

    def initial(self) -> Any:
        return 0

    def _add_plain(self, acc: Any, value: Any) -> Any:
        return acc + value

    def add(self, acc: Any, value: Any) -> Any:
        assert self.value_fn is not None
        return acc + self.value_fn(value)

    def merge(self, a: Any, b: Any) -> Any:
        return a + b


class Min(Aggregation):
    """Smallest ``value_fn(value)``; ``None`` until the first record."""

    name = "min"

    def __init__(self, value_fn: ValueFn | None = None) -> None:
        self.value_fn = value_fn

    def initial(self) -> Any:
        return None

    def add(self, acc: Any, value: Any) -> Any:
        v = value if self.value_fn is None else self.value_fn(value)
        return v if acc is None or v < acc else acc

    def merge(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return b if b < a else a


class Max(Aggregation):
    """Largest ``value_fn(value)``; ``None`` until the first record."""

    name = "max"

    def __init__(self, value_fn: ValueFn | None = None) -> None:
        self.value_fn = value_fn

    def initial(self) -> Any:
        return None

    def add(self, acc: Any, value: Any) -> Any:
        v = value if self.value_fn is None else self.value_fn(value)
        return v if acc is None or v > acc else acc

    def merge(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        return b if b > a else a


class Mean(Aggregation):
    """Arithmetic mean of ``value_fn(value)``; the accumulator is ``[sum, count]``."""

    name = "mean"

    def __init__(self, value_fn: ValueFn | None = None) -> None:
        self.value_fn = value_fn

    def initial(self) -> list[Any]:
        return [0, 0]

    def add(self, acc: list[Any], value: Any) -> list[Any]:
        v = value if self.value_fn is None else self.value_fn(value)
        return [acc[0] + v, acc[1] + 1]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [a[0] + b[0], a[1] + b[1]]

    def result(self, acc: list[Any]) -> float | None:
        return acc[0] / acc[1] if acc[1] else None


class Reduce(Aggregation):
    """A user fold: ``reducer(acc, value) -> acc`` from ``initializer()``, then ``result_fn``.

    ``merger(a, b) -> acc`` is optional and only needed for session windows, which must
    combine two partial accumulators when a late record bridges two sessions.
    """

    name = "reduce"

    def __init__(
        self,
        initializer: Callable[[], Any],
        reducer: Callable[[Any, Any], Any],
        result_fn: Callable[[Any], Any] | None = None,
        merger: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.initializer = initializer
        self.reducer = reducer
        self.result_fn = result_fn
        self.merger = merger
        self.add = reducer  # type: ignore[method-assign,assignment]

    def initial(self) -> Any:
        return self.initializer()

    def add(self, acc: Any, value: Any) -> Any:
        return self.reducer(acc, value)

    def merge(self, a: Any, b: Any) -> Any:
        if self.merger is None:
            raise TypeError("this reduce has no merger; session windows need one")
        return self.merger(a, b)

    @property
    def mergeable(self) -> bool:
        return self.merger is not None

    def result(self, acc: Any) -> Any:
        return acc if self.result_fn is None else self.result_fn(acc)
