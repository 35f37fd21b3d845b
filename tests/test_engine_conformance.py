"""One conformance suite for every engine: each capture option, checked on the local test site.

Every case runs against every engine (selenium, playwright, stub), the two Chromium engines on
both of Debian's builds (the headless shell, the default, and the full browser). An engine that
does not list an option in ``Engine.supports`` is not skipped: the case asserts that the
pipeline refuses it with the error row "option X is not supported by engine Y" instead. What
each engine supports is pinned in ``CAPABILITIES``, the capability table of the README.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engines import chromium, create_engine
from engines.base import Capture, Engine
from screenshots.core.errors import CaptureTimeout, NavigationError, RedirectLoop
from screenshots.core.options import CaptureOptions, option_names
from screenshots.core.settings import FULL_CHROMIUM, HEADLESS_SHELL, load_settings
from screenshots.core.shot import Shot
from screenshots.pipeline.screenshot import take_screenshot
from screenshots.storage.memory import MemoryStorage
from support.echo_server import Echo
from support.site import Site

ENGINES = ["selenium", "playwright", "stub"]
ALL = frozenset(option_names())
#: The capability table: options each engine honours (timeout and fail_on_status are the
#: pipeline's, so every engine has them).
CAPABILITIES = {
    "selenium": ALL,
    "playwright": ALL,
    "stub": frozenset(
        {"width", "height", "full_page", "scale", "clip", "format", "quality", "isolation"}
    ),
}
PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


#: (engine, Chromium binary) pairs the suite runs on; the stub runs no browser.
BUILDS = [pytest.param(("stub", None), id="stub")] + [
    pytest.param((name, binary), id=f"{name}-{Path(binary).name}")
    for name in ENGINES
    if name != "stub"
    for binary in (HEADLESS_SHELL, FULL_CHROMIUM)
]


@pytest.fixture(scope="module", params=BUILDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One warm engine per name and build for the whole module (tests are grouped by it)."""
    name, binary = request.param
    settings = load_settings()
    if binary is not None:
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} not found: run make install", pytrace=False)
        settings = replace(settings, chromium_path=binary)
    created = create_engine(name, settings)
    yield created
    created.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


@dataclass
class Servers:
    site: Site
    echo: Echo


@pytest.fixture(scope="module")
def servers(site: Site, echo_server: Echo) -> Servers:
    return Servers(site, echo_server)


def decoded(capture: Capture) -> Image.Image:
    return Image.open(io.BytesIO(capture.image))


def pixel(capture: Capture, x: int, y: int) -> tuple[int, int, int]:
    rgb = decoded(capture).convert("RGB").getpixel((x, y))
    assert isinstance(rgb, tuple)
    return rgb[0], rgb[1], rgb[2]


def near(color: tuple[int, int, int], wanted: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(color, wanted, strict=True))


def page_view(capture: Capture) -> dict[str, Any]:
    """What ``options.html`` or ``/echo`` put in their title."""
    assert capture.title is not None
    result: dict[str, Any] = json.loads(capture.title)
    return result


# -- the cases -------------------------------------------------------------------------------

Check = Callable[[Capture, Servers, str], None]


@dataclass(frozen=True)
class Case:
    id: str
    path: str  # on the site, or "echo:/path" on the echo server
    options: dict[str, Any]
    check: Check


def _size(width: int, height: int, fmt: str = "png") -> Check:
    def check(capture: Capture, servers: Servers, engine: str) -> None:
        image = decoded(capture)
        assert image.format == PIL_NAMES[fmt]
        assert image.size == (width, height) == (capture.width, capture.height)

    return check


def _red_box(capture: Capture, servers: Servers, engine: str) -> None:
    assert (capture.width, capture.height) == (300, 150)
    if engine == "stub":
        return  # the right size of a blank page
    for x, y in ((2, 2), (150, 75), (297, 147)):
        assert near(pixel(capture, x, y), (255, 0, 0))


def _full_page(capture: Capture, servers: Servers, engine: str) -> None:
    height = 800 if engine == "stub" else 3000  # a stub page has nothing below the viewport
    assert (capture.width, capture.height) == (1280, height)


def _title(wanted: str) -> Check:
    def check(capture: Capture, servers: Servers, engine: str) -> None:
        assert capture.title == wanted

    return check


