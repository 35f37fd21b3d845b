"""One browser, many tabs (issue #15): either Chromium engine with captures in flight at once.

Real Chromium (through ChromeDriver or Playwright) against the local test site, no mocks. Each
test runs several captures from threads on one engine and checks what a user would: every URL
gets its own image from one browser, concurrent captures do not see each other's cookies, a
tab that hangs, is closed or crashes costs only its own capture, a killed browser is replaced
once, recycling waits for the captures in flight, and a tab keeps its page (and renderer) from
capture to capture.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pytest

from engines import chromium
from engines.base import Capture
from engines.chromium_engine import WATCHDOG_GRACE
from screenshots.core.errors import (
    BrowserCrashed,
    CaptureTimeout,
    NavigationError,
    TransientError,
)
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings, load_settings
from support.site import COLORS, Site
from support.tabs import (
    TabbedEngine,
    browser_processes,
    close_page,
    closing,
    corner_color,
    crash_page,
    page_urls,
    renderers,
    tabbed_engine,
)

pytestmark = pytest.mark.integration

TABS = 3
ENGINES = ["selenium", "playwright"]
T = TypeVar("T")


def _settings() -> Settings:
    settings = load_settings()
    for path in (settings.chromium_path, settings.chromedriver_path):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} not found: install chromium and chromium-driver", pytrace=False)
    return settings


def _engine(name: str, recycle_after: int | None = None) -> TabbedEngine:
    return tabbed_engine(name, _settings(), TABS, recycle_after)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[TabbedEngine]:
    yield from closing(_engine(request.param))


def _in_threads(calls: Sequence[Callable[[], T]]) -> list[Future[T]]:
    """Run every call in a thread of its own, all at once; their futures, in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        for future in futures:
            future.exception()  # wait
    return futures


def test_concurrent_captures_give_each_url_its_image(engine: TabbedEngine, site: Site) -> None:
    numbers = list(range(12))
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def shoot(n: int) -> Capture:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
        try:
            capture = engine.capture(site.url(f"/page/{n}"), CaptureOptions(delay_ms=300))
            with lock:
                most = max(most, in_flight)
            return capture
        finally:
            with lock:
                in_flight -= 1

    futures = _in_threads([functools.partial(shoot, n) for n in numbers])
    for n, future in zip(numbers, futures, strict=True):
        capture = future.result()
        assert capture.title == f"Page {n}"
        assert capture.final_url == site.url(f"/page/{n}")
        assert capture.http_status == 200
        assert corner_color(capture) == COLORS[n % len(COLORS)]
    assert most >= 2, "the captures did not overlap"
    # at most TABS tabs were opened for the twelve captures, in one browser
    assert 1 <= len(page_urls(engine)) <= TABS
    assert len(browser_processes()) == 1


def test_concurrent_captures_do_not_share_cookies(engine: TabbedEngine, site: Site) -> None:
    spans: dict[str, tuple[float, float]] = {}

    def shoot(who: str) -> dict[str, object]:
        started = time.monotonic()
        options = CaptureOptions(
            cookies=[("who", who)],
            js=f"document.cookie = 'mine={who}; path=/'",
            wait_for_js="document.title != 'pending'",
            delay_ms=800,
        )
        capture = engine.capture(site.url("/state.html"), options)
        spans[who] = (started, time.monotonic())
        found: dict[str, object] = json.loads(capture.title or "")
        return found

    first, second = (f.result() for f in _in_threads([lambda: shoot("a"), lambda: shoot("b")]))
    assert spans["a"][0] < spans["b"][1] and spans["b"][0] < spans["a"][1], "not concurrent"
    # each sees its own cookie only (the page reported before the script set "mine")
    assert first["cookie"] == "who=a"
    assert second["cookie"] == "who=b"
    # and the next capture, in whichever tab, sees none of them
    settled = CaptureOptions(wait_for_js="document.title != 'pending'")
    again = functools.partial(engine.capture, site.url("/state.html"), settled)
    after = [json.loads(f.result().title or "")["cookie"] for f in _in_threads([again, again])]
    assert after == ["", ""]


def test_a_closed_tab_loses_only_its_capture(engine: TabbedEngine, site: Site) -> None:
    engine.capture(site.url("/page/0"), CaptureOptions())  # a warm browser
    victim = "/page/77"

    calls: list[Callable[[], Capture | None]] = [
        lambda: engine.capture(site.url(victim), CaptureOptions(delay_ms=8000, timeout=20)),
        lambda: engine.capture(site.url("/page/1"), CaptureOptions(delay_ms=1500)),
        lambda: close_page(engine, victim),
    ]
    started = time.monotonic()
    lost, other, closer = _in_threads(calls)
    closer.result()
    with pytest.raises(BrowserCrashed) as caught:
        lost.result()
    assert isinstance(caught.value, TransientError)  # the pipeline retries it
    assert time.monotonic() - started < 7, "the closed tab's capture waited for its delay"
    capture = other.result()
    assert capture is not None and capture.title == "Page 1"
    retried = engine.capture(site.url(victim), CaptureOptions())
    assert retried.title == "Page 77"


