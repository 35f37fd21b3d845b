"""What one Playwright capture's page did, from Playwright's events: the capture's own record.

Requests, failures, blocked requests (the ``block`` rules are applied by routing every request
through :meth:`PageRecord.route`), console errors and the main frame's document responses,
from which the main document and the number of navigations (to tell a redirect loop) follow.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.async_api import ConsoleMessage, Page, Request, Response, Route

from engines import page
from engines.chromium_engine import redirect_loop
from engines.page import Document, is_challenge
from screenshots.core.errors import RedirectLoop
from screenshots.core.result import MAX_CONSOLE_MESSAGES

#: Chromium's console messages about failed resources: counted as failed requests instead.
_RESOURCE_MESSAGE = "Failed to load resource:"
#: Statuses of a navigation's answer that bring no new document (the page stays).
NO_DOCUMENT = (204, 205)
#: Seconds between two looks at a page watched for a redirect loop.
_LOOP_POLL = 0.1


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
        #: The page's renderer crashed (Playwright's ``crash`` event).
        self.crashed = False
        #: Main-frame navigation requests started (redirects included); when the page's
        #: navigation state last changed (``time.monotonic``).
        self.started = 0
        self.changed = time.monotonic()
        # A navigation request started since the last document arrived; that document has
        # had its ready event. Playwright may tell a page's ``load`` after the request of the
        # navigation its onload handler started, so the document's answer is what marks a new
        # document coming, not the request.
        self._requested = False
        self._ready = True
        self.ready_event = "load"

    def follow(self, tab: Page, ready: str = "load") -> None:
        """Record what ``tab`` does from now on (its :class:`Relay` hands this record its
        events); ``ready`` is the page event (``load`` or ``domcontentloaded``) at which a
        main-frame navigation counts as arrived."""
        self.main_frame = tab.main_frame
        self.ready_event = ready

    @property
    def navigations(self) -> int:
        """Documents the main frame received, the one asked for included (redirects and
        same-document changes such as ``pushState`` are not navigations)."""
        return sum(1 for response in self.documents if not 300 <= response.status < 400)

    def on_request(self, request: Request) -> None:
        self.requests += 1
        if request.is_navigation_request() and request.frame == self.main_frame:
            self.started += 1
            self._requested = True
            self.changed = time.monotonic()

    def on_load(self, tab: Page) -> None:
        if self.ready_event == "load":
            self.on_ready(tab)

    def on_dom_content_loaded(self, tab: Page) -> None:
        if self.ready_event == "domcontentloaded":
            self.on_ready(tab)

    def on_ready(self, tab: Page) -> None:
        self._ready = True
        self.changed = time.monotonic()

    @property
    def pending(self) -> bool:
        """Whether the main frame is on its way to another document (or waits for the last
        one's ready event)."""
        return self._requested or not self._ready

    def on_failed(self, request: Request) -> None:
        if id(request) not in self._blocked:
            self.failed += 1
        if request.is_navigation_request() and request.frame == self.main_frame:
            self._requested = False  # no new document is coming
            self.changed = time.monotonic()

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed += 1
        request = response.request
        if request.is_navigation_request() and request.frame == self.main_frame:
            self.documents.append(response)
            if not 300 <= response.status < 400:  # a redirect's next request is coming
                self._requested = False
                if response.status not in NO_DOCUMENT:  # else the page stays where it is
                    self._ready = False
                self.changed = time.monotonic()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith(_RESOURCE_MESSAGE):
            self._add_console(message.text)

    def on_page_error(self, error: Any) -> None:
        self._add_console(str(error))

    def on_crash(self, tab: Page) -> None:
        self.crashed = True

    def _add_console(self, text: str) -> None:
        self.console_count += 1
        if len(self.console) < MAX_CONSOLE_MESSAGES:
            self.console.append(page.clip_message(text))

    async def route(self, route: Route) -> None:
        request = route.request
        if self.rules.blocks(request.url, request.resource_type):
            self.blocked += 1
            self._blocked.add(id(request))
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    def document(self) -> Document | None:
        """The last main-frame document response, as the Selenium engine describes one."""
        if not self.documents:
            return None
        response = self.documents[-1]
        mime = (response.headers.get("content-type") or "").split(";")[0].strip() or None
        return Document(
            url=response.url,
            status=response.status,
            mime_type=mime,
            challenge=is_challenge(response.status, response.headers),
        )

    def watch_for_loop(self, deadline: float, watch: float) -> RedirectLoop | None:
        """A :class:`~screenshots.core.errors.RedirectLoop` if the page keeps navigating on its
        own.

        A page that has navigated by itself at least once is watched for up to ``watch``
        seconds (within the deadline) to see whether it goes on.
        """
        watch_until = min(deadline, time.monotonic() + watch)
        while self.navigations < page.LOOP_NAVIGATIONS and self.navigations >= 2:
            if time.monotonic() >= watch_until:
                break
            time.sleep(_LOOP_POLL)  # the loop thread records the page's navigations
        return redirect_loop(self.navigations)


class Relay:
    """A tab's listeners, attached once for the page's life, handing each event to the record
    of the capture in progress (``record``, switched by the engine on the loop).

    Attaching and removing listeners per capture would cost Playwright a subscription message
    to its driver for each of the page's network and console events, twice per capture.
    """

    def __init__(self, tab: Page) -> None:
        self.record: PageRecord | None = None
        events: list[tuple[str, str]] = [
            ("load", "on_load"),
            ("domcontentloaded", "on_dom_content_loaded"),
            ("request", "on_request"),
            ("requestfailed", "on_failed"),
            ("response", "on_response"),
            ("console", "on_console"),
            ("pageerror", "on_page_error"),
            ("crash", "on_crash"),
        ]
        for event, method in events:
            tab.on(event, self._handler(method))  # type: ignore[call-overload]

    def _handler(self, method: str) -> Any:
        def handle(argument: Any) -> None:
            record = self.record
            if record is not None:
                getattr(record, method)(argument)

        return handle