def _view(key: str, wanted: Any) -> Check:
    def check(capture: Capture, servers: Servers, engine: str) -> None:
        assert page_view(capture)[key] == wanted

    return check


def _css(capture: Capture, servers: Servers, engine: str) -> None:
    assert near(pixel(capture, 5, 5), (0, 0, 255))  # body background from the css option
    assert near(pixel(capture, 100, 100), (0, 0, 255))  # #box hidden by hide_selectors


def _dark(capture: Capture, servers: Servers, engine: str) -> None:
    assert page_view(capture)["dark"] is True
    assert near(pixel(capture, 5, 5), (0, 0, 0))


def _headers(capture: Capture, servers: Servers, engine: str) -> None:
    assert page_view(capture)["x-shot"] == "yes"


def _cookies(capture: Capture, servers: Servers, engine: str) -> None:
    sent = page_view(capture)["cookie"]
    assert sorted(sent.split("; ")) == ["flavour=oat", "size=2"]


def _user_agent(capture: Capture, servers: Servers, engine: str) -> None:
    assert page_view(capture)["user-agent"] == "ShotBot/1.0 (conformance)"


def _locale(capture: Capture, servers: Servers, engine: str) -> None:
    assert page_view(capture)["accept-language"].startswith("fr-FR")


def _block(capture: Capture, servers: Servers, engine: str) -> None:
    asked = [p for p in servers.echo.paths if p.startswith("/res/")]
    assert "/res/font.woff2" not in asked
    assert "/res/blockme.js" not in asked
    assert "/res/picture.png" in asked and "/res/blockme.css" in asked
    assert capture.blocked_requests >= 3  # font, script, the ad


def _metadata(capture: Capture, servers: Servers, engine: str) -> None:
    assert capture.http_status == 200 and capture.content_type == "text/html"
    assert capture.final_url == servers.site.url("/options.html")
    assert capture.console_errors == 1
    assert capture.console_messages == ("boom from options.html",)
    assert capture.requests == 1 and capture.failed_requests == 0
    for timing in (capture.navigation_ms, capture.wait_ms, capture.capture_ms):
        assert timing is not None and timing >= 0


def _requests(capture: Capture, servers: Servers, engine: str) -> None:
    assert capture.requests is not None and capture.requests >= 4  # page, css, svg, 404 image
    assert capture.failed_requests == 1


CASES = [
    Case("png-800x600", "/index.html", {"width": 800, "height": 600}, _size(800, 600)),
    Case("jpeg", "/index.html", {"format": "jpeg", "quality": 50}, _size(1280, 800, "jpeg")),
    Case("webp", "/index.html", {"format": "webp"}, _size(1280, 800, "webp")),
    Case("scale", "/index.html", {"width": 300, "height": 200, "scale": 2}, _size(600, 400)),
    Case("clip", "/options.html", {"clip": [40, 50, 300, 150]}, _red_box),
    Case("selector", "/options.html", {"selector": "#box"}, _red_box),
    Case("full_page", "/tall.html", {"full_page": True}, _full_page),
    Case("wait_for", "/late.html", {"wait_for": "#late"}, _title("ready")),
    Case("wait_for_js", "/late.html", {"wait_for_js": "window.ready === true"}, _title("ready")),
    Case("networkidle", "/after-load-fetch.html", {"wait_until": "networkidle"}, _title("fetched")),
    Case("delay_ms", "/delayed.html", {"delay_ms": 600}, _title("After")),
    Case("scroll", "/lazy.html", {"scroll": True}, _title("lazy loaded")),
    Case(
        "css-hide",
        "/options.html",
        {"css": "body { background: #0000ff !important }", "hide_selectors": ["#box"]},
        _css,
    ),
    Case("js", "/index.html", {"js": "document.title = 'js ' + (40 + 2)"}, _title("js 42")),
    Case("dark_mode", "/options.html", {"dark_mode": True}, _dark),
    Case("reduced_motion", "/options.html", {"reduced_motion": True}, _view("motion", True)),
    Case("timezone", "/options.html", {"timezone": "Asia/Tokyo"}, _view("tz", "Asia/Tokyo")),
    Case("locale-page", "/options.html", {"locale": "fr-FR"}, _view("lang", "fr-FR")),
    Case("locale-header", "echo:/echo", {"locale": "fr-FR"}, _locale),
    Case("user_agent", "echo:/echo", {"user_agent": "ShotBot/1.0 (conformance)"}, _user_agent),
    Case("headers", "echo:/echo", {"headers": {"X-Shot": "yes"}}, _headers),
    Case("cookies", "echo:/echo", {"cookies": {"flavour": "oat", "size": "2"}}, _cookies),
    Case("block", "echo:/block", {"block": ["font", "*blockme.js", "ads"]}, _block),
    Case("metadata", "/options.html", {}, _metadata),
    Case("requests", "/broken-image.html", {}, _requests),
]


