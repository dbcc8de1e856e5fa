"""Blocking client calls with a deadline librdkafka cannot miss.

librdkafka documents a timeout for its transactional calls, but
``send_offsets_to_transaction`` can block far past it when the group coordinator was on a
broker that failed (librdkafka issues #5456 and #5511: the coordinator request's timeout is
never checked, and a forgotten broker is kept as the coordinator). A caller that must keep
going, such as a streams app, runs the call on a helper thread and stops waiting at the
deadline; the stuck call is abandoned with the client it belongs to.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"] | None


class CallStuck(RuntimeError):
    """A call did not return by its deadline; its client must not be used again."""


class BoundedCalls:
    """Runs calls one at a time on a helper thread, each with a deadline.

    The helper is a daemon thread: one stuck in librdkafka cannot be interrupted, and must not
    keep the process from exiting (a ``ThreadPoolExecutor`` joins its threads at exit). After
    a call is stuck its thread is left to it and the next call gets a fresh one.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stuck = 0
        self._jobs: queue.SimpleQueue[_Job] = self._start()

    def _start(self) -> queue.SimpleQueue[_Job]:
        jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=_work, args=(jobs,), name=self.name, daemon=True).start()
        return jobs

    def run(self, call: Callable[[], T], deadline_s: float, what: str) -> T:
        """``call()``'s result or exception, or ``CallStuck`` after ``deadline_s`` seconds."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((call, future))
        try:
            return future.result(timeout=deadline_s)
        except concurrent.futures.TimeoutError:
            self.stuck += 1
            log.error("%s did not return within %.0f s; abandoning it", what, deadline_s)
            self._jobs.put(None)  # the stuck thread ends if its call ever returns
            self._jobs = self._start()
            raise CallStuck(f"{what} did not return within {deadline_s:.0f} s") from None

    def close(self) -> None:
        self._jobs.put(None)


def _work(jobs: queue.SimpleQueue[_Job]) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        call, future = job
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)
