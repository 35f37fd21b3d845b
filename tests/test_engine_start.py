"""A browser that fails to start is retried like a crash (it may have been killed while
starting), and reported as the worker's configuration only when it keeps failing."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engines import chromium
from engines.chromium_engine import START_FAILURES_FATAL, could_not_start
from engines.selenium.engine import SeleniumEngine
from screenshots.core.errors import BrowserCrashed, EngineUnavailable, NavigationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings


def test_the_first_failed_starts_are_transient_then_the_configuration_is_blamed() -> None:
    error = RuntimeError("killed")
    assert isinstance(could_not_start(error, 1), BrowserCrashed)
    assert isinstance(could_not_start(error, START_FAILURES_FATAL - 1), BrowserCrashed)
    assert isinstance(could_not_start(error, START_FAILURES_FATAL), EngineUnavailable)
    assert isinstance(could_not_start(error), EngineUnavailable)  # Playwright's: unchanged


@pytest.mark.integration
def test_a_browser_that_exits_at_once_is_retried_then_unavailable() -> None:
    # /bin/false passes the binary checks and exits at once, as a browser killed while it
    # starts would.
    settings = dataclasses.replace(load_settings(), chromium_path="/bin/false")
    engine = SeleniumEngine(settings, tabs=1)
    try:
        seen = []
        for _ in range(START_FAILURES_FATAL):
            with pytest.raises((BrowserCrashed, EngineUnavailable)) as caught:
                engine.capture("http://127.0.0.1:9/", CaptureOptions(timeout=20))
            seen.append(type(caught.value))
        assert seen == [BrowserCrashed] * (START_FAILURES_FATAL - 1) + [EngineUnavailable]
        assert "Chromium could not start" in str(caught.value)
    finally:
        engine.close()


def _fake_browser(tmp_path: Path, profile: Path, *prefix: str) -> subprocess.Popen[bytes]:
    """A process named like Chromium whose command line names ``profile``."""
    binary = tmp_path / "chromium-fake"
    if not binary.exists():
        shutil.copy(os.path.realpath(sys.executable), binary)
    return subprocess.Popen(
        [*prefix, str(binary), "-c", "import time; time.sleep(120)",
         f"--user-data-dir={profile}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs unshare and root for a PID namespace")
def test_the_orphan_reaper_leaves_browsers_of_other_pid_namespaces_alone(tmp_path: Path) -> None:
    """A container's browser names an owner pid of its own namespace, which looks dead from
    here: the reaper must not take it for an orphan (the multi-host test lost URLs so)."""
    root = chromium.profile_root()
    dead_owner = root / f"999999-1-{os.getpid()}"  # no such owner: an orphan if it were ours
    ours = _fake_browser(tmp_path, dead_owner)
    theirs = _fake_browser(tmp_path, dead_owner, "unshare", "--pid", "--fork")
    try:
        deadline = time.monotonic() + 10
        while len([p for p in psutil.process_iter(["name"])
                   if p.info["name"] == "chromium-fake"]) < 2:
            assert time.monotonic() < deadline, "the fake browsers did not start"
            time.sleep(0.05)
        assert chromium.reap_orphans() >= 1
        assert ours.wait(10) is not None  # ours, orphaned: killed
        alive = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "chromium-fake"]
        assert len(alive) == 1 and theirs.poll() is None  # the other namespace's: left alone
    finally:
        for process in (ours, theirs):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(10)
        for leftover in psutil.process_iter(["name"]):
            if leftover.info["name"] == "chromium-fake":
                with contextlib.suppress(psutil.Error):
                    leftover.kill()


@pytest.mark.integration
@pytest.mark.parametrize("dies", [True, False])
def test_a_navigation_failed_by_a_dying_browser_is_its_crash_not_the_pages_error(
    monkeypatch: pytest.MonkeyPatch, dies: bool
) -> None:
    """A browser killed during a navigation may fail it (``net::ERR_ABORTED``: its network
    service went first) before its DevTools socket closes: the capture is the browser's crash
    (transient, retried), not an error row for the page. The race, made certain: the tab's
    navigation kills the browser, then answers what the browser did."""
    from engines.selenium.cdptab import CdpTab

    engine = SeleniumEngine(load_settings(), tabs=1)
    try:
        with contextlib.suppress(Exception):  # starts the browser; port 9 refuses
            engine.capture("http://127.0.0.1:9/", CaptureOptions(timeout=20))
        pid = engine.browser_pid
        assert pid is not None

        def navigate(tab: CdpTab, url: str, until: float) -> str:
            if dies:
                chromium.kill_process_tree(pid)
            return "net::ERR_ABORTED"

        monkeypatch.setattr(CdpTab, "navigate", navigate)
        expected = BrowserCrashed if dies else NavigationError
        with pytest.raises(expected) as caught:
            engine.capture("http://127.0.0.1:9/again", CaptureOptions(timeout=20))
        assert type(caught.value) is expected
    finally:
        engine.close()
