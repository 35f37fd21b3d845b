"""A Playwright engine's tab: a browser context and its page, reused and wiped between captures.

:func:`open_page` readies a tab for a capture (on the engine's loop): the previous capture's
page left for ``about:blank`` and everything it could leave behind wiped
(:func:`forget_previous_page`), then the capture's cookies, block rules and record. After the
navigation, :func:`settle` (in the capturing thread) waits for a page that moves on by itself
(an ``onload`` redirect) and tells a redirect loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from playwright.async_api import BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from engines import page
from engines.chromium_engine import load_timeout, short
from engines.playwright.browser import Browser
from engines.playwright.record import PageRecord, Relay
from engines.playwright.tab import Call, PlaywrightTab, evaluate, watch_gone
from engines.playwright.thread import CallTimeout
from screenshots.core.errors import NavigationError, RedirectLoop
from screenshots.core.options import CaptureOptions

#: Seconds the last capture's page gets to give way to ``about:blank``.
LEAVE_TIMEOUT = 2.0
#: Seconds a loaded page must start no new navigation to count as settled.
SETTLE_WINDOW = 0.05
#: Main-frame navigations at which a page still loading is a redirect loop at once.
LOOP_EARLY = 20
#: Seconds before the deadline the wait for a page to settle gives up (room to tell a loop).
LOOP_CHECK = 1.0
#: Seconds the browser gets to answer after a failed navigation (see :func:`browser_gone`).
BROWSER_PING_TIMEOUT = 1.0
#: Leaves the last capture's page from inside it (its renderer stays warm).
LEAVE = "location.replace('about:blank')"
#: The error when a page crashes its renderer (a memory bomb past ``chromium.JS_HEAP_MB``): a
#: permanent error, as the page would do it again (the Selenium engine's words).
PAGE_CRASHED = "the page crashed the browser tab (out of memory, or a browser bug)"


class Slot:
    """A tab: its browser context and page, reused and wiped between its captures (unless
    ``own``: a private capture's, closed after it)."""

    def __init__(self, browser: Browser, context: BrowserContext, key: str, own: bool) -> None:
        self.browser = browser
        self.context = context
        self.key = key
        self.own = own
        self.closed = False  # the watchdog closed it
        #: The tab's page and its DevTools session, made by its first capture.
        self.page: Page | None = None
        self.session: CDPSession | None = None
        self.gone: threading.Event | None = None
        self.relay: Relay | None = None  # hands the page's events to the capture's record
        self.record: PageRecord | None = None  # the last capture's


class StaleTab(Exception):
    """The last capture's page could not be left: the capture goes on in a new tab."""


def settle(
    tab: PlaywrightTab, record: PageRecord, options: CaptureOptions, deadline: float
) -> None:
    """After ``goto``: wait until the page starts no new navigation for
    ``SETTLE_WINDOW`` (an ``onload`` redirect or a meta refresh of 0 s starts at once, and
    is a page to wait for), watching for a redirect loop meanwhile."""
    arrived = record.started
    give_up = deadline - min(LOOP_CHECK, options.timeout / 10)
    while True:
        now = time.monotonic()
        if record.navigations >= LOOP_EARLY:
            raise RedirectLoop(record.navigations)
        if record.crashed:
            raise NavigationError(PAGE_CRASHED, code="tab crashed")
        quiet = now - record.changed
        if not record.pending and quiet >= SETTLE_WINDOW:
            break
        if now >= give_up:
            raise load_timeout(options)
        time.sleep(min(SETTLE_WINDOW, max(0.005, SETTLE_WINDOW - quiet)))
    if options.wait_until == "networkidle" and record.started != arrived:
        remaining = max(1.0, (deadline - time.monotonic()) * 1000)
        tab.call(tab.page.wait_for_load_state("networkidle", timeout=remaining))


async def open_page(
    call: Call,
    slot: Slot,
    url: str,
    options: CaptureOptions,
    record: PageRecord,
    timeout_ms: float,
) -> PlaywrightTab:
    """On the loop: the tab's page, the last capture's page left and everything it could
    leave behind wiped; this capture's cookies, block rules and record set."""
    context = slot.context
    context.set_default_timeout(timeout_ms)
    if slot.page is None:
        slot.page = await context.new_page()
        slot.session = await context.new_cdp_session(slot.page)
        slot.gone = watch_gone(slot.page)
        slot.relay = Relay(slot.page)
    else:
        try:
            await forget_previous_page(slot)
        except PlaywrightError as exc:  # the last page's fault (hung, crashed), not this URL's
            raise StaleTab(f"the previous page could not be left ({short(exc)})") from exc
    tab, session, relay = slot.page, slot.session, slot.relay
    assert session is not None and slot.gone is not None and relay is not None
    if options.cookies:
        await context.add_cookies(
            [{"name": name, "value": value, "url": url} for name, value in options.cookies]
        )
    if record.rules:
        await tab.route("**/*", record.route)
    record.follow(tab, "domcontentloaded" if options.wait_until == "domcontentloaded" else "load")
    slot.record = relay.record = record
    return PlaywrightTab(call, context, tab, session, slot.gone)


async def forget_previous_page(slot: Slot) -> None:
    """Leave the last capture's page, then wipe what a page can leave behind.

    The page is left first (for ``about:blank``, from inside the page so its renderer stays
    warm: closing the page and opening a new one cost a renderer process per capture, 2.5 x
    the CPU) because it keeps running after its capture: a timer or a ``pagehide`` handler
    could write again into freshly wiped storage. Then cookies, storage of every origin
    (local, session, IndexedDB, Cache Storage, service workers), permissions, the tab's
    history and ``window.name`` are cleared: the next capture sees what a fresh context would,
    but for the HTTP cache (:mod:`engines.isolation`). A page that will not go away raises
    (the capture fails as transient, the tab is closed, the next capture gets a new one).
    """
    tab, session, last = slot.page, slot.session, slot.record
    assert tab is not None and session is not None
    if last is not None and last.rules:
        await tab.unroute("**/*", last.route)
    if slot.gone is not None and slot.gone.is_set():
        # Crashed (or closed): a DevTools command to its renderer would wait for ever.
        raise PlaywrightError("the page crashed or was closed")
    if not tab.url.startswith("chrome-error:"):  # an error page runs no script
        # "Inspected target navigated": it left; no answer in time: the wait below decides.
        with contextlib.suppress(PlaywrightError, TimeoutError):
            await asyncio.wait_for(
                session.send("Runtime.evaluate", {"expression": LEAVE}), LEAVE_TIMEOUT
            )
    try:
        await tab.wait_for_url("about:blank", timeout=LEAVE_TIMEOUT * 1000)
    except PlaywrightTimeout:  # an error page, or a page fighting back: the browser's way
        await tab.goto("about:blank", timeout=LEAVE_TIMEOUT * 1000)
    try:
        nameless = await asyncio.wait_for(
            evaluate(session, page.BLANK_AND_NAMELESS), LEAVE_TIMEOUT
        )
    except TimeoutError:
        raise PlaywrightError("about:blank did not answer") from None
    if nameless is not True:
        await tab.evaluate("window.name = ''")  # Playwright waits for the new document's world
    await slot.context.clear_permissions()
    # Every origin's cookies too ("all"): a separate clear_cookies() was one more round trip
    # through Playwright's driver per capture for what this already does (the Selenium
    # engine's wipe is the same command; both pass the same isolation tests).
    await session.send("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
    await session.send("Page.resetNavigationHistory")


async def close_quietly(context: BrowserContext) -> None:
    with contextlib.suppress(PlaywrightError):
        await context.close()


def browser_gone(browser: Browser, tab: PlaywrightTab) -> bool:
    """After a failed navigation: whether the browser died, rather than the page failing.

    A browser killed in the middle of a navigation can abort it (``net::ERR_ABORTED``: its
    network service went first) a moment before Playwright hears it is gone; blaming the page
    would turn a transient failure into a permanent error row. One round trip to the browser,
    then a look at its process, tells the two apart (paid only by failed navigations).
    """
    try:
        tab.call(_ping(tab))
    except (PlaywrightError, CallTimeout, TimeoutError):
        return True
    return not browser.alive()


async def _ping(tab: PlaywrightTab) -> None:
    await asyncio.wait_for(tab.send("Browser.getVersion"), BROWSER_PING_TIMEOUT)
