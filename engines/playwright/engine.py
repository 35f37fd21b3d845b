"""The Playwright engine: captures in tabs of one browser, each tab a context of its own.

Up to ``tabs`` captures (``SCREENSHOT_TABS``) are in flight at once on one Chromium, so
:meth:`PlaywrightEngine.capture` may be called from that many threads at the same time (more
wait for a free tab). Every Playwright call is a coroutine run on the engine's loop
(:class:`~engines.playwright.thread.EngineLoop`), the capturing thread waiting for it. A tab is
a browser context of its own and its page, both reused: a capture takes an idle tab whose
context was made with the same settings (or makes one), leaves the previous capture's page for
``about:blank`` and wipes what it left (cookies, permissions, storage of every origin, history:
:func:`~engines.playwright.slot.forget_previous_page`), records what the page does
(:class:`~engines.playwright.record.PageRecord`), navigates, checks the main document, then runs
the steps shared with the other Chromium engine (:func:`engines.tab.wait_in_page`,
:func:`engines.tab.screenshot`). A private capture (credentials, ``isolation: strict``) gets a
context of its own, closed after it (:mod:`engines.isolation`).

Failures stay with their capture: past its deadline (plus ``WATCHDOG_GRACE``) the watchdog
closes its context, which ends whatever call was stuck, and kills the browser only if that
fails; a page that crashes its renderer is a permanent error; when the browser itself dies,
the captures in flight fail as transient and the next one starts a new browser, once.
Recycling after ``recycle_after`` captures waits for the captures in flight.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from engines import chromium, isolation, page
from engines.base import Capture
from engines.chromium_engine import (
    WATCHDOG_GRACE,
    ChromiumEngine,
    Clock,
    InFlight,
    NoTimeLeft,
    Watchdog,
    browser_crashed,
    could_not_start,
    load_timeout,
    short,
    start_timeout,
)
from engines.page import Document, navigation_error
from engines.playwright.browser import (
    LAUNCH_TIMEOUT,
    QUIT_TIMEOUT,
    Browser,
    context_key,
    context_options,
)
from engines.playwright.record import PageRecord
from engines.playwright.slot import (
    PAGE_CRASHED,
    Slot,
    StaleTab,
    browser_gone,
    close_quietly,
    open_page,
    settle,
)
from engines.playwright.tab import Call, PlaywrightTab
from engines.playwright.thread import CallTimeout, EngineLoop
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

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

#: Seconds a failed capture whose page navigated by itself is watched for a redirect loop.
LOOP_WATCH = 2.0
#: The same for a capture that succeeded (a meta refresh loop can be caught mid-way).
LOOP_SETTLED_WATCH = 0.5
#: Seconds past the watchdog after which a capture stops waiting for a call the loop never
#: answered (the watchdog closes the tab, then kills the browser: this is the last resort).
CALL_BACKSTOP = WATCHDOG_GRACE + QUIT_TIMEOUT + chromium.KILL_WAIT


class _InFlight(InFlight):
    """One capture's place in the engine: its browser, context and record, for the watchdog."""

    def __init__(self) -> None:
        super().__init__()
        self.slot: Slot | None = None
        self.record: PageRecord | None = None


