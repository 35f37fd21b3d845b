"""A Playwright page as the shared capture steps of :mod:`engines.tab` talk to it.

The steps run in the capturing thread; every Playwright call they make is a coroutine handed
to the engine's loop (``call``: :meth:`engines.playwright.thread.EngineLoop.call` with the
capture's time limit), so several tabs' steps run at once. Scripts go through Playwright's
``evaluate`` (the context bypasses the page's CSP when the shot injects anything), waits use
Playwright's own (``wait_for_selector``, ``wait_for_function``), and DevTools commands go
through the capture's CDP session, opened on first use. Chromium may have no frame to capture
yet on a loaded machine: the screenshot is tried again a few times before the page counts as
hung.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from playwright.async_api import BrowserContext, CDPSession, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from engines import page
from engines.chromium_engine import short
from engines.tab import Tab
from screenshots.core.errors import CaptureTimeout, PermanentError

#: Attempts at a screenshot Chromium could not take (no frame yet, on a loaded machine).
SCREENSHOT_ATTEMPTS = 3
#: Seconds before retrying such a screenshot, times the attempt number.
SCREENSHOT_RETRY = 0.2
#: Words of Playwright's errors when the page or browser went away.
_CRASH_WORDS = (
    "has been closed",
    "Target crashed",
    "Target closed",
    "Browser closed",
    "Connection closed",
    "browser has disconnected",
)
#: Milliseconds between two looks at a ``wait_for_js`` condition.
_POLL_MS = 100

#: Runs a coroutine on the engine's loop and returns its result (in the capturing thread).
Call = Callable[[Coroutine[Any, Any, Any]], Any]


class PlaywrightTab(Tab):
    """One capture's page (and its context, for the DevTools session)."""

    def __init__(
        self,
        call: Call,
        context: BrowserContext,
        tab: Page,
        session: CDPSession | None = None,
        gone: threading.Event | None = None,
    ) -> None:
        self.call = call
        self.context = context
        self.page = tab
        self.session = session
        #: Set (on the loop) when the page is closed or its renderer crashes.
        self.gone = gone if gone is not None else watch_gone(tab)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        return self.call(self.page.evaluate(expression))  # a promise is always awaited

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command for the page (on the loop)."""
        if self.session is None:
            self.session = await self.context.new_cdp_session(self.page)
        result: dict[str, Any] = await self.session.send(method, params)
        return result

    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call(self.send(method, params))
        return result

    def title(self) -> str | None:
        """The page's title (see :func:`evaluate`)."""
        if self.session is None or self.gone.is_set():  # Playwright says what happened
            return str(self.call(self.page.title()))
        title = self.call(evaluate(self.session, page.READ_TITLE))
        return str(title) if title is not None else None

    def run_js(self, expression: str) -> None:
        try:
            self.call(self.page.evaluate(expression))
        except PlaywrightError as exc:
            if is_crash(exc):
                raise
            raise PermanentError(short(exc)) from None

    def wait_visible(self, selector: str, deadline: float) -> bool:
        wait = self.page.wait_for_selector(selector, state="visible", timeout=_timeout(deadline))
        try:
            self.call(wait)
        except PlaywrightTimeout:
            return False
        return True

    def wait_truthy(self, expression: str, deadline: float) -> bool:
        script = page.truthy_script(expression)
        wait = self.page.wait_for_function(script, timeout=_timeout(deadline), polling=_POLL_MS)
        try:
            self.call(wait)
        except PlaywrightTimeout:
            return False
        return True

    def pause(self, seconds: float) -> None:
        if self.gone.wait(seconds):  # closed or crashed meanwhile: raise what happened
            self.evaluate("0")

    def capture_screenshot(self, params: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(1, SCREENSHOT_ATTEMPTS + 1):
            try:
                return self.cdp("Page.captureScreenshot", params)
            except PlaywrightError as exc:
                # A page just created may have no frame to capture yet on a loaded machine; a
                # page whose script never yields (busy after load) never renders one: it is
                # hung.
                if "Unable to capture screenshot" not in str(exc):
                    raise
                if attempt == SCREENSHOT_ATTEMPTS:
                    raise CaptureTimeout(
                        "the page rendered no frame to capture (its script never yields)"
                    ) from exc
                time.sleep(SCREENSHOT_RETRY * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


async def evaluate(session: CDPSession, expression: str) -> Any:
    """The value of ``expression`` in the page's main world, through DevTools
    ``Runtime.evaluate`` (``None`` if it threw).

    Playwright's own ``evaluate`` first installs its utility script (13.7 kB of JavaScript)
    in every new document it evaluates in; a capture evaluated in three documents (leaving the
    last page, wiping ``window.name`` on ``about:blank``, reading the title), so every capture
    paid it three times. The scripts sent this way are the Selenium engine's, in the same
    world.
    """
    result = await session.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}
    )
    if result.get("exceptionDetails"):
        return None
    return result.get("result", {}).get("value")


def watch_gone(tab: Page) -> threading.Event:
    """An event set (on the loop) when ``tab`` is closed or its renderer crashes."""
    gone = threading.Event()
    tab.on("close", lambda _page: gone.set())
    tab.on("crash", lambda _page: gone.set())
    return gone


def is_crash(exc: BaseException) -> bool:
    """Whether a Playwright error means the page or the browser went away."""
    text = str(exc)
    return any(word in text for word in _CRASH_WORDS)


def _timeout(deadline: float) -> float:
    """Milliseconds left until ``deadline``, at least 1 (Playwright's timeouts)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)
