"""Hostile pages against the real engine: a clear row for each, in bounded time, and the engine
goes on.

Each case is served by :mod:`support.hostile_server` and run through the real pipeline
(:func:`screenshots.pipeline.screenshot.take_screenshot`, one attempt) with one shared engine. For
every case the row
is ``ok`` or ``error`` with a clear message, it arrives within the capture timeout plus
:data:`MARGIN`, and the next URL on the same engine is captured. At the end no Chromium of ours
is left.

Every case runs on both engines and on both of Debian's Chromium builds (the headless shell, the
default, and the full browser, ``SCREENSHOT_CHROMIUM=/usr/bin/chromium``): what one build's own
layer does for us (the full browser's pop-up blocker, its answer to a password prompt), the other
must get from the engines, and a hole in one engine or build shows up here.
"""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from engines import chromium
from engines.chromium_engine import WATCHDOG_GRACE
from screenshots.core.options import MAX_FULL_PAGE_HEIGHT, CaptureOptions
from screenshots.core.result import Result
from screenshots.core.settings import FULL_CHROMIUM, HEADLESS_SHELL, load_settings
from screenshots.core.shot import Shot
from screenshots.egress.policy import parse_allow_list
from screenshots.pipeline.screenshot import take_screenshot
from screenshots.storage.memory import MemoryStorage
from support.hostile_server import HostileSite, hostile_site, tls_server
from support.tabs import TabbedEngine, page_urls, tabbed_engine

pytestmark = pytest.mark.integration

#: Seconds a row may take beyond the capture timeout (the watchdog's grace, killing, restart).
MARGIN = WATCHDOG_GRACE + 5.0
#: Timeout of the cases that hang on purpose (short: they always use all of it).
HANG_TIMEOUT = 4.0
#: Timeout of every other case.
TIMEOUT = 20.0
#: Timeout of the heavy pages (10 MB of HTML, 300,000 elements): slow on a loaded 2-core box.
HEAVY_TIMEOUT = 45.0


@dataclass(frozen=True)
class Case:
    """One hostile input: where it is, how to capture it, what the row must say."""

    path: str
    #: "ok", "error", or "... or timeout": that, or a timeout error (a page that may never
    #: settle, or takes long to crash on a loaded machine).
    status: str
    #: For an error row: text its message must contain. For an ok row: the title, if checked.
    expect: str | None = None
    options: CaptureOptions = CaptureOptions(timeout=TIMEOUT, width=800, height=600)
    check: Callable[[Result, bytes | None], None] | None = None


def _hang(path: str) -> Case:
    return Case(
        path,
        "error",
        f"page did not finish loading within {HANG_TIMEOUT:g} s",
        CaptureOptions(timeout=HANG_TIMEOUT, width=800, height=600),
    )


def _unsettled(path: str, title: str) -> Case:
    """A page that may never settle: captured, or a timeout error, in bounded time."""
    return Case(path, "ok or timeout", title, CaptureOptions(timeout=HANG_TIMEOUT))


def _size(result: Result, image: bytes | None) -> tuple[int, int]:
    assert image is not None
    with Image.open(io.BytesIO(image)) as decoded:
        return decoded.size


def _tall(result: Result, image: bytes | None) -> None:
    assert _size(result, image) == (800, MAX_FULL_PAGE_HEIGHT)


def _wide(result: Result, image: bytes | None) -> None:
    assert _size(result, image)[0] == 800  # the asked width, not 40,000 px


def _status(code: int) -> Callable[[Result, bytes | None], None]:
    def check(result: Result, image: bytes | None) -> None:
        assert result.http_status == code

    return check


def _content_type(prefix: str) -> Callable[[Result, bytes | None], None]:
    def check(result: Result, image: bytes | None) -> None:
        assert result.content_type is not None and result.content_type.startswith(prefix)

    return check


LOOPING = CaptureOptions(timeout=HANG_TIMEOUT)
HEAVY = CaptureOptions(timeout=HEAVY_TIMEOUT, width=800, height=600)
FULL = CaptureOptions(timeout=TIMEOUT, width=800, height=600, full_page=True)
FAIL_ON_HTTP_ERRORS = CaptureOptions(timeout=TIMEOUT, fail_on_status=((400, 599),))

