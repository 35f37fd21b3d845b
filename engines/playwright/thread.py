"""The one thread that makes all of a Playwright engine's calls.

Playwright's sync objects belong to the thread that created them, and its sync API refuses to
run inside an asyncio loop. So each engine owns one :class:`EngineThread`, and every Playwright
call is submitted to it: the engine is then usable from any thread (one capture at a time), and
``close()`` may run from another thread than the captures.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

_T = TypeVar("_T")


class EngineThread:
    """A daemon thread running submitted calls one at a time (all of one engine's Playwright)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._loop, name="playwright", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller, who re-raises it
                future.set_exception(exc)

    def submit(self, function: Callable[[], _T]) -> Future[_T]:
        future: Future[_T] = Future()
        self._queue.put((function, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
