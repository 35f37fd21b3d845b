"""The engines of the capturing threads: one per process when it takes several captures at
once, else one per thread; started on first use, closed together or per thread.

A browser is expensive to start (~1.4 s) and cheap to reuse (~0.25 s a shot). An engine that
takes several captures at once (:attr:`engines.base.Engine.concurrent` above 1: the Selenium
and Playwright engines, one Chromium with ``SCREENSHOT_TABS`` tabs) is made once and shared by
every thread, so N capturing threads drive N tabs of one browser instead of N browsers of
which all tabs but one idle (issue #15: one browser of 4 tabs costs 13% less CPU per shot than
two of 2). Engines that are not thread-safe (``concurrent`` of 1: the stub) are kept one per
capturing thread. Used by the embedded runner, the API's pool and the Celery worker
(:mod:`tasks.resources`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

from engines.base import Engine


class ThreadEngines:
    """The engines of every thread, made by ``factory(name)``."""

    def __init__(self, factory: Callable[[str], Engine]) -> None:
        self.factory = factory
        self._local = threading.local()
        self._all: list[Engine] = []
        self._shared: dict[str, Engine] = {}  # by name: the engines every thread uses
        self._lock = threading.Lock()
        self._making = threading.Lock()  # one thread makes an engine while the others wait
        # Bumped by close(): a thread's engines of an older generation are closed already.
        self._generation = 0

    def get(self, name: str) -> Engine:
        """The engine called ``name`` for this thread, made on the first call: the process's
        one if it takes several captures at once, else this thread's own."""
        engines = self._mine()
        if name in engines:
            return engines[name]
        with self._making:
            with self._lock:
                shared = self._shared.get(name)
            if shared is not None:
                return shared
            created = self.factory(name)
            with self._lock:
                self._all.append(created)
                if created.concurrent > 1:
                    self._shared[name] = created
                    return created
        engines[name] = created
        return created

    def close_thread(self) -> None:
        """Close this thread's own engines (from the thread that is about to end); the shared
        ones stay for the other threads, until :meth:`close`."""
        engines = self._mine()
        self._local.engines = {}
        with self._lock:
            self._all = [item for item in self._all if item not in engines.values()]
        _close(engines.values())

    def close(self) -> None:
        """Close every engine made so far, in every thread, and so every browser process."""
        with self._lock:
            engines, self._all = self._all, []
            self._shared = {}
            self._generation += 1
        _close(engines)

    def _mine(self) -> dict[str, Engine]:
        engines: dict[str, Engine] | None = getattr(self._local, "engines", None)
        if engines is None or getattr(self._local, "generation", None) != self._generation:
            engines = {}
            self._local.engines = engines
            self._local.generation = self._generation
        return engines


def _close(engines: Iterable[Engine]) -> None:
    for item in list(engines):
        with contextlib.suppress(Exception):  # closing must go on for the others
            item.close()
