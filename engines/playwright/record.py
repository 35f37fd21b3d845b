"""What one Playwright capture's page did, from Playwright's events: the capture's own record.

Requests, failures, blocked requests (the ``block`` rules are applied by routing every request
through :meth:`PageRecord.route`), console errors and the main frame's document responses,
from which the main document and the number of navigations (to tell a redirect loop) follow.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, Request, Response, Route
from playwright.sync_api import Error as PlaywrightError

from engines import page
from engines.chromium_engine import redirect_loop
from engines.page import Document
from screenshots.core.errors import RedirectLoop
from screenshots.core.result import MAX_CONSOLE_MESSAGES

#: Chromium's console messages about failed resources: counted as failed requests instead.
_RESOURCE_MESSAGE = "Failed to load resource:"
#: Milliseconds between two looks at a page watched for a redirect loop.
_LOOP_POLL_MS = 100


class PageRecord:
    """What one capture's page did: requests, failures, console errors, document responses."""

    def __init__(self, rules: page.BlockRules) -> None:
        self.rules = rules
        self.requests = 0
        self.failed = 0
        self.blocked = 0
        self.console: list[str] = []
        self.console_count = 0
        self.documents: list[Response] = []
        self._blocked: set[int] = set()
        self.main_frame: Any = None

    def follow(self, tab: Page) -> None:
        """Record what ``tab`` does from now on."""
        self.main_frame = tab.main_frame
        tab.on("request", self.on_request)
        tab.on("requestfailed", self.on_failed)
        tab.on("response", self.on_response)
        tab.on("console", self.on_console)
        tab.on("pageerror", self.on_page_error)

    @property
    def navigations(self) -> int:
        """Documents the main frame received, the one asked for included (redirects and
        same-document changes such as ``pushState`` are not navigations)."""
        return sum(1 for response in self.documents if not 300 <= response.status < 400)

    def on_request(self, request: Request) -> None:
        self.requests += 1

    def on_failed(self, request: Request) -> None:
        if id(request) not in self._blocked:
            self.failed += 1

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed += 1
        request = response.request
        if request.is_navigation_request() and request.frame == self.main_frame:
            self.documents.append(response)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(_RESOURCE_MESSAGE):
            self._add_console(message.text)

    def on_page_error(self, error: Any) -> None:
        self._add_console(str(error))

    def _add_console(self, text: str) -> None:
        self.console_count += 1
        if len(self.console) < MAX_CONSOLE_MESSAGES:
            self.console.append(page.clip_message(text))

    def route(self, route: Route) -> None:
        request = route.request
        if self.rules.blocks(request.url, request.resource_type):
            self.blocked += 1
            self._blocked.add(id(request))
            route.abort("blockedbyclient")
        else:
            route.continue_()

    def document(self) -> Document | None:
        """The last main-frame document response, as the Selenium engine describes one."""
        if not self.documents:
            return None
        response = self.documents[-1]
        mime = (response.headers.get("content-type") or "").split(";")[0].strip() or None
        return Document(url=response.url, status=response.status, mime_type=mime)

    def watch_for_loop(self, tab: Page, deadline: float, watch: float) -> RedirectLoop | None:
        """A :class:`~screenshots.core.errors.RedirectLoop` if the page keeps navigating on its
        own.

        A page that has navigated by itself at least once is watched for up to ``watch``
        seconds (within the deadline) to see whether it goes on.
        """
        watch_until = min(deadline, time.monotonic() + watch)
        while self.navigations < page.LOOP_NAVIGATIONS and self.navigations >= 2:
            if time.monotonic() >= watch_until:
                break
            try:
                tab.wait_for_timeout(_LOOP_POLL_MS)
            except PlaywrightError:
                break
        return redirect_loop(self.navigations)
