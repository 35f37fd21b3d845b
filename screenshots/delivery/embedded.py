"""Run captures in this process: ``concurrency`` threads on one engine of as many tabs (or an
engine per thread when it takes one capture at a time: see
:mod:`screenshots.pipeline.threadengines`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from engines import create_engine
from screenshots.core.result import Result
from screenshots.core.settings import Settings
from screenshots.core.shot import Shot
from screenshots.delivery.runner import Runner
from screenshots.pipeline.screenshot import Pipeline
from screenshots.pipeline.threadengines import ThreadEngines
from screenshots.storage.base import Storage


class EmbeddedRunner(Runner):
    """``concurrency`` captures at a time in threads (default ``SCREENSHOT_TABS``); at most
    twice that many shots queued."""

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
        # SCREENSHOT_TABS by default: the tabs of one browser, as a worker process runs them.
        self.concurrency = concurrency or settings.tabs
        self.max_age = max_age
        self.pipeline = Pipeline.from_settings(settings, storage, max_age=max_age)
        # One browser with a tab per thread (engines that take several captures at once).
        tabbed = dataclasses.replace(settings, tabs=self.concurrency)
        self._engines = ThreadEngines(lambda name: create_engine(name, tabbed))

    def check(self) -> None:
        self.storage.check()
        create_engine(self.engine_name, self.settings).close()  # fails fast on a bad name

    def _take(self, shot: Shot) -> Result:
        return self.pipeline.take(shot, lambda: self._engines.get(self.engine_name))

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
        self._engines.close()
