"""The one thread running all of a Playwright engine's calls: an asyncio loop.

Playwright's async API lets one connection drive many pages at once; its sync API would tie
the browser to one thread and one call at a time. So each engine runs Playwright's async API
on an :class:`EngineLoop` (a daemon thread running an event loop), and the capturing threads
submit coroutines to it and wait (:meth:`EngineLoop.call`): the capture steps stay plain
blocking code, shared with the Selenium engine (:mod:`engines.tab`), while several captures
are in flight on one browser. Event handlers (requests, console) run on the loop thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

_T = TypeVar("_T")

#: Seconds :meth:`EngineLoop.stop` waits for the loop's thread to end.
STOP_WAIT = 5.0


class CallTimeout(Exception):
    """A call to the loop did not finish in the time its caller gave it."""


class EngineLoop:
    """A daemon thread running an asyncio event loop, for one engine's Playwright calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="playwright", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Schedule ``coroutine`` on the loop; its future (any thread may wait on it)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coroutine`` on the loop and wait for its result (its exception is raised).

        Past ``timeout`` seconds the coroutine is cancelled and :class:`CallTimeout` raised.
        Never call it from the loop's own thread (it would wait for itself).
        """
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("EngineLoop.call from the loop's own thread")
        future = self.submit(coroutine)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise CallTimeout(f"no answer within {timeout:g} s") from None

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def stop(self) -> None:
        """Stop the loop and wait a little for its thread (pending calls are abandoned)."""
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed meanwhile
            return
        if threading.current_thread() is not self.thread:
            self.thread.join(STOP_WAIT)
