"""Playwright, its Chromium and the profile directory; the browser contexts of the captures.

The system Chromium (``Settings.chromium_path``) is launched with the flags of
:func:`engines.chromium.chromium_flags`, in a profile directory of
:func:`engines.chromium.new_profile_dir` (as a persistent context, so the profile path is on
Chromium's command line and :func:`engines.chromium.reap_orphans` finds a browser whose owner
died). Playwright never downloads a browser here. Anonymous captures share one context, made
with their settings and wiped by the engine between captures (cookies, storage, service
workers, permissions), so they share its HTTP cache; a private capture (credentials,
``isolation: strict``) gets a context of its own (:meth:`Browser.context_for`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from engines import chromium, page
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings

#: Seconds the browser may take to start.
LAUNCH_TIMEOUT = 30.0


class Browser:
    """Playwright, its Chromium and the profile directory. Used only in the engine's thread
    (but :meth:`processes` and :meth:`kill`, safe from any thread)."""

    def __init__(
        self, settings: Settings, width: int, height: int, proxy_server: str | None = None
    ) -> None:
        self.profile = chromium.new_profile_dir()
        self.playwright: Playwright | None = None
        self.context: BrowserContext | None = None
        #: The context anonymous captures share (see :meth:`context_for`), and its settings.
        self.shared: BrowserContext | None = None
        self.shared_key = ""
        self.driver_pid: int | None = None
        self.captures = 0
        flags = chromium.chromium_flags(self.profile, width, height, proxy_server)
        self.flags = [f for f in flags if not f.startswith("--user-data-dir=")]
        self.chromium_path = settings.chromium_path

    def start(self) -> None:
        _write_preferences(self.profile, chromium.PROFILE_PREFS)
        self.playwright = sync_playwright().start()
        self.driver_pid = _driver_pid(self.playwright)
        env: dict[str, str | float | bool] = dict(chromium.browser_environment(self.profile))
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=self.chromium_path,
            args=self.flags,
            headless=True,
            env=env,
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
            timeout=LAUNCH_TIMEOUT * 1000,
            accept_downloads=False,
        )

    def alive(self) -> bool:
        context = self.context
        return context is not None and context.browser is not None and (
            context.browser.is_connected()
        )

    def context_for(self, options: CaptureOptions, private: bool) -> tuple[BrowserContext, bool]:
        """The context of a capture, and whether it is the capture's own (to close after it).

        An anonymous capture reuses the browser's shared context when it was made with the
        same settings (a new context costs ~400 ms of browser CPU, issue #15), so such captures
        share its HTTP cache (:mod:`engines.isolation`); the caller wipes what the previous
        page left in it. A private capture (credentials, ``isolation: strict``) gets a context
        of its own: a cache nobody else reads, gone with it.
        """
        kwargs = context_options(options)
        if private:
            return self.new_context(kwargs), True
        key = json.dumps(kwargs, sort_keys=True)
        if self.shared is None or self.shared_key != key:
            if self.shared is not None:
                with contextlib.suppress(Exception):
                    self.shared.close()
            self.shared, self.shared_key = self.new_context(kwargs), key
        return self.shared, False

    def new_context(self, kwargs: dict[str, Any]) -> BrowserContext:
        """A context made with ``kwargs`` (:func:`context_options`)."""
        assert self.context is not None and self.context.browser is not None
        context = self.context.browser.new_context(**kwargs)
        context.add_init_script(script=chromium.PAGE_GUARD_SCRIPT)  # print(), alert()...
        return context

    def processes(self) -> list[psutil.Process]:
        """This browser's processes and Playwright's driver: safe from any thread."""
        found = chromium.our_browser_processes(self.profile)
        if self.driver_pid is not None:
            found += chromium.process_tree(self.driver_pid)
        return found

    def kill(self) -> None:
        chromium.kill_processes(chromium.our_browser_processes(self.profile))

    def quit(self, polite: bool) -> None:
        """Close the browser (politely first if asked), stop Playwright, delete the profile."""
        if polite and self.context is not None:
            with contextlib.suppress(Exception):
                if self.shared is not None:
                    self.shared.close()
                self.context.close()
        self.context = self.shared = None
        self.kill()
        if self.playwright is not None:
            with contextlib.suppress(Exception):
                self.playwright.stop()
            self.playwright = None
        if self.driver_pid is not None:
            chromium.kill_process_tree(self.driver_pid, wait=1.0)
        chromium.remove_profile_dir(self.profile)


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


def _driver_pid(playwright: Playwright) -> int | None:
    """Pid of Playwright's Node.js driver process (private attributes; ``None`` if they move)."""
    try:
        transport = playwright._impl_obj._connection._transport  # type: ignore[attr-defined]
        return int(transport._proc.pid)
    except (AttributeError, TypeError, ValueError):
        return None


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