def _url(servers: Servers, path: str) -> str:
    if path.startswith("echo:"):
        return servers.echo.url(path.removeprefix("echo:"))
    return servers.site.url(path)


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_option(engine: Engine, servers: Servers, case: Case) -> None:
    options = CaptureOptions.from_dict(case.options)
    url = _url(servers, case.path)
    asked = [name for name in options.requested() if name not in ("timeout", "fail_on_status")]
    missing = [name for name in asked if name not in CAPABILITIES[engine.name]]
    if missing:
        # Not skipped: the pipeline must refuse it, by name.
        row = take_screenshot(Shot(1, url, options), engine, MemoryStorage(), max_attempts=1)
        assert row.status == "error"
        assert row.error == f"option {missing[0]} is not supported by engine {engine.name}"
        return  # checked: the refusal is this engine's conformance for the option
    if case.id in ("metadata", "requests") and engine.name == "stub":
        pytest.skip("the stub's page metadata is made up: nothing to conform to")
    servers.echo.paths.clear()
    capture = engine.capture(url, options)
    case.check(capture, servers, engine.name)


def test_capability_table() -> None:
    """Each engine declares exactly the options of the table (the README shows the same)."""
    for name in ENGINES:
        engine = create_engine(name, load_settings())
        try:
            assert engine.supports == CAPABILITIES[name], name
        finally:
            engine.close()


@pytest.mark.integration
def test_domcontentloaded_does_not_wait_for_load(engine: Engine, servers: Servers) -> None:
    if "wait_until" not in engine.supports:
        pytest.skip(f"{engine.name} does not honour wait_until")
    started = time.monotonic()
    capture = engine.capture(
        servers.site.url("/slow-image.html"), CaptureOptions(wait_until="domcontentloaded")
    )
    assert time.monotonic() - started < 2.5  # the image (and so the load event) takes 3 s
    assert capture.title == "slow image"


@pytest.mark.integration
def test_fail_on_status_makes_an_error_row(engine: Engine, servers: Servers) -> None:
    path = "/index.html" if engine.name == "stub" else "/status/404"
    ranges = ["200-299"] if engine.name == "stub" else ["400-599"]
    status = 200 if engine.name == "stub" else 404
    shot = Shot(1, servers.site.url(path), CaptureOptions(fail_on_status=tuple(ranges)))
    storage = MemoryStorage()
    row = take_screenshot(shot, engine, storage, max_attempts=1)
    assert row.status == "error" and row.http_status == status
    assert row.error == f"HTTP {status} is in fail_on_status ({ranges[0]})"
    assert storage.objects == {}


@pytest.mark.integration
def test_unknown_host_is_an_error_not_a_picture(engine: Engine) -> None:
    with pytest.raises(NavigationError) as caught:
        engine.capture("http://nosuch.invalid/", CaptureOptions())
    assert "nosuch.invalid" in caught.value.message


@pytest.mark.integration
def test_missing_selector_is_a_permanent_error(engine: Engine, servers: Servers) -> None:
    if "selector" not in engine.supports:
        pytest.skip(f"{engine.name} does not honour selector")
    shot = Shot(1, servers.site.url("/index.html"), CaptureOptions(selector="#nothing"))
    row = take_screenshot(shot, engine, MemoryStorage(), max_attempts=3)
    assert row.status == "error" and row.attempts == 1
    assert row.error == "selector '#nothing' matched no element"


