"""The Playwright engine's life: deadlines, recycling, recovery, closing from another thread.

What it captures is checked by the conformance suite (``test_engine_conformance.py``).
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from engines import chromium
from engines.playwright import WATCHDOG_GRACE, PlaywrightEngine
from screenshots.core.errors import CaptureTimeout
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings
from support.site import Site

pytestmark = pytest.mark.integration


def _no_browser_left() -> None:
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


def test_hung_page_hits_the_hard_deadline_then_the_engine_recovers(site: Site) -> None:
    engine = PlaywrightEngine(load_settings())
    try:
        engine.capture(site.url("/index.html"), CaptureOptions())
        started = time.monotonic()
        with pytest.raises(CaptureTimeout):
            engine.capture(site.url("/busy-after-load.html"), CaptureOptions(timeout=2))
        assert time.monotonic() - started < 2 + WATCHDOG_GRACE + 6
        capture = engine.capture(site.url("/index.html"), CaptureOptions())
        assert capture.title == "Test site"
    finally:
        engine.close()
    _no_browser_left()


def test_recycling_replaces_the_browser(site: Site) -> None:
    engine = PlaywrightEngine(load_settings(), recycle_after=2)
    try:
        profiles = []
        for _ in range(3):
            engine.capture(site.url("/index.html"), CaptureOptions(width=400, height=300))
            profiles.append(engine.profile_dir)
        assert profiles[0] == profiles[1] != profiles[2]
        assert profiles[0] is not None and not profiles[0].exists()
    finally:
        engine.close()
    _no_browser_left()


def test_captures_and_close_from_other_threads(site: Site) -> None:
    engine = PlaywrightEngine(load_settings())
    titles: list[str | None] = []

    def work() -> None:
        titles.append(engine.capture(site.url("/index.html"), CaptureOptions()).title)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert titles == ["Test site", "Test site"]
    engine.close()  # from the main thread, not the engine's
    engine.close()  # twice is fine
    _no_browser_left()
