"""The broker-less runners draw their captures from one browser (issue #15).

An engine taking several captures at once (one Chromium, ``SCREENSHOT_TABS`` tabs) is made once
and shared by every capturing thread; an engine taking one at a time stays one per thread.
Checked with fake engines for the rule, then with real Chromium for what a user would see: the
embedded runner (``dispatcher.py`` without a broker) and the API's pool run one browser
process, and none is left after them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engines import chromium
from engines.base import Capture, Engine
from engines.stub import StubEngine
from screenshots.api.backends import create_backend
from screenshots.api.backends.base import DONE
from screenshots.api.config import load_api_config
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings
from screenshots.core.shot import Shot
from screenshots.delivery.embedded import EmbeddedRunner
from screenshots.pipeline.threadengines import ThreadEngines
from screenshots.storage.local import LocalStorage
from support.site import Site
from support.tabs import browser_processes


class Tabbed(StubEngine):
    """The stub, claiming to take ``tabs`` captures at once; counts its closes."""

    def __init__(self, tabs: int) -> None:
        super().__init__(latency=0.0)
        self.concurrent = tabs
        self.closed = 0

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        return super().capture(url, options)

    def close(self) -> None:
        self.closed += 1


def _from_threads(engines: ThreadEngines, name: str, threads: int) -> list[Engine]:
    got: list[Engine] = []
    barrier = threading.Barrier(threads)

    def get() -> None:
        barrier.wait()
        got.append(engines.get(name))

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(get) for _ in range(threads)]:
            future.result()
    return got


def test_an_engine_taking_several_captures_is_made_once_for_every_thread() -> None:
    made: list[Tabbed] = []

    def factory(name: str) -> Engine:
        made.append(Tabbed(3))
        return made[-1]

    engines = ThreadEngines(factory)
    got = _from_threads(engines, "tabbed", 4)
    assert len(made) == 1 and all(engine is made[0] for engine in got)
    engines.close_thread()  # a thread ending leaves it to the others
    assert made[0].closed == 0
    assert engines.get("tabbed") is made[0]
    engines.close()
    assert made[0].closed == 1
    assert engines.get("tabbed") is not made[0]  # a new one after close()
    engines.close()


def test_an_engine_taking_one_capture_stays_one_per_thread() -> None:
    made: list[Tabbed] = []

    def factory(name: str) -> Engine:
        made.append(Tabbed(1))
        return made[-1]

    engines = ThreadEngines(factory)
    got = _from_threads(engines, "single", 3)
    assert len(made) == 3 and len({id(engine) for engine in got}) == 3
    engines.close()
    assert [engine.closed for engine in made] == [1, 1, 1]


# -- real Chromium -----------------------------------------------------------------------


@pytest.fixture
def no_browser_left() -> Iterator[None]:
    assert browser_processes() == []
    yield
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


@pytest.mark.integration
@pytest.mark.parametrize("engine", ["selenium", "playwright"])
def test_the_embedded_runner_runs_one_browser_for_its_threads(
    site: Site, tmp_path: Path, no_browser_left: None, engine: str
) -> None:
    settings = dataclasses.replace(load_settings(), engine=engine)
    runner = EmbeddedRunner(settings, LocalStorage(tmp_path), engine, concurrency=3)
    shots = [
        Shot(line=n, url=site.url(f"/page/{n}"), options=CaptureOptions(delay_ms=300))
        for n in range(1, 10)
    ]
    browsers: list[int] = []
    titles: dict[int, str | None] = {}
    for result in runner.run(shots):
        titles[result.line] = result.title
        browsers.append(len(browser_processes()))
    assert titles == {n: f"Page {n}" for n in range(1, 10)}
    assert set(browsers) == {1}  # one Chromium all along, for three threads


@pytest.mark.integration
@pytest.mark.parametrize("engine_name", ["selenium", "playwright"])
def test_the_api_pool_runs_one_browser_of_as_many_tabs(
    site: Site, tmp_path: Path, no_browser_left: None, engine_name: str
) -> None:
    settings = dataclasses.replace(load_settings(), engine=engine_name, bucket=None)
    config = load_api_config(
        {
            "SCREENSHOT_API_KEYS": "tester:shared-engine-test-key-0123",
            "SCREENSHOT_API_TABS": "3",
            "SCREENSHOT_API_STORAGE_DIR": str(tmp_path),
        }
    )
    backend = create_backend(config, settings)

    async def run() -> tuple[list[str | None], int, int | None]:
        await backend.start()
        try:
            ids = [
                await backend.submit(
                    Shot(line=n, url=site.url(f"/page/{n}"), options=CaptureOptions(delay_ms=300)),
                    owner="tester",
                    engine=engine_name,
                )
                for n in range(1, 7)
            ]
            most = 0
            until = time.monotonic() + 90
            while time.monotonic() < until:
                most = max(most, len(browser_processes()))
                statuses = await backend.lookup(ids)
                if all(s is not None and s.state == DONE for s in statuses):
                    break
                await asyncio.sleep(0.1)
            statuses = await backend.lookup(ids)
            titles = [s.result.title if s and s.result else None for s in statuses]
            engine = backend._engines.get(engine_name)  # type: ignore[attr-defined]
            return titles, most, getattr(engine, "tabs", None)
        finally:
            await backend.close()

    titles, most, tabs = asyncio.run(run())
    assert titles == [f"Page {n}" for n in range(1, 7)]
    assert most == 1  # one Chromium for the pool's three tab threads
    assert tabs == 3  # with a tab for each
