"""The network of one capture, as the tab's DevTools events tell it.

What the main document answered (status, URL after redirects, MIME type, network error) comes
from the DevTools ``Network`` events of the main frame's document request, which the tab's
websocket delivers (:mod:`engines.selenium.cdptab`); so do the request counts and what is still
in flight (for ``networkidle``). The page's own state (``document.URL``) catches Chromium's
error page. Both are needed: a download or an HTTP 204 leaves the *previous* page on screen
with no error page at all, and only the network events tell.
"""

from __future__ import annotations

import time
from typing import Any

from engines.page import Document, is_challenge

#: Seconds a navigation the main frame asked for may take to start before it no longer holds
#: the capture (one that never starts: a cancelled meta refresh); also the longest meta
#: refresh delay waited for.
COMING_MAX = 1.0
#: Page events saying the main frame is about to leave its document.
_ABOUT_TO_NAVIGATE = frozenset(
    {
        "Page.frameScheduledNavigation",
        "Page.frameRequestedNavigation",
        "Page.frameStartedNavigating",
    }
)
_SAME_DOCUMENT = frozenset({"sameDocument", "historySameDocument"})


class NetworkLog:
    """Every request of one capture, from the tab's DevTools events.

    Counts requests, failures (no answer, or HTTP >= 400) and blocked requests, and knows what
    is still in flight (for ``networkidle``). The browser's own favicon request is not the
    page's: it is left out (Playwright's pages do not make it). For the main frame
    (``frame_id``) it keeps the documents asked for, in order (``documents``: a redirect is
    part of its document, which moves on to the new URL), counts them (``navigations``) and
    knows whether the last one is ``ready`` (its ``DOMContentLoaded`` fired) and has ``loaded``
    (its ``load`` event fired, or it failed and left the previous page up). Each event is read
    once, as it is fed.
    """

    def __init__(self, frame_id: str = "") -> None:
        self.frame_id = frame_id
        self.documents: dict[str, Document] = {}  # by request id
        self.requests = 0
        self.failed = 0
        self.blocked = 0
        self.navigations = 0
        self.loaded = False
        self.ready = False
        self.in_flight: set[str] = set()
        self.last_activity = time.monotonic()
        self._ignored: set[str] = set()
        self._coming_until = 0.0  # see coming()
        # A document asked for and not yet committed: the load events until its commit are the
        # previous document's (an onload redirect's request is sent before the old page's
        # ``Page.loadEventFired`` arrives; counting it left a capture of the page in between).
        self._committing = False

    def feed_event(self, method: str, params: dict[str, Any]) -> None:
        """Take one DevTools event into account (others than the ones counted are ignored)."""
        if method.startswith("Page."):
            self._follow_page(method, params)
            return
        if not method.startswith("Network."):
            return
        request_id = str(params.get("requestId"))
        self.last_activity = time.monotonic()
        if request_id in self._ignored:
            return
        self._follow_document(method, params, request_id)
        if method == "Network.requestWillBeSent":
            request = params.get("request") or {}
            if params.get("type") == "Other" and str(request.get("url", "")).endswith(
                "/favicon.ico"
            ):
                self._ignored.add(request_id)
                return
            self.requests += 1
            self.in_flight.add(request_id)
        elif method == "Network.responseReceived":
            if (params.get("response") or {}).get("status", 0) >= 400:
                self.failed += 1
        elif method == "Network.loadingFinished":
            self.in_flight.discard(request_id)
        elif method == "Network.loadingFailed":
            self.in_flight.discard(request_id)
            if params.get("blockedReason"):
                self.blocked += 1
            else:
                self.failed += 1

    def coming(self) -> bool:
        """Whether the main frame is about to navigate (a meta refresh or a script asked for
        it, the request is not made yet): the page on screen is not the one to capture."""
        return time.monotonic() < self._coming_until

    def _follow_page(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            if not self._committing:
                self.loaded = self.ready = True
        elif method == "Page.domContentEventFired":
            if not self._committing:
                self.ready = True
        elif method == "Page.frameNavigated":
            if (params.get("frame") or {}).get("id") == self.frame_id:
                self._coming_until = 0.0
                if params.get("type", "Navigation") == "Navigation" and self._committing:
                    self._committing = False
                    self.loaded = self.ready = False  # the new document's own events follow
        elif params.get("frameId") != self.frame_id:
            return
        elif method == "Page.frameScheduledNavigation" and params.get("delay", 0) > COMING_MAX:
            return  # a slow meta refresh: the page is captured before it
        elif (
            method in _ABOUT_TO_NAVIGATE
            and params.get("navigationType") not in _SAME_DOCUMENT
            and params.get("disposition", "currentTab") == "currentTab"
        ):
            self._coming_until = time.monotonic() + COMING_MAX

    def _follow_document(self, method: str | None, params: dict[str, Any], request_id: Any) -> None:
        if method == "Network.requestWillBeSent":
            if (
                params.get("type") == "Document"
                and params.get("frameId") == self.frame_id
                and request_id == params.get("loaderId")
            ):
                if request_id not in self.documents:  # else a redirect: the same document
                    self.navigations += 1
                    self.loaded = self.ready = False
                    self._coming_until = 0.0
                    self._committing = True
                url = (params.get("request") or {}).get("url", "")
                self.documents[request_id] = Document(url=str(url))
            return
        document = self.documents.get(request_id)
        if document is None:
            return
        if method == "Network.responseReceived":
            response = params.get("response") or {}
            document.url = response.get("url", document.url)
            document.status = response.get("status")
            document.mime_type = response.get("mimeType")
            document.challenge = is_challenge(document.status, response.get("headers"))
        elif method == "Network.loadingFailed":
            document.error = params.get("errorText") or "net::ERR_FAILED"
            self._committing = False
            self.loaded = self.ready = True  # nothing new to load: the previous page stays up


def main_document(documents: list[Document], error_page: bool) -> Document | None:
    """The document on screen: with several (a JavaScript redirect), the last one that loaded.

    A failure counts only when nothing loaded (a download started by a loaded page leaves that
    page up) or when Chromium shows its error page (then the last failure is the reason).
    """
    failed = [d for d in documents if d.error is not None]
    loaded = [d for d in documents if d.error is None and d.status is not None]
    if error_page:
        return failed[-1] if failed else None
    if loaded:
        return loaded[-1]
    if failed:
        return failed[-1]
    return documents[-1] if documents else None