CASES: dict[str, Case] = {
    "response never comes": _hang("/never"),
    "body drips a byte a second": _hang("/drip"),
    "image never loads": _hang("/image-never.html"),
    "while (true)": _hang("/busy.html"),
    "alert, confirm, prompt": Case("/dialogs.html", "ok"),
    "beforeunload": Case("/beforeunload.html", "ok", "Beforeunload"),
    "fifty popups": Case("/popups.html", "ok", "Popups opened 0"),
    "60,000 px tall": Case("/tall.html", "ok", "Tall", FULL, _tall),
    "40,000 px wide": Case("/wide.html", "ok", "Wide", FULL, _wide),
    "memory bomb": Case(
        "/memory.html", "error or timeout", "crashed", CaptureOptions(timeout=HANG_TIMEOUT * 2)
    ),
    "recursive iframes": _unsettled("/recursive-iframe.html", "Recursive iframes"),
    "300,000-node DOM": Case("/dom.html", "ok", "Big DOM 300008", HEAVY),
    "404": Case("/status/404", "ok", "Status 404", check=_status(404)),
    "500": Case("/status/500", "ok", "Status 500", check=_status(500)),
    "404 as an error": Case("/status/404", "error", "404", FAIL_ON_HTTP_ERRORS),
    "500 as an error": Case("/status/500", "error", "500", FAIL_ON_HTTP_ERRORS),
    "JSON body": Case("/json", "ok", check=_content_type("application/json")),
    "plain text body": Case("/text", "ok", check=_content_type("text/plain")),
    "HTTP redirect loop": Case("/redirect-loop", "error", "too many redirects"),
    # Caught between two refreshes the page looks loaded; the deadline then ends it.
    "meta refresh loop": Case("/meta-loop.html", "error or timeout", "redirect loop", LOOPING),
    "script redirect loop": Case("/script-loop.html", "error", "redirect loop", LOOPING),
    "basic-auth challenge": Case("/auth", "error", "asks for a user name and password"),
    "PDF download": Case("/file.pdf", "error", "not a page"),
    "zip download": Case("/archive.zip", "error", "not a page"),
    "10 MB page": Case("/big.html", "ok", "Big page", HEAVY),
    "CJK, Arabic, Hindi, emoji": Case("/glyphs.html", "ok", "Glyphs ok"),
}


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileSite]:
    with hostile_site() as site:
        yield site


#: (engine, Chromium binary) pairs every case runs on.
ENGINES = [
    pytest.param((name, binary), id=f"{name}-{Path(binary).name}")
    for name in ("selenium", "playwright")
    for binary in (HEADLESS_SHELL, FULL_CHROMIUM)
]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[TabbedEngine]:
    name, binary = request.param
    settings = dataclasses.replace(
        load_settings({}), chromium_path=binary, egress_allow=parse_allow_list("127.0.0.1")
    )
    for path in (binary, settings.chromedriver_path):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: make install", pytrace=False)
    shared = tabbed_engine(name, settings, settings.tabs)
    yield shared
    profile = shared.profile_dir
    shared.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == [], "a browser outlived us"
    assert profile is None or not profile.exists()


def _run(engine: TabbedEngine, url: str, options: CaptureOptions) -> tuple[Result, bytes | None]:
    storage = MemoryStorage()
    result = take_screenshot(Shot(1, url, options), engine, storage, max_attempts=1)
    image = storage.get(result.key) if result.status == "ok" and result.key else None
    return result, image


def _then_next_url_works(engine: TabbedEngine, hostile: HostileSite) -> None:
    result, _ = _run(engine, hostile.url("/index.html"), CaptureOptions(timeout=TIMEOUT))
    assert result.status == "ok", result.error
    assert result.title == "Hostile index"


def _check(engine: TabbedEngine, url: str, case: Case) -> Result:
    started = time.monotonic()
    result, image = _run(engine, url, case.options)
    elapsed = time.monotonic() - started
    assert elapsed < case.options.timeout + MARGIN, f"took {elapsed:.1f} s"
    timeout = f"page did not finish loading within {case.options.timeout:g} s"
    if case.status.endswith(" or timeout") and result.error and result.error.startswith(timeout):
        return result
    expected = case.status.split()[0]
    assert result.status == expected, result.error
    if expected == "error":
        assert result.error and case.expect and case.expect in result.error, result.error
    else:
        assert image is not None and result.width == case.options.width
        if case.expect is not None:
            assert result.title == case.expect
    if case.check is not None:
        case.check(result, image)
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_page(engine: TabbedEngine, hostile: HostileSite, name: str) -> None:
    _then_next_url_works(engine, hostile)  # a warm browser: time the case, not a cold start
    _check(engine, hostile.url(CASES[name].path), CASES[name])
    _then_next_url_works(engine, hostile)


def test_popups_are_closed(engine: TabbedEngine, hostile: HostileSite) -> None:
    _then_next_url_works(engine, hostile)
    tabs = page_urls(engine)
    _check(engine, hostile.url("/popups.html"), CASES["fifty popups"])
    assert len(page_urls(engine)) == len(tabs)


def test_downloads_write_nothing(engine: TabbedEngine, hostile: HostileSite) -> None:
    for path in ("/file.pdf", "/archive.zip"):
        _check(engine, hostile.url(path), CASES["zip download"])
    profile = engine.profile_dir
    assert profile is not None
    written = [p for p in profile.rglob("*") if p.suffix in (".pdf", ".zip", ".crdownload")]
    assert written == []
    assert not list(Path.cwd().glob("archive*.zip"))


def test_self_signed_certificate(
    engine: TabbedEngine, hostile: HostileSite, tmp_path: Path
) -> None:
    with tls_server(tmp_path) as url:
        _check(engine, url, Case(url, "error", "TLS certificate error"))
    _then_next_url_works(engine, hostile)


def test_refused_connection(engine: TabbedEngine, hostile: HostileSite) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    _check(engine, url, Case(url, "error", f"connection refused by 127.0.0.1:{port}"))
    _then_next_url_works(engine, hostile)


def test_unknown_host(engine: TabbedEngine, hostile: HostileSite) -> None:
    url = "http://nosuch.invalid/"
    _check(engine, url, Case(url, "error", "unknown host nosuch.invalid"))
    _then_next_url_works(engine, hostile)
