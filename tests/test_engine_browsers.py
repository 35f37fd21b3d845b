"""Either Chromium engine on either of Debian's Chromium builds (``SCREENSHOT_CHROMIUM``).

The default is ``chromium-headless-shell`` (Chromium's old headless mode, without the full
browser's layer: about a third less CPU per screenshot on the benchmark's corpus) when it is
installed; ``/usr/bin/chromium``, the full browser, is the other choice (the conformance,
hostile-page and egress suites also run on both; the rest of the suite on the default).
ChromeDriver cannot start the shell as it is (it passes no start URL, and the shell opens no
page without one): :func:`engines.chromium.start_page_launcher` adds one. Real browsers
against the local test site: several captures at once, each URL its own image, in one browser
process of the binary chosen, no cookie reaching the next capture, no pop-up, and an HTTP
password prompt as an error on both.
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

from screenshots.core.errors import NavigationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import FULL_CHROMIUM, HEADLESS_SHELL, load_settings
from support.hostile_server import hostile_site
from support.site import COLORS, Site
from support.tabs import TabbedEngine, browser_processes, closing, corner_color, tabbed_engine

pytestmark = pytest.mark.integration

TABS = 3


#: Each binary and the name of the browser process it runs (``/usr/bin/chromium`` is a script
#: that ``exec``s ``/usr/lib/chromium/chromium``).
BROWSERS = {HEADLESS_SHELL: "chromium-headless-shell", FULL_CHROMIUM: "chromium"}


@pytest.fixture(params=sorted(BROWSERS))
def binary(request: pytest.FixtureRequest) -> str:
    path = str(request.param)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: run make install", pytrace=False)
    return path


@pytest.fixture(params=["selenium", "playwright"])
def engine(request: pytest.FixtureRequest, binary: str) -> Iterator[TabbedEngine]:
    settings = replace(load_settings(), chromium_path=binary)
    yield from closing(tabbed_engine(request.param, settings, TABS))


def test_each_url_gets_its_image_from_one_browser_of_the_binary_chosen(
    engine: TabbedEngine, binary: str, site: Site
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
    assert [Path(process.exe()).name for process in browsers] == [BROWSERS[binary]]


def test_no_cookie_reaches_the_next_capture(engine: TabbedEngine, site: Site) -> None:
    settled = "document.title != 'pending'"
    options = CaptureOptions(
        cookies=[("who", "a")], js="document.cookie = 'mine=a; path=/'", wait_for_js=settled
    )
    first = json.loads(engine.capture(site.url("/state.html"), options).title or "")
    assert first["cookie"] == "who=a"
    again = engine.capture(site.url("/state.html"), CaptureOptions(wait_for_js=settled))
    assert json.loads(again.title or "")["cookie"] == ""


def test_pop_ups_stay_blocked_and_a_password_prompt_is_an_error(engine: TabbedEngine) -> None:
    """What the full browser's own layer does, the shell does too: a page's ``window.open``
    gets ``null`` (the shell has no pop-up blocker: ``--block-new-web-contents``), and an HTTP
    authentication challenge is the same error, not a picture of the 401 body."""
    with hostile_site() as hostile:
        capture = engine.capture(hostile.url("/popups.html"), CaptureOptions())
        assert capture.title == "Popups opened 0"
        with pytest.raises(NavigationError, match="asks for a user name and password"):
            engine.capture(hostile.url("/auth"), CaptureOptions())