def test_a_crashed_tab_loses_only_its_capture(engine: TabbedEngine, site: Site) -> None:
    engine.capture(site.url("/page/0"), CaptureOptions())
    victim = "/page/78"

    calls: list[Callable[[], Capture | None]] = [
        lambda: engine.capture(site.url(victim), CaptureOptions(delay_ms=4000, timeout=20)),
        lambda: engine.capture(site.url("/page/2"), CaptureOptions(delay_ms=1500)),
        lambda: crash_page(engine, victim),
    ]
    crashed, other, crasher = _in_threads(calls)
    crasher.result()
    with pytest.raises(NavigationError) as caught:
        crashed.result()
    assert "crashed the browser tab" in caught.value.message
    capture = other.result()
    assert capture is not None and capture.title == "Page 2"
    assert engine.capture(site.url(victim), CaptureOptions()).title == "Page 78"


def test_a_hung_tab_does_not_delay_the_others(engine: TabbedEngine, site: Site) -> None:
    engine.capture(site.url("/page/0"), CaptureOptions())
    hung_timeout = 10.0
    finished: list[float] = []
    started = time.monotonic()

    def quick(n: int) -> Capture:
        capture = engine.capture(site.url(f"/page/{n}"), CaptureOptions())
        finished.append(time.monotonic() - started)
        return capture

    calls: list[Callable[[], Capture]] = [
        lambda: engine.capture(site.url("/busy.html"), CaptureOptions(timeout=hung_timeout)),
        *[functools.partial(quick, n) for n in range(3, 9)],
    ]
    hung, *others = _in_threads(calls)
    with pytest.raises(CaptureTimeout):
        hung.result()
    assert [f.result().title for f in others] == [f"Page {n}" for n in range(3, 9)]
    # six captures on the two other tabs finished long before the hung one's deadline
    assert max(finished) < hung_timeout / 2, finished
    assert time.monotonic() - started < hung_timeout + WATCHDOG_GRACE + 3
    # the hung page cost its tab, not the browser
    first = engine.browser_pid
    assert engine.capture(site.url("/page/9"), CaptureOptions()).title == "Page 9"
    assert engine.browser_pid == first


def test_a_killed_browser_fails_the_captures_in_flight_then_restarts_once(
    engine: TabbedEngine, site: Site
) -> None:
    engine.capture(site.url("/page/0"), CaptureOptions())
    first = engine.browser_pid
    assert first is not None
    threading.Timer(1.0, chromium.kill_process_tree, [first]).start()
    slow = [
        functools.partial(
            engine.capture, site.url(f"/slow?seconds=4&n={n}"), CaptureOptions(timeout=20)
        )
        for n in range(TABS)
    ]
    for future in _in_threads(slow):
        with pytest.raises(BrowserCrashed):
            future.result()
    pids: list[int | None] = []

    def again(n: int) -> Capture:
        capture = engine.capture(site.url(f"/page/{n}"), CaptureOptions())
        pids.append(engine.browser_pid)
        return capture

    results = _in_threads([functools.partial(again, n) for n in range(TABS)])
    assert [f.result().title for f in results] == [f"Page {n}" for n in range(TABS)]
    assert len(set(pids)) == 1 and pids[0] != first  # one new browser for all of them


@pytest.mark.parametrize("name", ENGINES)
def test_recycling_waits_for_the_captures_in_flight(site: Site, name: str) -> None:
    with _engine(name, recycle_after=4) as recycled:
        pids: list[int | None] = []

        def shoot(n: int) -> Capture:
            capture = recycled.capture(site.url(f"/page/{n}"), CaptureOptions(delay_ms=200))
            pids.append(recycled.browser_pid)
            return capture

        futures = _in_threads([functools.partial(shoot, n) for n in range(12)])
        assert [f.result().title for f in futures] == [f"Page {n}" for n in range(12)]
        assert len(set(pids)) >= 3  # twelve captures, a browser for every four
        alive = {p.pid for p in chromium.our_browser_processes()}
        assert not (set(pids[:-1]) - {pids[-1]}) & alive  # the retired browsers are gone
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


def test_a_tab_crashed_after_its_capture_does_not_fail_the_next_url(
    engine: TabbedEngine, site: Site
) -> None:
    assert engine.capture(site.url("/page/3"), CaptureOptions()).title == "Page 3"
    crash_page(engine, "/page/3")  # the idle tab's renderer dies
    assert engine.capture(site.url("/page/4"), CaptureOptions()).title == "Page 4"


def test_a_tab_keeps_its_page_and_renderer_from_capture_to_capture(
    engine: TabbedEngine, site: Site
) -> None:
    """Closing the page after each capture and opening a new one cost a renderer process per
    capture (2.5 x the CPU per screenshot): a tab's page is left for about:blank and reused."""
    engine.capture(site.url("/page/0"), CaptureOptions())
    before = renderers()
    for n in range(1, 6):
        assert engine.capture(site.url(f"/page/{n}"), CaptureOptions()).title == f"Page {n}"
    assert renderers() == before
