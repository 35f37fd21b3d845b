"""The Selenium engine: one capture through ChromeDriver, and what to do when it fails.

A capture reuses the browser's tab (:class:`~engines.selenium.tab.SeleniumTab`): it leaves and
wipes the previous page, sets the shot's emulations, navigates, waits
(:mod:`engines.selenium.loading`, then :func:`engines.tab.wait_in_page`), checks the main
document from the network record (:mod:`engines.selenium.network`) and takes the image
(:func:`engines.tab.screenshot`). The browser's life (start, recycling, stopping) is
:class:`~engines.chromium_engine.ChromiumEngine`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from selenium.common.exceptions import (
    SessionNotCreatedException,
    TimeoutException,
    WebDriverException,
)

from engines import isolation, page
from engines.base import Capture
from engines.chromium_engine import (
    WATCHDOG_GRACE,
    ChromiumEngine,
    Clock,
    NoTimeLeft,
    Watchdog,
    browser_crashed,
    could_not_start,
    load_timeout,
    redirect_loop,
    short,
    start_timeout,
)
from engines.page import Document
from engines.selenium.driver import TRANSPORT_ERRORS, Browser, connection
from engines.selenium.loading import LOOP_CHECK_TIMEOUT, load_budget, wait_until
from engines.selenium.network import main_document
from engines.selenium.tab import SeleniumTab, StaleBrowser
from engines.tab import ignored_regions, screenshot, wait_in_page
from screenshots.core.errors import (
    CaptureTimeout,
    EngineUnavailable,
    NavigationError,
    PermanentError,
    RedirectLoop,
)
from screenshots.core.options import CaptureOptions

logger = logging.getLogger(__name__)

#: The error when a page crashes its tab (a memory bomb past ``chromium.JS_HEAP_MB``): a
#: permanent error, as the page would do it again.
PAGE_CRASHED = "the page crashed the browser tab (out of memory, or a browser bug)"


class SeleniumEngine(ChromiumEngine[Browser]):
    """Chromium through ChromeDriver, one browser per engine, reused across captures.

    ``settings`` gives the binaries' paths (default:
    :func:`screenshots.core.settings.load_settings`);
    ``recycle_after`` is the number of captures a browser serves before it is replaced
    (default ``settings.recycle_after``). A browser is also replaced after a timeout, a crash or
    any unexpected driver error. Not thread-safe: one engine per thread.
    """

    name = "selenium"
    # Every option. ``block`` matches resource types by file name ending (ChromeDriver gives
    # no per-request hook), so the types it cannot tell by URL are refused (:meth:`unsupported`).

    def unsupported(self, options: CaptureOptions) -> list[str]:
        blind = sorted(page.URL_BLIND_TYPES.intersection(options.block))
        return super().unsupported(options) + [f"block={kind}" for kind in blind]

    def binaries(self) -> list[tuple[str, str, str]]:
        driver = ("chromedriver", self.settings.chromedriver_path, "chromium-driver")
        return [driver, *super().binaries()]

    @property
    def browser_pid(self) -> int | None:
        """Pid of the current Chromium browser process, ``None`` before the first capture."""
        return self._browser.pid if self._browser else None

    # -- capture ---------------------------------------------------------------------------

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self._retire_if_needed()
        timeout = start_timeout(options)
        deadline = time.monotonic() + options.timeout
        with Watchdog(options.timeout + WATCHDOG_GRACE, self._kill_current) as watchdog:
            try:
                browser = self._ensure_browser(options, watchdog)
                timeout = load_timeout(options)
                browser.captures += 1
                try:
                    return self._capture(browser, url, options, deadline)
                except StaleBrowser as exc:  # the last page's fault, not this URL's
                    logger.warning("replacing the browser: %s", exc)
                    self._discard()
                    browser = self._ensure_browser(options, watchdog)
                    browser.captures += 1
                    return self._capture(browser, url, options, deadline)
            except RedirectLoop:  # the page is still navigating: start the next one afresh
                self._discard()
                raise
            except PermanentError:  # the page's fault (an error page, no such element...)
                raise
            except NoTimeLeft as exc:  # the browser is fine: keep it
                raise CaptureTimeout(exc.message) from None
            except (CaptureTimeout, TimeoutException) as exc:
                loop = self._redirect_loop()
                self._discard()
                raise loop or timeout from exc
            except EngineUnavailable:
                self._discard()
                raise
            except TRANSPORT_ERRORS as exc:
                timed_out = watchdog.fired or time.monotonic() >= deadline
                loop = self._redirect_loop() if timed_out else None
                self._discard()
                if timed_out:
                    raise loop or timeout from exc
                if "tab crashed" in short(exc):  # the page killed its renderer: it would again
                    raise NavigationError(PAGE_CRASHED, code="tab crashed") from exc
                raise browser_crashed(exc) from exc
            except BaseException:
                self._discard()  # interrupted mid-command: the browser's state is unknown
                raise

    def _capture(
        self, browser: Browser, url: str, options: CaptureOptions, deadline: float
    ) -> Capture:
        tab = browser.tab
        assert tab is not None
        remaining = self._time_left(deadline, options)
        connection(tab.driver).client_config.timeout = remaining + WATCHDOG_GRACE
        tab.network = None  # until this capture's navigation starts
        tab.set_viewport(options)
        # ChromeDriver makes most commands wait for a pending navigation, up to this timeout: it
        # ends a little before the deadline, leaving time to tell a redirect loop. Set once for
        # leaving the last page and loading this one (unchanged from capture to capture, it
        # costs no round trip; the watchdog covers the few ms the leave takes from it).
        tab.set_page_load_timeout(load_budget(deadline))
        if browser.captures > 1:
            try:
                tab.forget_previous_page()
            except (TimeoutException, *TRANSPORT_ERRORS) as exc:
                raise StaleBrowser(f"the previous page could not be left ({short(exc)})") from exc
        tab.prepare(url, options, isolation.private(url, options, self.settings))
        network = tab.start_network_log()
        clock = Clock()
        self._egress.begin()
        try:
            tab.driver.get(url)
        except TimeoutException:
            raise
        except WebDriverException as exc:
            failed = self._failed_navigation(exc.msg or "", url)
            if failed is None:
                raise
            raise failed from None
        tab.read_network()
        wait_until(tab, network, options, deadline)
        clock.navigated = time.monotonic()
        document, shown = self._document(tab, url)
        if wait_in_page(tab, options, deadline):  # the page may have moved on: look again
            tab.read_network()
            document, shown = self._document(tab, url)
        clock.waited = time.monotonic()
        regions = ignored_regions(tab, options)
        image = screenshot(tab, options)
        clock.captured = time.monotonic()
        page_url, title, console = shown
        tab.read_network()
        final_url = page_url or (document.url if document else url)
        found = self._result(image, document, (final_url, title), network, console, clock)
        return replace(found, ignored_regions=regions) if regions else found

    def _document(
        self, tab: SeleniumTab, url: str
    ) -> tuple[Document | None, tuple[str, str | None, tuple[int, list[str]]]]:
        """The document on screen, and the page's URL, title and console errors (count, first
        messages); raises if it is Chromium's error page."""
        assert tab.network is not None
        documents = list(tab.network.documents.values())
        shown = tab.read_document()
        error_page = shown[0].startswith("chrome-error://")
        document = main_document(documents, error_page)
        self._check_document(url, document, error_page)
        return document, shown

    def _redirect_loop(self) -> RedirectLoop | None:
        """After a timeout: a :class:`~screenshots.core.errors.RedirectLoop` if the page kept
        navigating."""
        browser = self._browser
        tab = browser.tab if browser is not None else None
        if browser is None or tab is None or tab.network is None:
            return None
        if browser.driver is not None and browser.alive():
            try:  # the log is ChromeDriver's: it answers even while the page navigates
                connection(browser.driver).client_config.timeout = LOOP_CHECK_TIMEOUT
                tab.read_network()
            except TRANSPORT_ERRORS:
                pass  # judge by what was read before
        return redirect_loop(tab.network.navigations)

    # -- browser life ----------------------------------------------------------------------

    def _ensure_browser(self, options: CaptureOptions, watchdog: Watchdog) -> Browser:
        if self._browser is not None:
            return self._browser
        self._before_start()
        browser = self._browser = Browser(
            self.settings, options.width, options.height, self._egress.proxy_server()
        )
        started = time.monotonic()
        try:
            browser.start()
        except SessionNotCreatedException as exc:
            if watchdog.fired:
                raise
            raise could_not_start(exc) from exc
        # Pages must never reach ChromeDriver or the DevTools endpoint, even if loopback is
        # allowed by SCREENSHOT_EGRESS_ALLOW.
        self._egress.protect(browser.service.port, browser.debugger_address())
        logger.debug("started Chromium pid %s in %.2f s", browser.pid, time.monotonic() - started)
        return browser

    def _kill_current(self) -> None:
        browser = self._browser
        if browser is not None:
            browser.kill()

    def close(self) -> None:
        """Quit the browser (politely, then by force) and delete its profile. Idempotent."""
        self._stop(polite=True)
        self._egress.close()
