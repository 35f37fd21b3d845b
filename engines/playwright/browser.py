"""Playwright, its Chromium and the profile directory; the options of the captures' contexts.

The system Chromium (``Settings.chromium_path``) is launched with the flags of
:func:`engines.chromium.chromium_flags`, in a profile directory of
:func:`engines.chromium.new_profile_dir` (as a persistent context, so the profile path is on
Chromium's command line and :func:`engines.chromium.reap_orphans` finds a browser whose owner
died). Playwright never downloads a browser here. The captures do not use the persistent
context: each tab of the engine has a context of its own (:meth:`Browser.new_context`, made
with the shot's settings by :func:`context_options`), reused and wiped between its captures.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import psutil
from playwright.async_api import BrowserContext, Playwright, async_playwright

from engines import chromium, page
from engines.playwright.thread import EngineLoop
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings

#: Seconds the browser may take to start.
LAUNCH_TIMEOUT = 30.0
#: Seconds Playwright gets to shut Chromium down before everything is killed.
QUIT_TIMEOUT = 5.0


class Browser:
    """Playwright, its Chromium and the profile directory. Its coroutines run on the engine's
    loop (:class:`~engines.playwright.thread.EngineLoop`); :meth:`alive`, :meth:`processes`,
    :meth:`kill` and :meth:`quit` are safe from any other thread."""

    def __init__(
        self,
        settings: Settings,
        width: int,
        height: int,
        proxy_server: str | None,
        loop: EngineLoop,
    ) -> None:
        self.profile = chromium.new_profile_dir()
        self.loop = loop
        self.playwright: Playwright | None = None
        self.context: BrowserContext | None = None
        self.driver_pid: int | None = None
        self.process: psutil.Process | None = None  # Chromium's browser process
        self.captures = 0
        self.chromium_path = settings.chromium_path
        flags = chromium.chromium_flags(
            self.profile, width, height, proxy_server, binary=self.chromium_path
        )
        self.flags = [f for f in flags if not f.startswith("--user-data-dir=")]

    async def start(self) -> None:
        _write_preferences(self.profile, chromium.PROFILE_PREFS)
        self.playwright = await async_playwright().start()
        env: dict[str, str | float | bool] = dict(chromium.browser_environment(self.profile))
        self.context = await self.playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=self.chromium_path,
            args=self.flags,
            # Playwright turns Chromium's pop-up blocker off by default; a page's window.open
            # must get null here as with the Selenium engine (tests/test_engine_browsers.py).
            ignore_default_args=["--disable-popup-blocking"],
            headless=True,
            env=env,
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
            timeout=LAUNCH_TIMEOUT * 1000,
            accept_downloads=False,
        )
        self.process, self.driver_pid = _started_processes(self.profile)
        for blank in self.context.pages:  # the launch's own page: the tabs have their own
            await blank.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        context = self.context
        if context is None or context.browser is None or not context.browser.is_connected():
            return False
        return self.process is None or chromium.process_alive(self.process)

    async def new_context(self, kwargs: dict[str, Any]) -> BrowserContext:
        """A context made with ``kwargs`` (:func:`context_options`)."""
        assert self.context is not None and self.context.browser is not None
        context = await self.context.browser.new_context(**kwargs)
        await context.add_init_script(script=chromium.PAGE_GUARD_SCRIPT)  # print(), alert()...
        return context

    def processes(self) -> list[psutil.Process]:
        """This browser's processes and Playwright's driver: safe from any thread."""
        found = chromium.our_browser_processes(self.profile)
        if self.driver_pid is not None:
            found += chromium.process_tree(self.driver_pid)
        return found

    def kill(self) -> None:
        """Kill Chromium and Playwright's driver (any thread): every call in flight fails."""
        chromium.kill_processes(self.processes())

    async def _close(self) -> None:
        try:
            if self.context is not None:
                await self.context.close()
        finally:
            if self.playwright is not None:
                await self.playwright.stop()

    def quit(self, polite: bool) -> None:
        """Close the browser (politely first if asked), stop Playwright, delete the profile.

        Playwright's driver is stopped through Playwright when the loop still runs (killing
        it first would leave its client an unread "connection closed" error to print), and
        killed after, whatever happened."""
        if self.playwright is not None and self.loop.alive():
            with contextlib.suppress(Exception):
                if polite and self.context is not None:
                    self.loop.call(self._close(), timeout=QUIT_TIMEOUT)
                else:  # the browser first, so that stopping Playwright does not wait for it
                    chromium.kill_processes(chromium.our_browser_processes(self.profile))
                    self.loop.call(self.playwright.stop(), timeout=QUIT_TIMEOUT)
        self.context = None
        self.playwright = None
        self.kill()
        if self.driver_pid is not None:
            chromium.kill_process_tree(self.driver_pid, wait=1.0)
        chromium.remove_profile_dir(self.profile)


def context_key(kwargs: dict[str, Any]) -> str:
    """What tells apart contexts made with different settings (:func:`context_options`)."""
    return json.dumps(kwargs, sort_keys=True)


def _write_preferences(profile: Path, prefs: dict[str, object]) -> None:
    """Write Chromium preferences (dotted names) where a new profile reads them at start."""
    nested: dict[str, Any] = {}
    for name, value in prefs.items():
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    default = profile / "Default"
    default.mkdir(parents=True, exist_ok=True)
    (default / "Preferences").write_text(json.dumps(nested), encoding="utf-8")


def _started_processes(profile: Path) -> tuple[psutil.Process | None, int | None]:
    """Chromium's browser process (the one of ``profile`` whose parent is not one of them, the
    crash handler aside) and its parent's pid, Playwright's Node.js driver (read from the
    processes: Playwright does not say, and its private attributes move between versions)."""
    processes = chromium.our_browser_processes(profile)
    pids = {process.pid for process in processes}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if "crashpad" not in process.name() and process.ppid() not in pids:
                driver = psutil.Process(process.ppid())
                # never this process (it would kill itself with the "driver")
                ours = driver.pid != os.getpid() and "node" in driver.name()
                return process, driver.pid if ours else None
    return None, None


def context_options(options: CaptureOptions) -> dict[str, Any]:
    """Playwright's context options for the shot's viewport, scale, user agent, locale, time
    zone, colour scheme and headers."""
    kwargs: dict[str, Any] = {
        "viewport": {"width": options.width, "height": options.height},
        "device_scale_factor": options.scale,
        "accept_downloads": False,
        "bypass_csp": page.needs_csp_bypass(options),
        "reduced_motion": "reduce" if options.reduced_motion else "no-preference",
    }
    if options.dark_mode:
        kwargs["color_scheme"] = "dark"
    if options.user_agent:
        kwargs["user_agent"] = options.user_agent
    if options.headers:
        kwargs["extra_http_headers"] = dict(options.headers)
    if options.timezone:
        kwargs["timezone_id"] = options.timezone
    if options.locale:
        kwargs["locale"] = options.locale
    if options.block:
        kwargs["service_workers"] = "block"  # else requests could dodge the route
    return kwargs
