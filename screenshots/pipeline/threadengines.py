"""One engine per thread (and engine name), started on first use, closed together or per thread.

A browser is expensive to start (~1.4 s) and cheap to reuse (~0.25 s a shot). Engines that
are not thread-safe (:attr:`engines.base.Engine.concurrent` of 1) are kept one per capturing
thread here: the embedded runner's threads, an API tab. A Celery worker's process shares one
engine among its threads when it takes several captures at once (:mod:`tasks.resources`), the
Selenium engine's tabs. This is the one place that keeps the per-thread ones.
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
        self._lock = threading.Lock()
        # Bumped by close(): a thread's engines of an older generation are closed already.
        self._generation = 0

    def get(self, name: str) -> Engine:
        """This thread's engine called ``name``, made on the first call."""
        engines = self._mine()
        if name not in engines:
            created = self.factory(name)
            engines[name] = created
            with self._lock:
                self._all.append(created)
        return engines[name]

    def close_thread(self) -> None:
        """Close this thread's engines (from the thread that is about to end)."""
        engines = self._mine()
        self._local.engines = {}
        with self._lock:
            self._all = [item for item in self._all if item not in engines.values()]
        _close(engines.values())

    def close(self) -> None:
        """Close every engine made so far, in every thread, and so every browser process."""
        with self._lock:
            engines, self._all = self._all, []
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