@pytest.mark.integration
def test_no_state_leaks_between_captures(engine: Engine, servers: Servers) -> None:
    if "cookies" not in engine.supports:
        pytest.skip(f"{engine.name} does not honour cookies")
    url = servers.echo.url("/echo")
    engine.capture(url, CaptureOptions(cookies=(("left", "over"),), headers=(("X-Old", "1"),)))
    view = page_view(engine.capture(url, CaptureOptions()))
    assert "cookie" not in view and "x-old" not in view


#: What ``state.html`` reports in a browser that has never seen a page.
CLEAN_STATE = {
    "cookie": "",
    "local": [],
    "session": [],
    "name": "",
    "indexeddb": [],
    "caches": [],
    "service_workers": 0,
}


@pytest.mark.integration
@pytest.mark.parametrize("isolation", ["standard", "strict"])
def test_no_page_state_reaches_the_next_capture(
    engine: Engine, servers: Servers, isolation: str
) -> None:
    """Cookies, every storage, window.name, service workers: all gone; with ``isolation:
    strict``, the HTTP cache too (tests/test_engine_cache.py has the cache's other rules).

    The first page also writes on a timer and while it is being left (pagehide), after its
    capture, so clearing the stores while it still runs would not be enough.
    """
    if "wait_for_js" not in engine.supports:
        pytest.skip(f"{engine.name} does not honour wait_for_js")
    settled = CaptureOptions(
        wait_for_js="document.title != 'pending'", timeout=20, isolation=isolation
    )
    # Captured once the page's timer has written: it goes on writing after the capture.
    writing = "document.title == 'written' && localStorage.getItem('timer') == 'over'"
    before = servers.site.cached_requests
    written = engine.capture(
        servers.site.url("/state.html?write"),
        CaptureOptions(wait_for_js=writing, timeout=20, isolation=isolation),
    )
    assert written.title == "written"
    for _ in range(2):  # the second time also checks what the reading page itself left
        found = page_view(engine.capture(servers.site.url("/state.html"), settled))
        history = found.pop("history")
        assert found == CLEAN_STATE
        assert history <= 2  # the new page (and about:blank before it), not the old pages
    if isolation == "strict":
        assert servers.site.cached_requests - before == 3  # none served from the cache


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/meta-loop.html", "/script-loop.html"])
def test_redirect_loops_are_reported(engine: Engine, servers: Servers, path: str) -> None:
    """A page that navigates for ever ends as a redirect loop, within its timeout (+ grace)."""
    if engine.name == "stub":
        pytest.skip("the stub renders nothing and navigates nowhere")
    started = time.monotonic()
    # A meta refresh caught between two refreshes looks loaded, and ChromeDriver then holds
    # every command until the deadline: the Selenium engine may only know it timed out.
    allowed = (RedirectLoop, CaptureTimeout) if "meta" in path else (RedirectLoop,)
    with pytest.raises(allowed) as caught:
        engine.capture(servers.site.url(path), CaptureOptions(timeout=5))
    assert time.monotonic() - started < 5 + 3
    if isinstance(caught.value, RedirectLoop):
        assert caught.value.message.startswith("redirect loop: the page navigated")
        assert caught.value.navigations >= 5
    else:
        assert caught.value.message == "page did not finish loading within 5 s"


@pytest.mark.integration
def test_a_redirect_after_load_is_followed(engine: Engine, servers: Servers) -> None:
    """An ``onload`` redirect to a slow page is a page to wait for, not a loop or a cut-off."""
    if engine.name == "stub":
        pytest.skip("the stub renders nothing and navigates nowhere")
    capture = engine.capture(servers.site.url("/onload-redirect.html"), CaptureOptions())
    assert capture.final_url == servers.site.url("/slow?seconds=1")
    assert capture.title == "Slow"


@pytest.mark.integration
def test_both_engines_count_the_same_requests(engine: Engine, servers: Servers) -> None:
    """``requests`` and ``failed_requests`` mean one thing whatever the engine: the document,
    its style sheet, both hops of a redirected image, a 404 and a refused connection are six
    requests, two of them failed (the README's metadata columns)."""
    if engine.name == "stub":
        pytest.skip("the stub's page metadata is made up: nothing to conform to")
    capture = engine.capture(servers.site.url("/requests.html"), CaptureOptions())
    assert (capture.requests, capture.failed_requests) == (6, 2), capture
    assert capture.blocked_requests == 0
