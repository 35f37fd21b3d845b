"""The Selenium engine's reading of a tab's DevTools events (``engines.selenium.network``), without
a browser: event orders recorded from Chromium, fed as they arrived."""

from __future__ import annotations

from typing import Any

from engines.selenium.network import NetworkLog

FRAME = "F1"


def _document(request_id: str, url: str) -> tuple[str, dict[str, Any]]:
    return (
        "Network.requestWillBeSent",
        {
            "requestId": request_id,
            "loaderId": request_id,
            "frameId": FRAME,
            "type": "Document",
            "request": {"url": url},
        },
    )


def _answer(request_id: str, url: str) -> tuple[str, dict[str, Any]]:
    return (
        "Network.responseReceived",
        {"requestId": request_id, "type": "Document", "response": {"url": url, "status": 200}},
    )


def _committed() -> tuple[str, dict[str, Any]]:
    return ("Page.frameNavigated", {"frame": {"id": FRAME}, "type": "Navigation"})


LOADED: tuple[str, dict[str, Any]] = ("Page.loadEventFired", {})
READY: tuple[str, dict[str, Any]] = ("Page.domContentEventFired", {})


def _feed(log: NetworkLog, *events: tuple[str, dict[str, Any]]) -> None:
    for method, params in events:
        log.feed_event(method, params)


def test_an_onload_redirect_is_not_loaded_by_the_previous_pages_load_event() -> None:
    """Chromium sends the redirect's request before the first page's ``load`` event (recorded:
    the order below, every time); that event is the first page's, not the redirect's."""
    log = NetworkLog(FRAME)
    _feed(log, _document("A", "http://site/first"), _answer("A", "http://site/first"), _committed())
    _feed(log, READY, ("Page.frameRequestedNavigation", {"frameId": FRAME}))
    _feed(log, _document("B", "http://site/slow"), LOADED)
    assert not log.loaded and not log.ready
    _feed(log, _answer("B", "http://site/slow"), _committed())
    assert not log.loaded, "committed, but the new page has not loaded yet"
    _feed(log, READY, LOADED)
    assert log.loaded and log.navigations == 2


def test_a_failed_navigation_leaves_the_previous_page_loaded() -> None:
    log = NetworkLog(FRAME)
    _feed(log, _document("A", "http://site/first"), _answer("A", "http://site/first"), _committed())
    _feed(log, READY, LOADED, _document("B", "http://site/file.zip"))
    assert not log.loaded
    log.feed_event("Network.loadingFailed", {"requestId": "B", "errorText": "net::ERR_ABORTED"})
    assert log.loaded and log.documents["B"].error == "net::ERR_ABORTED"
