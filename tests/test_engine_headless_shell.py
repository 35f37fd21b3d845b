"""Either Chromium engine on Debian's ``chromium-headless-shell`` (``SCREENSHOT_CHROMIUM``).

The shell is Chromium without the full browser's layer, about 40% less CPU per screenshot on
the benchmark's corpus. ChromeDriver cannot start it as it is (it passes no start URL, and the
shell opens no page without one): :func:`engines.chromium.start_page_launcher` adds one. Real
browsers against the local test site: several captures at once, each URL its own image, in one
browser process that is the shell, and no cookie reaching the next capture.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from screenshots.core.options import CaptureOptions
from screenshots.core.settings import HEADLESS_SHELL, load_settings
from support.site import COLORS, Site
from support.tabs import TabbedEngine, browser_processes, closing, corner_color, tabbed_engine

pytestmark = pytest.mark.integration

TABS = 3


@pytest.fixture(params=["selenium", "playwright"])
def engine(request: pytest.FixtureRequest) -> Iterator[TabbedEngine]:
    if not os.access(HEADLESS_SHELL, os.X_OK):
        pytest.fail(f"{HEADLESS_SHELL} not found: run make install", pytrace=False)
    settings = replace(load_settings(), chromium_path=HEADLESS_SHELL)
    yield from closing(tabbed_engine(request.param, settings, TABS))


def test_the_shell_gives_each_url_its_image_from_one_browser(
    engine: TabbedEngine, site: Site
) -> None:
    numbers = list(range(6))
    shoot = functools.partial(engine.capture, options=CaptureOptions(delay_ms=200))
    with ThreadPoolExecutor(TABS) as pool:
        captures = list(pool.map(lambda n: shoot(site.url(f"/page/{n}")), numbers))
    for n, capture in zip(numbers, captures, strict=True):
        assert capture.title == f"Page {n}"
        assert capture.http_status == 200
        assert corner_color(capture) == COLORS[n % len(COLORS)]
    browsers = browser_processes()
    assert [Path(process.exe()).name for process in browsers] == [Path(HEADLESS_SHELL).name]


def test_the_shell_keeps_no_cookie_for_the_next_capture(engine: TabbedEngine, site: Site) -> None:
    settled = "document.title != 'pending'"
    options = CaptureOptions(
        cookies=[("who", "a")], js="document.cookie = 'mine=a; path=/'", wait_for_js=settled
    )
    first = json.loads(engine.capture(site.url("/state.html"), options).title or "")
    assert first["cookie"] == "who=a"
    again = engine.capture(site.url("/state.html"), CaptureOptions(wait_for_js=settled))
    assert json.loads(again.title or "")["cookie"] == ""
