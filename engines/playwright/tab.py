"""A Playwright page as the shared capture steps of :mod:`engines.tab` talk to it.

Scripts go through Playwright's ``evaluate`` (the context bypasses the page's CSP when the
shot injects anything), waits use Playwright's own (``wait_for_selector``,
``wait_for_function``), and DevTools commands go through one CDP session per capture, opened
on first use. Chromium may have no frame to capture yet on a loaded machine: the screenshot is
tried again a few times before the page counts as hung.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import BrowserContext, CDPSession, Page
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from engines import page
from engines.chromium_engine import short
from engines.tab import Tab
from screenshots.core.errors import CaptureTimeout, PermanentError

#: Attempts at a screenshot Chromium could not take (no frame yet, on a loaded machine).
SCREENSHOT_ATTEMPTS = 3
#: Milliseconds before retrying such a screenshot, times the attempt number.
SCREENSHOT_RETRY_MS = 200
#: Words of Playwright's errors when the page or browser went away.
_CRASH_WORDS = ("has been closed", "Target crashed", "Target closed", "Browser closed",
                "Connection closed", "browser has disconnected")
#: Milliseconds between two looks at a ``wait_for_js`` condition.
_POLL_MS = 100


class PlaywrightTab(Tab):
    """One capture's page (and its context, for the DevTools session)."""

    def __init__(self, context: BrowserContext, tab: Page) -> None:
        self.context = context
        self.page = tab
        self._session: CDPSession | None = None

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        return self.page.evaluate(expression)  # a promise is always awaited

    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is None:
            self._session = self.context.new_cdp_session(self.page)
        result: dict[str, Any] = self._session.send(method, params)
        return result

    def close(self) -> None:
        """Detach the DevTools session, if one was opened."""
        session, self._session = self._session, None
        if session is not None:
            session.detach()

    def run_js(self, expression: str) -> None:
        try:
            self.page.evaluate(expression)
        except PlaywrightError as exc:
            if is_crash(exc):
                raise
            raise PermanentError(short(exc)) from None

    def wait_visible(self, selector: str, deadline: float) -> bool:
        try:
            self.page.wait_for_selector(selector, state="visible", timeout=_timeout(deadline))
        except PlaywrightTimeout:
            return False
        return True

    def wait_truthy(self, expression: str, deadline: float) -> bool:
        script = page.truthy_script(expression)
        try:
            self.page.wait_for_function(script, timeout=_timeout(deadline), polling=_POLL_MS)
        except PlaywrightTimeout:
            return False
        return True

    def pause(self, seconds: float) -> None:
        self.page.wait_for_timeout(seconds * 1000)

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
                self.page.wait_for_timeout(SCREENSHOT_RETRY_MS * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def is_crash(exc: BaseException) -> bool:
    """Whether a Playwright error means the page or the browser went away."""
    text = str(exc)
    return any(word in text for word in _CRASH_WORDS)


def _timeout(deadline: float) -> float:
    """Milliseconds left until ``deadline``, at least 1 (Playwright's timeouts)."""
    return max(1.0, (deadline - time.monotonic()) * 1000)
