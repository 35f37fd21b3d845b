"""The Playwright engine: captures handed to the engine's thread, a hard deadline around them.

:meth:`PlaywrightEngine.capture` submits the work to the engine's
:class:`~engines.playwright.thread.EngineThread` and waits; the caller's wait is the hard
deadline: ``WATCHDOG_GRACE`` seconds past ``options.timeout`` the browser's processes are
killed, which ends whatever Playwright call was stuck. In the engine's thread, a capture opens
a page in the browser's shared context, wiped first (a private capture: in a context of its
own, see :meth:`~engines.playwright.browser.Browser.context_for`), records what its page does
(:class:`~engines.playwright.record.PageRecord`), navigates, checks the main document, then
runs the steps shared with the other Chromium engine (:func:`engines.tab.wait_in_page`,
:func:`engines.tab.screenshot`). The browser's life is
:class:`~engines.chromium_engine.ChromiumEngine`'s.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from engines import chromium, isolation, page
from engines.base import Capture
from engines.chromium_engine import (
    WATCHDOG_GRACE,
    ChromiumEngine,
    Clock,
    NoTimeLeft,
    browser_crashed,
    could_not_start,
    deadline_passed,
    load_timeout,
    redirect_loop,
)
from engines.page import Document, navigation_error
from engines.playwright.browser import Browser
from engines.playwright.record import PageRecord
from engines.playwright.tab import PlaywrightTab
from engines.playwright.thread import EngineThread
from engines.tab import ignored_regions, screenshot, wait_in_page
from screenshots.core.errors import (
    CaptureTimeout,
    EngineUnavailable,
    PermanentError,
)
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings

logger = logging.getLogger(__name__)

#: Seconds ``close()`` lets Playwright shut Chromium down before everything is killed.
QUIT_TIMEOUT = 5.0
#: Seconds a failed capture whose page navigated by itself is watched for a redirect loop.
LOOP_WATCH = 2.0
#: The same for a capture that succeeded (a meta refresh loop can be caught mid-way).
LOOP_SETTLED_WATCH = 0.5


class PlaywrightEngine(ChromiumEngine[Browser]):
    """Chromium through Playwright; see :mod:`engines.playwright`.

    ``settings`` gives the Chromium path (default: :func:`screenshots.core.settings.load_settings`);
    ``recycle_after`` is the number of captures a browser serves before it is replaced
    (default ``settings.recycle_after``). One capture at a time; any thread may call.
    """

    name = "playwright"

    def __init__(self, settings: Settings | None = None, recycle_after: int | None = None) -> None:
        super().__init__(settings, recycle_after)
        self._thread: EngineThread | None = None
        # self._browser is touched only in self._thread
        self._record: PageRecord | None = None  # what the current capture's page did
        self._lock = threading.Lock()

    # -- capture (caller's thread) ---------------------------------------------------------

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        with self._lock:
            if self._thread is None:
                self._thread = EngineThread()
            thread = self._thread
            deadline = time.monotonic() + options.timeout
            self._record = None
            future = thread.submit(lambda: self._capture(url, options, deadline))
            try:
                return future.result(timeout=options.timeout + WATCHDOG_GRACE)
            except FutureTimeout:
                pass
            deadline_passed()
            browser = self._browser
            if browser is not None:
                chromium.kill_processes(browser.processes())
            try:
                future.result(timeout=QUIT_TIMEOUT + chromium.KILL_WAIT)
            except FutureTimeout:  # the thread is stuck for good: leave it, start afresh
                logger.warning("the Playwright thread did not come back: abandoning it")
                self._thread = None
                self._browser = None
                if browser is not None:
                    chromium.remove_profile_dir(browser.profile)
                thread.stop()
            except Exception:  # noqa: BLE001, S110 - it failed because we killed it
                pass
            record = self._record  # a stuck DevTools call while the page kept navigating?
            loop = redirect_loop(record.navigations) if record is not None else None
            raise loop or load_timeout(options)

    def close(self) -> None:
        """Close the browser (politely, then by force), delete its profile. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            future = thread.submit(lambda: self._stop(polite=True))
            try:
                future.result(timeout=QUIT_TIMEOUT + chromium.KILL_WAIT + 2)
            except FutureTimeout:
                browser = self._browser
                if browser is not None:
                    chromium.kill_processes(browser.processes())
                    chromium.remove_profile_dir(browser.profile)
                self._browser = None
            thread.stop()
            self._egress.close()

    # -- capture (engine's thread) ---------------------------------------------------------

    def _capture(self, url: str, options: CaptureOptions, deadline: float) -> Capture:
        self._retire_if_needed()
        try:
            browser = self._ensure_browser(options)
            browser.captures += 1
            return self._capture_with(browser, url, options, deadline)
        except NoTimeLeft as exc:  # the browser is fine: keep it
            raise CaptureTimeout(exc.message) from None
        except (PermanentError, CaptureTimeout, EngineUnavailable):
            raise
        except PlaywrightTimeout as exc:
            raise load_timeout(options) from exc
        except PlaywrightError as exc:
            self._stop(polite=False)
            raise browser_crashed(exc) from exc
        except BaseException:
            self._stop(polite=False)
            raise

    def _capture_with(
        self, browser: Browser, url: str, options: CaptureOptions, deadline: float
    ) -> Capture:
        self._time_left(deadline, options)
        private = isolation.private(url, options, self.settings)
        context, own = browser.context_for(options, private)
        tab: Page | None = None
        try:
            context.set_default_timeout(max(1.0, (deadline - time.monotonic()) * 1000))
            if not own:  # the shared context: the last capture's page is closed, wipe the rest
                context.clear_cookies()
                context.clear_permissions()
            if options.cookies:
                context.add_cookies(
                    [{"name": name, "value": value, "url": url} for name, value in options.cookies]
                )
            record = self._record = PageRecord(page.BlockRules.of(options))
            tab = context.new_page()
            shared = PlaywrightTab(context, tab)
            if not own:  # storage, IndexedDB, Cache Storage, service workers of every origin
                shared.cdp("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
            if record.rules:
                tab.route("**/*", record.route)
            record.follow(tab)
            return self._capture_in(shared, tab, record, url, options, deadline)
        finally:
            with contextlib.suppress(PlaywrightError):
                if own:
                    context.close()
                elif tab is not None:
                    tab.close()

    def _capture_in(
        self,
        shared: PlaywrightTab,
        tab: Page,
        record: PageRecord,
        url: str,
        options: CaptureOptions,
        deadline: float,
    ) -> Capture:
        clock = Clock()
        self._egress.begin()
        try:
            self._navigate(tab, record, url, options, deadline)
            clock.navigated = time.monotonic()
            self._check_shown(tab, record, url)
            wait_in_page(shared, options, deadline)
            clock.waited = time.monotonic()
            self._check_shown(tab, record, url)
            regions = ignored_regions(shared, options)
            image = _screenshot(shared, options)
        except (PlaywrightError, CaptureTimeout) as exc:
            loop = record.watch_for_loop(tab, deadline, LOOP_WATCH)
            if loop is not None:
                raise loop from exc
            raise
        if record.navigations >= 2:  # it moved on by itself: caught in a loop, mid-way?
            loop = record.watch_for_loop(tab, deadline, LOOP_SETTLED_WATCH)
            if loop is not None:
                raise loop
        clock.captured = time.monotonic()
        console = (record.console_count, record.console)
        shown = (tab.url, tab.title())
        found = self._result(image, record.document(), shown, record, console, clock)
        return replace(found, ignored_regions=regions) if regions else found

    def _navigate(
        self, tab: Page, record: PageRecord, url: str, options: CaptureOptions, deadline: float
    ) -> None:
        remaining = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            tab.goto(url, wait_until=options.wait_until, timeout=remaining)
        except PlaywrightTimeout:
            raise
        except PlaywrightError as exc:
            text = str(exc)
            document = record.document()
            if "Download is starting" in text:
                document = document or Document(url, 200)
                raise navigation_error("net::ERR_ABORTED", url, document) from None
            failed = self._failed_navigation(text, url, document)
            if failed is None:
                raise
            raise failed from None

    def _check_shown(self, tab: Page, record: PageRecord, url: str) -> None:
        """Raise if the page on screen is Chromium's error page or the proxy's refusal."""
        self._check_document(url, record.document(), tab.url.startswith("chrome-error://"))

    # -- browser life (engine's thread) ----------------------------------------------------

    def _ensure_browser(self, options: CaptureOptions) -> Browser:
        if self._browser is not None:
            return self._browser
        self._before_start()
        browser = self._browser = Browser(
            self.settings, options.width, options.height, self._egress.proxy_server()
        )
        try:
            browser.start()
        except PlaywrightError as exc:
            self._stop(polite=False)
            raise could_not_start(exc) from exc
        return browser


def _screenshot(tab: PlaywrightTab, options: CaptureOptions) -> bytes:
    """The image, through DevTools ``Page.captureScreenshot`` like the Selenium engine."""
    if options.scale != 1:  # emulation is per DevTools session: repeat Playwright's here
        device: dict[str, Any] = {"width": options.width, "height": options.height}
        device.update(mobile=False, deviceScaleFactor=options.scale)
        tab.cdp("Emulation.setDeviceMetricsOverride", device)
    image = screenshot(tab, options)
    tab.close()
    return image
