"""The Selenium engine against real Chromium and the local test site (no mocks).

Chromium and ChromeDriver must be installed (``make install``): if they are not, these tests
fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from engines import chromium
from engines.selenium import WATCHDOG_GRACE, SeleniumEngine
from screenshots.core.errors import (
    BrowserCrashed,
    CaptureTimeout,
    EngineUnavailable,
    NavigationError,
)
from screenshots.core.options import MAX_FULL_PAGE_HEIGHT, CaptureOptions
from screenshots.core.settings import Settings, load_settings
from support.site import Site

PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
ROOT = Path(__file__).resolve().parent.parent


def _settings() -> Settings:
    settings = load_settings()
    for what, path in (
        ("chromium", settings.chromium_path),
        ("chromedriver", settings.chromedriver_path),
    ):
        if not os.access(path, os.X_OK):
            pytest.fail(
                f"{what} not found at {path}: install Debian's chromium and chromium-driver "
                "(make install) to run the browser tests",
                pytrace=False,
            )
    return settings


@pytest.fixture(scope="module")
def engine() -> Iterator[SeleniumEngine]:
    """One engine shared by the tests that leave it healthy (a warm browser is fast)."""
    shared = SeleniumEngine(_settings())
    yield shared
    shared.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


def _image_size(data: bytes, fmt: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == PIL_NAMES[fmt]
        return image.size


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


# -- no browser needed -------------------------------------------------------------------


def test_missing_chromedriver_is_engine_unavailable(tmp_path: Path) -> None:
    missing = str(tmp_path / "chromedriver")
    broken = SeleniumEngine(Settings(chromedriver_path=missing))
    with broken, pytest.raises(EngineUnavailable) as caught:
        broken.capture("http://127.0.0.1/", CaptureOptions())
    assert str(caught.value) == (
        f"chromedriver not found at {missing}: install Debian's chromium-driver (make install)"
    )


def test_chromium_flags(tmp_path: Path) -> None:
    flags = chromium.chromium_flags(tmp_path, 800, 600)
    assert "--headless=new" in flags
    assert f"--user-data-dir={tmp_path}" in flags
    assert "--window-size=800,600" in flags
    assert ("--no-sandbox" in flags) == (os.geteuid() == 0)
    assert "--remote-debugging-pipe" not in flags


# -- capturing ---------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("size", [(800, 600), None])
def test_image_size_and_format(
    engine: SeleniumEngine, site: Site, fmt: str, size: tuple[int, int] | None
) -> None:
    options = CaptureOptions(format=fmt)
    if size:
        options = options.replace(width=size[0], height=size[1])
    capture = engine.capture(site.url("/index.html"), options)
    assert _image_size(capture.image, fmt) == (options.width, options.height)
    assert (capture.width, capture.height) == (options.width, options.height)
    assert capture.http_status == 200
    assert capture.title == "Test site"
    assert capture.content_type == "text/html"
    assert capture.final_url == site.url("/index.html")


@pytest.mark.integration
def test_the_page_sees_the_asked_viewport(engine: SeleniumEngine, site: Site) -> None:
    for width, height in ((800, 600), (1024, 768), (800, 600)):
        options = CaptureOptions(width=width, height=height)
        capture = engine.capture(site.url("/viewport.html"), options)
        assert capture.title == f"{width}x{height}"


@pytest.mark.integration
def test_full_page(engine: SeleniumEngine, site: Site) -> None:
    capture = engine.capture(site.url("/tall.html"), CaptureOptions(full_page=True))
    assert _image_size(capture.image, "png") == (1280, 3000)
    assert (capture.width, capture.height) == (1280, 3000)


@pytest.mark.integration
def test_full_page_is_capped(engine: SeleniumEngine, site: Site) -> None:
    options = CaptureOptions(full_page=True, format="jpeg", width=800)
    capture = engine.capture(site.url("/huge.html"), options)
    assert _image_size(capture.image, "jpeg") == (800, MAX_FULL_PAGE_HEIGHT)


@pytest.mark.integration
def test_error_status_is_captured(engine: SeleniumEngine, site: Site) -> None:
    capture = engine.capture(site.url("/status/404"), CaptureOptions())
    assert capture.http_status == 404
    assert capture.title == "Status 404"
    assert _image_size(capture.image, "png") == (1280, 800)


@pytest.mark.integration
def test_http_redirect(engine: SeleniumEngine, site: Site) -> None:
    capture = engine.capture(site.url("/redirect?to=/index.html"), CaptureOptions())
    assert capture.final_url == site.url("/index.html")
    assert capture.http_status == 200
    assert capture.title == "Test site"


@pytest.mark.integration
def test_javascript_redirect(engine: SeleniumEngine, site: Site) -> None:
    capture = engine.capture(site.url("/js-redirect.html"), CaptureOptions())
    assert capture.final_url == site.url("/index.html")
    assert capture.title == "Test site"


@pytest.mark.integration
def test_fragment_of_the_same_page_loads_it_again(engine: SeleniumEngine, site: Site) -> None:
    first = engine.capture(site.url("/counter.html"), CaptureOptions()).title
    again = engine.capture(site.url("/counter.html#again"), CaptureOptions()).title
    assert first is not None and again is not None
    assert first.startswith("load ") and again.startswith("load ")
    assert again != first  # a fresh load, not a scroll


@pytest.mark.integration
def test_delay(engine: SeleniumEngine, site: Site) -> None:
    capture = engine.capture(site.url("/delayed.html"), CaptureOptions(delay_ms=600))
    assert capture.title == "After"


@pytest.mark.integration
def test_unknown_host(engine: SeleniumEngine) -> None:
    with pytest.raises(NavigationError) as caught:
        engine.capture("http://nosuch.invalid/", CaptureOptions())
    assert caught.value.code == "net::ERR_NAME_NOT_RESOLVED"
    assert caught.value.message == "unknown host nosuch.invalid (net::ERR_NAME_NOT_RESOLVED)"


@pytest.mark.integration
def test_refused_connection(engine: SeleniumEngine) -> None:
    port = _free_port()
    with pytest.raises(NavigationError) as caught:
        engine.capture(f"http://127.0.0.1:{port}/", CaptureOptions())
    assert caught.value.code == "net::ERR_CONNECTION_REFUSED"
    assert caught.value.message == (
        f"connection refused by 127.0.0.1:{port} (net::ERR_CONNECTION_REFUSED)"
    )


@pytest.mark.integration
def test_port_one_is_blocked_by_chromium(engine: SeleniumEngine) -> None:
    # Chromium refuses to connect to "unsafe" ports such as 1 before trying.
    with pytest.raises(NavigationError) as caught:
        engine.capture("http://127.0.0.1:1/", CaptureOptions())
    assert caught.value.code == "net::ERR_UNSAFE_PORT"


@pytest.mark.integration
def test_download_is_not_a_page(engine: SeleniumEngine, site: Site) -> None:
    engine.capture(site.url("/index.html"), CaptureOptions())
    with pytest.raises(NavigationError) as caught:
        engine.capture(site.url("/download.bin"), CaptureOptions())
    assert caught.value.code == "net::ERR_ABORTED"
    assert "download" in caught.value.message
    # and the engine goes on
    assert engine.capture(site.url("/index.html"), CaptureOptions()).title == "Test site"


@pytest.mark.integration
def test_warm_capture_is_fast(engine: SeleniumEngine, site: Site) -> None:
    engine.capture(site.url("/index.html"), CaptureOptions())
    pid = engine.browser_pid
    timings = []
    for n in range(5):
        started = time.monotonic()
        engine.capture(site.url(f"/page/{n}"), CaptureOptions())
        timings.append(time.monotonic() - started)
    assert engine.browser_pid == pid
    assert min(timings) < 1.0, timings


# -- deadlines and failures ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("path", "timeout"),
    [("/slow?seconds=30", 3.0), ("/busy.html", 2.0), ("/busy-after-load.html", 2.0)],
)
def test_hung_page_times_out_then_engine_recovers(
    engine: SeleniumEngine, site: Site, path: str, timeout: float
) -> None:
    started = time.monotonic()
    with pytest.raises(CaptureTimeout) as caught:
        engine.capture(site.url(path), CaptureOptions(timeout=timeout))
    elapsed = time.monotonic() - started
    assert elapsed < timeout + WATCHDOG_GRACE + 3, elapsed
    assert caught.value.message == f"page did not finish loading within {timeout:g} s"
    capture = engine.capture(site.url("/index.html"), CaptureOptions())
    assert capture.title == "Test site"


@pytest.mark.integration
def test_recycling(site: Site) -> None:
    with SeleniumEngine(_settings(), recycle_after=2) as recycled:
        pids = []
        for _ in range(3):
            recycled.capture(site.url("/index.html"), CaptureOptions())
            pids.append(recycled.browser_pid)
        assert pids[0] == pids[1] != pids[2]
        assert pids[0] not in [p.pid for p in chromium.our_browser_processes()]


@pytest.mark.integration
@pytest.mark.parametrize("victim", ["driver", "browser"])
def test_killed_browser_is_restarted(site: Site, victim: str) -> None:
    with SeleniumEngine(_settings()) as crashed:
        crashed.capture(site.url("/index.html"), CaptureOptions())
        first = crashed.browser_pid
        assert first is not None
        processes = chromium.our_browser_processes(crashed.profile_dir)
        if victim == "driver":
            (driver,) = [p for p in processes if "chromedriver" in p.name()]
            chromium.kill_process_tree(driver.pid)
        else:
            chromium.kill_process_tree(first)
        with contextlib.suppress(BrowserCrashed):  # or it restarts unnoticed
            crashed.capture(site.url("/index.html"), CaptureOptions())
        capture = crashed.capture(site.url("/index.html"), CaptureOptions())
        assert capture.title == "Test site"
        assert crashed.browser_pid != first


@pytest.mark.integration
def test_crash_during_capture_is_browser_crashed(site: Site) -> None:
    with SeleniumEngine(_settings()) as crashed:
        crashed.capture(site.url("/index.html"), CaptureOptions())
        pid = crashed.browser_pid
        assert pid is not None
        threading.Timer(1.0, chromium.kill_process_tree, [pid]).start()
        started = time.monotonic()
        with pytest.raises(BrowserCrashed):
            crashed.capture(site.url("/slow?seconds=5"), CaptureOptions(timeout=20))
        assert time.monotonic() - started < 5
        assert crashed.capture(site.url("/index.html"), CaptureOptions()).title == "Test site"


@pytest.mark.integration
def test_close_leaves_no_process_and_no_profile(site: Site) -> None:
    closing = SeleniumEngine(_settings())
    closing.capture(site.url("/index.html"), CaptureOptions())
    profile = closing.profile_dir
    assert profile is not None and profile.is_dir()
    assert len(chromium.our_browser_processes(profile)) >= 3  # driver, browser, renderers
    closing.close()
    assert chromium.our_browser_processes(profile) == []
    assert not profile.exists()
    closing.close()  # twice is fine


@pytest.mark.integration
def test_orphans_of_a_killed_owner_are_reaped() -> None:
    _settings()
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal\n"
            "from engines.selenium import SeleniumEngine\n"
            "from screenshots.core.options import CaptureOptions\n"
            "engine = SeleniumEngine()\n"
            "engine.capture('about:blank', CaptureOptions())\n"
            "print(engine.browser_pid, flush=True)\n"
            "signal.pause()  # until the test kills it\n",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        browser_pid = int(owner.stdout.readline())
        assert chromium.our_browser_processes(owner_pid=owner.pid)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
    # ChromeDriver dies with its parent (PR_SET_PDEATHSIG); Chromium is left to the reaper.
    assert chromium.reap_orphans() >= 1
    assert chromium.our_browser_processes(owner_pid=owner.pid) == []
    leftovers = [p.name for p in chromium.profile_root().iterdir()]
    assert not [name for name in leftovers if name.startswith(f"{owner.pid}-")]
    assert browser_pid not in [p.pid for p in chromium.our_browser_processes()]


@pytest.mark.integration
def test_standard_isolation_keeps_the_http_cache_and_nothing_else(site: Site) -> None:
    """``isolation: standard`` (the default): the style sheet comes from the cache the second
    time, while cookies and storage are still wiped."""
    settings = dataclasses.replace(_settings(), isolation="standard")
    kept = SeleniumEngine(settings)
    try:
        settled = CaptureOptions(wait_for_js="document.title != 'pending'")
        before = site.cached_requests
        assert kept.capture(site.url("/state.html?write"), settled).title == "written"
        found = json.loads(kept.capture(site.url("/state.html"), settled).title or "")
        assert found["cookie"] == "" and found["local"] == [] and found["service_workers"] == 0
        assert site.cached_requests - before == 1  # the second page took it from the cache
    finally:
        kept.close()
