"""BoundedCalls: a call that does not return by its deadline is abandoned, not waited for."""

from __future__ import annotations

import threading

import pytest

from headwater.client import BoundedCalls, CallStuck


def test_results_errors_and_a_stuck_call() -> None:
    calls = BoundedCalls("test-calls")
    assert calls.run(lambda: 41 + 1, 5, "add") == 42

    def fail() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        calls.run(fail, 5, "fail")

    release = threading.Event()
    with pytest.raises(CallStuck, match="blocked did not return"):
        calls.run(release.wait, 0.2, "blocked")
    assert calls.stuck == 1
    # The next call runs on a fresh thread while the stuck one still waits.
    assert calls.run(lambda: "after", 5, "after") == "after"
    release.set()
    calls.close()