class PlaywrightEngine(ChromiumEngine[Browser, _InFlight]):
    """Chromium through Playwright, one browser per engine, ``tabs`` captures at once; see
    :mod:`engines.playwright.engine`.

    ``settings`` gives the Chromium path and ``SCREENSHOT_TABS`` (default:
    :func:`screenshots.core.settings.load_settings`); ``recycle_after`` is the number of
    captures a browser serves before it is replaced (default ``settings.recycle_after`` per
    tab); ``tabs`` overrides ``settings.tabs``. Thread-safe: :meth:`capture` may be called
    from several threads at once, :meth:`close` from any thread.
    """

    name = "playwright"

    def __init__(
        self,
        settings: Settings | None = None,
        recycle_after: int | None = None,
        tabs: int | None = None,
    ) -> None:
        super().__init__(settings, recycle_after, tabs)
        self._idle: list[Slot] = []  # contexts of the current browser no capture uses
        self._loop: EngineLoop | None = None

    @property
    def browser_pid(self) -> int | None:
        """Pid of the current Chromium browser process, ``None`` before the first capture."""
        browser = self._browser
        return browser.pid if browser is not None else None

    # -- capture (caller's thread) ---------------------------------------------------------

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
        slot: Slot | None = None
        keep = False
        try:
            self._time_left(deadline, options)
            private = isolation.private(url, options, self.settings)
            slot = flight.slot = self._take_slot(browser, options, private, deadline)
            try:
                found = self._capture(slot, flight, url, options, deadline)
            except StaleTab as exc:
                if not browser.alive():
                    raise
                logger.warning("replacing a tab: %s", exc)
                self._close_slot(slot)
                slot = flight.slot = self._take_slot(browser, options, True, deadline)
                slot.own = private  # a new context, kept for the next captures if anonymous
                found = self._capture(slot, flight, url, options, deadline)
            keep = True
            return found
        except NoTimeLeft as exc:  # the tab is fine: keep it
            keep = True
            raise CaptureTimeout(exc.message) from None
        except RedirectLoop:
            raise
        except PermanentError:  # the page's fault (an error page, no such element...)
            keep = True
            raise
        except CaptureTimeout as exc:
            loop = self._redirect_loop(flight, deadline)
            if loop is not None:
                raise loop from exc
            raise
        except PlaywrightTimeout as exc:
            raise self._redirect_loop(flight, deadline) or load_timeout(options) from exc
        except BrowserCrashed:  # the egress proxy is gone: so is this browser
            self._discard_browser(browser)
            raise
        except StaleTab as exc:  # the new tab could not be made ready either
            if not browser.alive():
                self._discard_browser(browser)
                raise browser_crashed(exc) from exc
            raise BrowserCrashed(f"the browser tab could not be reused ({short(exc)})") from exc
        except CallTimeout as exc:  # the watchdog could not end the call: nothing answers
            self._discard_browser(browser)
            raise load_timeout(options) from exc
        except PlaywrightError as exc:
            raise self._failure(browser, flight, exc, options, deadline, watchdog) from exc
        finally:
            if slot is not None:
                self._release(slot, keep)

    def _failure(
        self,
        browser: Browser,
        flight: _InFlight,
        exc: PlaywrightError,
        options: CaptureOptions,
        deadline: float,
        watchdog: Watchdog,
    ) -> Exception:
        """The error of a capture whose Playwright call failed with ``exc``."""
        if watchdog.fired or time.monotonic() >= deadline:
            return self._redirect_loop(flight, deadline, watch=0) or load_timeout(options)
        record = flight.record
        if record is not None and record.crashed:  # the page killed its renderer: it would again
            return NavigationError(PAGE_CRASHED, code="tab crashed")
        if not browser.alive():
            self._discard_browser(browser)
            return browser_crashed(exc)
        loop = self._redirect_loop(flight, deadline)  # "execution context was destroyed"...
        if loop is not None:
            return loop
        return BrowserCrashed(f"the browser tab stopped answering ({short(exc)})")

    @staticmethod
    def _redirect_loop(
        flight: _InFlight, deadline: float, watch: float = LOOP_WATCH
    ) -> RedirectLoop | None:
        """A :class:`~screenshots.core.errors.RedirectLoop` if the capture's page kept
        navigating by itself (watched up to ``watch`` seconds)."""
        record = flight.record
        return record.watch_for_loop(deadline, watch) if record is not None else None

    def _capture(
        self, slot: Slot, flight: _InFlight, url: str, options: CaptureOptions, deadline: float
    ) -> Capture:
        call = self._caller(deadline)
        record = flight.record = PageRecord(page.BlockRules.of(options))
        timeout_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        tab = call(open_page(call, slot, url, options, record, timeout_ms))
        return self._capture_in(slot.browser, tab, record, url, options, deadline)

    def _capture_in(
        self,
        browser: Browser,
        tab: PlaywrightTab,
        record: PageRecord,
        url: str,
        options: CaptureOptions,
        deadline: float,
    ) -> Capture:
        clock = Clock()
        egress = self._egress_view()
        egress.begin()
        self._navigate(browser, tab, record, url, options, deadline, egress)
        settle(tab, record, options, deadline)
        clock.navigated = time.monotonic()
        self._check_shown(tab, record, url, egress)
        wait_in_page(tab, options, deadline)
        clock.waited = time.monotonic()
        self._check_shown(tab, record, url, egress)
        regions = ignored_regions(tab, options)
        image = _screenshot(tab, options)
        if record.navigations >= 2:  # it moved on by itself: caught in a loop, mid-way?
            loop = record.watch_for_loop(deadline, LOOP_SETTLED_WATCH)
            if loop is not None:
                raise loop
        clock.captured = time.monotonic()
        console = (record.console_count, record.console)
        shown = (tab.page.url, tab.title())
        found = self._result(image, record.document(), shown, record, console, clock, egress)
        return replace(found, ignored_regions=regions) if regions else found

    def _navigate(
        self,
        browser: Browser,
        tab: PlaywrightTab,
        record: PageRecord,
        url: str,
        options: CaptureOptions,
        deadline: float,
        egress: EgressGuard,
    ) -> None:
        remaining = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            tab.call(tab.page.goto(url, wait_until=options.wait_until, timeout=remaining))
        except PlaywrightTimeout:
            raise
        except PlaywrightError as exc:
            text = str(exc)
            document = record.document()
            if "Download is starting" in text:
                document = document or Document(url, 200)
                raise navigation_error("net::ERR_ABORTED", url, document) from None
            failed = self._failed_navigation(text, url, document, egress)
            if failed is None:
                raise
            if browser_gone(browser, tab):
                raise PlaywrightError(f"the browser died during the navigation ({text})") from None
            raise failed from None

    def _check_shown(
        self, tab: PlaywrightTab, record: PageRecord, url: str, egress: EgressGuard
    ) -> None:
        """Raise if the page on screen is Chromium's error page or the proxy's refusal."""
        error_page = tab.page.url.startswith("chrome-error://")
        self._check_document(url, record.document(), error_page, egress)

    def _caller(self, deadline: float) -> Call:
        """A function running a coroutine on the loop for a capture due at ``deadline``."""
        loop = self._loop
        assert loop is not None

        def call(coroutine: Coroutine[Any, Any, _T]) -> _T:
            backstop = max(0.5, deadline + CALL_BACKSTOP - time.monotonic())
            return loop.call(coroutine, timeout=backstop)

        return call

    # -- tabs ------------------------------------------------------------------------------

    def _take_slot(
        self, browser: Browser, options: CaptureOptions, private: bool, deadline: float
    ) -> Slot:
        """An idle context of ``browser`` made with the shot's settings, or a new one (always
        a new one, the capture's own, for a private capture)."""
        kwargs = context_options(options)
        key = context_key(kwargs)
        taken: Slot | None = None
        dropped: list[Slot] = []
        if not private:
            with self._lock:
                for index in range(len(self._idle) - 1, -1, -1):  # the last used first
                    if self._idle[index].key == key:
                        taken = self._idle.pop(index)
                        break
                if taken is None and len(self._idle) >= self.tabs:  # other settings: make room
                    dropped.append(self._idle.pop(0))
        for slot in dropped:
            self._close_slot(slot)
        if taken is not None:
            return taken
        context = self._caller(deadline)(browser.new_context(kwargs))
        return Slot(browser, context, key, own=private)

    def _release(self, slot: Slot, keep: bool) -> None:
        """Give a capture's context back to the idle tabs, or close it (its page crashed or was
        closed: a permanent error such as a crashed page keeps the tab otherwise)."""
        gone = slot.gone is not None and slot.gone.is_set()
        if keep and not slot.own and not slot.closed and not gone:
            with self._lock:
                if slot.browser is self._browser and slot.browser.alive():
                    self._idle.append(slot)
                    return
        self._close_slot(slot)

    def _close_slot(self, slot: Slot) -> None:
        """Close a context without waiting (its pages with it; nothing uses it any more)."""
        slot.closed = True
        loop = self._loop
        if loop is not None and loop.alive() and slot.browser.alive():
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.submit(close_quietly(slot.context))

    def _expire(self, flight: _InFlight) -> None:
        """The watchdog, past a capture's deadline: close its context (which ends whatever
        call the capture waits for), or kill its browser if it is still starting or does not
        close it."""
        slot = flight.slot
        if slot is None:
            # Starting the browser took too long: kill it. A capture still waiting for a
            # browser another one retires leaves it alone (it times out on its own).
            if flight.starting is not None:
                flight.starting.kill()
            return
        slot.closed = True
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.submit(slot.context.close()).result(QUIT_TIMEOUT)
        except Exception:  # noqa: BLE001 - whatever failed, the browser must let go
            logger.warning("the browser did not close a hung tab: killing it")
            slot.browser.kill()

    # -- browser life ----------------------------------------------------------------------

    def _start(self, options: CaptureOptions, watchdog: Watchdog, flight: _InFlight) -> None:
        self._before_start()
        if self._loop is None or not self._loop.alive():
            self._loop = EngineLoop()
        browser = self._browser = flight.starting = Browser(
            self.settings, options.width, options.height, self._egress.proxy_server(), self._loop
        )
        try:
            self._loop.call(browser.start(), timeout=LAUNCH_TIMEOUT + QUIT_TIMEOUT)
        except BaseException as exc:
            self._discard()
            if watchdog.fired:
                raise start_timeout(options) from exc
            if isinstance(exc, PlaywrightError | CallTimeout):
                self._start_failures += 1
                raise could_not_start(exc, self._start_failures) from exc
            raise
        self._start_failures = 0

    def _drop_idle_tabs(self) -> None:
        self._idle = []

    def close(self) -> None:
        """Close the browser (politely, then by force), delete its profile, stop the loop.
        Idempotent; any thread may call it."""
        self._stop(polite=True)
        self._egress.close()
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()


def _screenshot(tab: PlaywrightTab, options: CaptureOptions) -> bytes:
    """The image, through DevTools ``Page.captureScreenshot`` like the Selenium engine."""
    if options.scale != 1:  # emulation is per DevTools session: repeat Playwright's here
        device: dict[str, Any] = {"width": options.width, "height": options.height}
        device.update(mobile=False, deviceScaleFactor=options.scale)
        tab.cdp("Emulation.setDeviceMetricsOverride", device)
    return screenshot(tab, options)
