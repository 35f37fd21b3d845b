"""The Selenium engine: captures in tabs of one ChromeDriver browser, and what to do when they fail.

ChromeDriver starts and owns the browser (:mod:`engines.selenium.driver`); the engine drives up
to ``tabs`` captures at once (``SCREENSHOT_TABS``), each in a tab of its own
(:class:`~engines.selenium.cdptab.CdpTab`, its own DevTools websocket and browser context),
so :meth:`SeleniumEngine.capture` may be called from that many threads at the same time (more
wait for a free tab). A capture takes an idle tab (or opens one), leaves and wipes the previous
page, sets the shot's emulations, navigates, waits (:mod:`engines.selenium.loading`, then
:func:`engines.tab.wait_in_page`), checks the main document from the network record
(:mod:`engines.selenium.network`) and takes the image (:func:`engines.tab.screenshot`).

Failures stay with their capture: past its deadline, or when its page hangs, crashes or will
not go away, only its tab is closed (and a new one opened for the next capture); when the
browser itself dies, every capture in flight fails as transient and the next one starts a new
browser, once (under the engine's lock). Recycling after ``recycle_after`` captures waits for
the captures in flight.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from selenium.common.exceptions import SessionNotCreatedException

from engines import isolation, page
from engines.base import Capture
from engines.chromium_engine import (
    ChromiumEngine,
    Clock,
    InFlight,
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
from engines.selenium import cdp
from engines.selenium.cdptab import CdpTab, StaleTab, TabCrashed
from engines.selenium.driver import TRANSPORT_ERRORS, Browser
from engines.selenium.loading import load_margin, wait_until
from engines.selenium.network import main_document
from engines.tab import ignored_regions, screenshot, wait_in_page
from screenshots.core.errors import (
    BrowserCrashed,
    CaptureTimeout,
    NavigationError,
    PermanentError,
    RedirectLoop,
)
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings
from screenshots.egress.guard import EgressGuard

logger = logging.getLogger(__name__)

#: The error when a page crashes its tab (a memory bomb past ``chromium.JS_HEAP_MB``): a
#: permanent error, as the page would do it again.
PAGE_CRASHED = "the page crashed the browser tab (out of memory, or a browser bug)"
#: Seconds a failed navigation waits for its document's network events (status, MIME type).
FAILED_DOCUMENT_WAIT = 0.5
#: Seconds the browser gets to answer after a failed navigation (see ``_browser_gone``).
BROWSER_PING_TIMEOUT = 1.0
#: Errors of a capture whose tab (or browser) stopped answering.
TAB_ERRORS = (*TRANSPORT_ERRORS, cdp.CommandTimeout)


class _InFlight(InFlight):
    """One capture's place in the engine: its browser and tab, for the watchdog."""

    def __init__(self) -> None:
        super().__init__()
        self.tab: CdpTab | None = None


