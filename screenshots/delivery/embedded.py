"""Run captures in this process: a thread per slot, each with its own engine (browser)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from engines import create_engine
from engines.base import Engine
from screenshots.core.result import Result
from screenshots.core.settings import Settings
from screenshots.core.shot import Shot
from screenshots.delivery.runner import Runner
from screenshots.pipeline.reuse import cached_result
from screenshots.pipeline.screenshot import take_screenshot
from screenshots.storage.base import Storage


def default_concurrency() -> int:
    """One capture slot per CPU."""
    return os.cpu_count() or 1


class EmbeddedRunner(Runner):
    """``concurrency`` captures at a time in threads; at most twice that many shots queued."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        engine_name: str,
        concurrency: int | None = None,
        max_age: float | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.engine_name = engine_name
        self.concurrency = concurrency or default_concurrency()
        self.max_age = max_age
        self._local = threading.local()
        self._engines: list[Engine] = []
        self._lock = threading.Lock()

    def check(self) -> None:
        self.storage.check()
        create_engine(self.engine_name, self.settings).close()  # fails fast on a bad name

    def _engine(self) -> Engine:
        engine: Engine | None = getattr(self._local, "engine", None)
        if engine is None:
            engine = create_engine(self.engine_name, self.settings)
            self._local.engine = engine
            with self._lock:
                self._engines.append(engine)
        return engine

    def _take(self, shot: Shot) -> Result:
        prefix = self.settings.key_prefix
        cached = cached_result(shot, self.storage, self.max_age, key_prefix=prefix)
        if cached is not None:
            return cached
        return take_screenshot(
            shot,
            self._engine(),
            self.storage,
            key_prefix=self.settings.key_prefix,
            max_attempts=self.settings.max_attempts,
        )

    def run(self, shots: Iterable[Shot]) -> Iterator[Result]:
        limit = self.concurrency * 2
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="capture") as pool:
            pending: set[Future[Result]] = set()
            try:
                for shot in shots:
                    pending.add(pool.submit(self._take, shot))
                    if len(pending) >= limit:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            yield future.result()
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            finally:
                for future in pending:
                    future.cancel()
                # Close the browsers while their threads are alive: ChromeDriver is tied to
                # the thread that started it (parent-death signal) and must not outlive it.
                wait(pending)
                self.close()

    def close(self) -> None:
        with self._lock:
            engines, self._engines = self._engines, []
        for engine in engines:
            engine.close()