class SeleniumEngine(ChromiumEngine[Browser, _InFlight]):
    """Chromium started by ChromeDriver, one browser per engine, ``tabs`` captures at once.

    ``settings`` gives the binaries' paths and ``SCREENSHOT_TABS`` (default:
    :func:`screenshots.core.settings.load_settings`); ``recycle_after`` is the number of
    captures a browser serves before it is replaced (default ``settings.recycle_after`` per
    tab);
    ``tabs`` overrides ``settings.tabs``. Thread-safe: :meth:`capture` may be called from
    several threads at once.
    """

    name = "selenium"
    # Every option. ``block`` matches resource types by file name ending (the tab's
    # Network.setBlockedURLs), so the types it cannot tell by URL are refused (:meth:`unsupported`).

    def __init__(
        self,
        settings: Settings | None = None,
        recycle_after: int | None = None,
        tabs: int | None = None,
    ) -> None:
        super().__init__(settings, recycle_after, tabs)
        self._idle: list[CdpTab] = []
        # ChromeDriver dies with the thread that started it (PR_SET_PDEATHSIG): browsers are
        # started from this long-lived thread, not from whichever capturing thread came first.
        self._owner: ThreadPoolExecutor | None = None

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

    def _new_flight(self) -> _InFlight:
        return _InFlight()

    def _capture_in_tab(
        self,
        browser: Browser,
        flight: _InFlight,
        url: str,
        options: CaptureOptions,
        deadline: float,
        watchdog: Watchdog,
    ) -> Capture:
        tab: CdpTab | None = None
        keep = False
        try:
            tab = flight.tab = self._take_tab(browser)
            try:
                found = self._capture(tab, url, options, deadline)
            except StaleTab as exc:  # the last page's fault, not this URL's
                logger.warning("replacing a tab: %s", exc)
                self._drop_tab(tab)
                tab = flight.tab = self._take_tab(browser)
                found = self._capture(tab, url, options, deadline)
            keep = True
            return found
        except RedirectLoop:  # the page is still navigating: the next capture gets a new tab
            raise
        except TabCrashed as exc:  # the page killed its renderer: it would again
            raise NavigationError(PAGE_CRASHED, code="tab crashed") from exc
        except PermanentError:  # the page's fault (an error page, no such element...)
            keep = True
            raise
        except NoTimeLeft as exc:  # the tab is fine: keep it
            keep = True
            raise CaptureTimeout(exc.message) from None
        except CaptureTimeout as exc:
            raise self._redirect_loop(tab) or load_timeout(options) from exc
        except BrowserCrashed:  # the egress proxy is gone: so is this browser
            self._discard_browser(browser)
            raise
        except StaleTab as exc:  # a second tab in a row could not be made ready
            raise BrowserCrashed(f"the browser tab could not be reused ({short(exc)})") from exc
        except TAB_ERRORS as exc:
            if watchdog.fired or time.monotonic() >= deadline - load_margin(options):
                raise self._redirect_loop(tab) or load_timeout(options) from exc
            if not browser.alive():
                self._discard_browser(browser)
                raise browser_crashed(exc) from exc
            raise BrowserCrashed(f"the browser tab stopped answering ({short(exc)})") from exc
        finally:
            if tab is not None:
                if keep:
                    self._give_back(tab)
                else:
                    self._drop_tab(tab)

    def _capture(self, tab: CdpTab, url: str, options: CaptureOptions, deadline: float) -> Capture:
        if tab.captures:
            try:
                tab.forget_previous_page()
            except (PermanentError, TabCrashed, *TAB_ERRORS) as exc:
                if not tab.browser.alive():
                    raise
                # The previous page's fault (it hung, or crashed its tab after its capture).
                raise StaleTab(f"the previous page could not be left ({short(exc)})") from exc
        tab.captures += 1
        tab.network = None  # until this capture's navigation starts
        tab.deadline = deadline
        self._time_left(deadline, options)
        egress = self._egress_view()
        tab.set_viewport(options)
        tab.prepare(url, options, isolation.private(url, options, self.settings))
        network = tab.start_network_log()
        clock = Clock()
        egress.begin()
        failed = tab.navigate(url, deadline - load_margin(options))
        if failed is not None:
            if self._browser_gone(tab):
                raise cdp.Closed(f"the browser died during the navigation ({failed})")
            raise self._navigation_failed(tab, url, failed, egress)
        wait_until(tab, network, options, deadline)
        clock.navigated = time.monotonic()
        document, shown = self._document(tab, url, egress)
        if wait_in_page(tab, options, deadline):  # the page may have moved on: look again
            tab.read_network()
            document, shown = self._document(tab, url, egress)
        clock.waited = time.monotonic()
        regions = ignored_regions(tab, options)
        image = screenshot(tab, options)
        clock.captured = time.monotonic()
        page_url, title, console = shown
        tab.read_network()
        final_url = page_url or (document.url if document else url)
        found = self._result(image, document, (final_url, title), network, console, clock, egress)
        return replace(found, ignored_regions=regions) if regions else found

    @staticmethod
    def _browser_gone(tab: CdpTab) -> bool:
        """After a failed navigation: whether the browser died, rather than the page failing.

        A browser killed in the middle of a navigation can abort it (``net::ERR_ABORTED``:
        its network service went first) a moment before its DevTools socket closes; blaming
        the page would turn a transient failure into a permanent error row. One round trip to
        the browser, then a look at its processes, tells the two apart (about 1 ms, paid only
        by failed navigations).
        """
        try:
            tab.browser.browser_command("Browser.getVersion", timeout=BROWSER_PING_TIMEOUT)
        except TAB_ERRORS:
            return True
        return tab.connection.closed or not tab.browser.alive()

    def _navigation_failed(
        self, tab: CdpTab, url: str, error: str, egress: EgressGuard
    ) -> Exception:
        """The error of a navigation the browser failed at once (``error``: its net error);
        what the network said of the document (a status, a download's type) goes with it."""
        network = tab.network
        assert network is not None
        until = time.monotonic() + FAILED_DOCUMENT_WAIT
        while not any(d.error for d in network.documents.values()) and time.monotonic() < until:
            tab.pause_for_events(0.02)
        tab.read_network()
        document = main_document(list(network.documents.values()), False)
        if document is None:
            document = Document(url=url, error=error)
        elif document.error is None:
            document.error = error
        try:
            self._check_document(url, document, False, egress)
        except (NavigationError, BrowserCrashed) as exc:
            return exc
        return NavigationError(f"the browser could not show {url} ({error})", code=error)

    def _document(
        self, tab: CdpTab, url: str, egress: EgressGuard
    ) -> tuple[Document | None, tuple[str, str | None, tuple[int, list[str]]]]:
        """The document on screen, and the page's URL, title and console errors (count, first
        messages); raises if it is Chromium's error page."""
        assert tab.network is not None
        documents = list(tab.network.documents.values())
        shown = tab.read_document()
        error_page = shown[0].startswith("chrome-error://")
        document = main_document(documents, error_page)
        self._check_document(url, document, error_page, egress)
        return document, shown

    @staticmethod
    def _redirect_loop(tab: CdpTab | None) -> RedirectLoop | None:
        """After a timeout: a :class:`~screenshots.core.errors.RedirectLoop` if the page kept
        navigating (the events already received tell; they arrive whatever the page does)."""
        if tab is None or tab.network is None:
            return None
        tab.read_network()
        return redirect_loop(tab.network.navigations)

    # -- tabs ------------------------------------------------------------------------------

    def _take_tab(self, browser: Browser) -> CdpTab:
        with self._lock:
            taken: CdpTab | None = None
            dead: list[CdpTab] = []
            while self._idle and taken is None:
                tab = self._idle.pop()
                if tab.browser is browser and not tab.connection.closed:
                    taken = tab
                else:
                    dead.append(tab)
        for tab in dead:  # crashed while idle, or of an older browser
            if tab.browser is browser:
                tab.close()
            else:
                tab.connection.close()
        return taken if taken is not None else browser.new_tab()

    def _give_back(self, tab: CdpTab) -> None:
        tab.deadline = None
        with self._lock:
            if tab.browser is self._browser and not tab.connection.closed:
                self._idle.append(tab)
                return
        self._drop_tab(tab)

    def _drop_tab(self, tab: CdpTab) -> None:
        """Close a tab that failed (its page hung, crashed or would not go away)."""
        tab.close()

    def _expire(self, flight: _InFlight) -> None:
        """The watchdog, past a capture's deadline: close its tab, or kill its browser if it is
        still starting or does not answer."""
        tab = flight.tab
        if tab is None:
            # Starting the browser took too long: kill it. A capture still waiting for a
            # browser another one retires leaves it alone (it times out on its own).
            if flight.starting is not None:
                flight.starting.kill()
            return
        tab.connection.close()
        try:
            tab.browser.browser_command(
                "Target.disposeBrowserContext", {"browserContextId": tab.context_id}
            )
        except (*TAB_ERRORS, cdp.CdpError):
            logger.warning("the browser did not close a hung tab: killing it")
            tab.browser.kill()

    # -- browser life ----------------------------------------------------------------------

    def _start(self, options: CaptureOptions, watchdog: Watchdog, flight: _InFlight) -> None:
        self._before_start()
        browser = self._browser = flight.starting = Browser(
            self.settings, options.width, options.height, self._egress.proxy_server()
        )
        started = time.monotonic()
        try:
            if self._owner is None:
                self._owner = ThreadPoolExecutor(1, thread_name_prefix="browser-owner")
            self._owner.submit(browser.start).result()
        except SessionNotCreatedException as exc:
            self._discard()
            if watchdog.fired:
                raise start_timeout(options) from exc
            self._start_failures += 1
            raise could_not_start(exc, self._start_failures) from exc
        except BaseException as exc:
            self._discard()
            if watchdog.fired:
                raise start_timeout(options) from exc
            if isinstance(exc, TAB_ERRORS):
                self._start_failures += 1
                raise could_not_start(exc, self._start_failures) from exc
            raise
        self._start_failures = 0
        # Pages must never reach ChromeDriver or the DevTools endpoint, even if loopback is
        # allowed by SCREENSHOT_EGRESS_ALLOW.
        self._egress.protect(browser.service.port, browser.debugger_address())
        logger.debug("started Chromium pid %s in %.2f s", browser.pid, time.monotonic() - started)

    def _drop_idle_tabs(self) -> None:
        for tab in self._idle:
            tab.connection.close()
        self._idle = []

    def close(self) -> None:
        """Quit the browser (politely, then by force) and delete its profile. Idempotent."""
        self._stop(polite=True)
        self._egress.close()
        owner, self._owner = self._owner, None
        if owner is not None:
            owner.shutdown(wait=False)
