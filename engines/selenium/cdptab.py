"""One tab of the Selenium engine's browser, driven over its own DevTools websocket.

ChromeDriver starts and owns the browser (:mod:`engines.selenium.driver`); the captures run in
tabs the engine opens itself, each in a browser context of its own
(``Target.createBrowserContext``), so that captures in flight at the same time never share
cookies, storage or permissions. A tab is reused from capture to capture: before each one
:meth:`CdpTab.forget_previous_page` leaves the last page and wipes what it could leave behind,
and :meth:`CdpTab.prepare` sets every emulation to this shot's value (sending only what changed
since the tab's last capture). Scripts run through ``Runtime.evaluate``, so the page's
Content-Security-Policy does not apply to them.

Events arrive on the websocket's reader thread and are queued; the capturing thread feeds them
to the capture's network record (:class:`~engines.selenium.network.NetworkLog`) when it looks
(:meth:`CdpTab.read_network`). Every command waits at most until the capture's deadline, so a
page stuck in a loop costs its own capture only; the engine's watchdog closes such a tab.
"""

from __future__ import annotations

import contextlib
import queue
import time
from typing import TYPE_CHECKING, Any

from engines import chromium, page
from engines.isolation import CacheState
from engines.selenium import cdp
from engines.selenium.network import NetworkLog
from engines.tab import Tab
from screenshots.core.errors import PermanentError
from screenshots.core.options import CaptureOptions

if TYPE_CHECKING:
    from engines.selenium.driver import Browser

#: Seconds the previous capture's page gets to give way to ``about:blank`` before the tab
#: is replaced instead (a page cannot keep a tab that must be wiped).
LEAVE_TIMEOUT = 2.0
#: Seconds between two looks at the page while it is left: the first, and the most.
LEAVE_POLL_FIRST = 0.005
LEAVE_POLL_MAX = 0.1
#: Seconds a command may take when no capture deadline applies (setting a tab up, wiping it).
SETUP_TIMEOUT = 5.0
#: The shortest wait given to a command near the deadline.
MIN_COMMAND_TIMEOUT = 0.05

#: The document's URL, title and console errors (see :data:`engines.page.READ_CONSOLE`); a
#: page that breaks the console read gets no console errors, not a failed capture.
_READ_DOCUMENT = (
    "(() => { let console = [0, []]; try { console = "
    f"{page.READ_CONSOLE}; }} catch (e) {{}} return [document.URL, document.title, console]; }})()"
)


class StaleTab(Exception):
    """The previous capture's page could not be left or wiped: use a new tab instead."""


class TabCrashed(Exception):
    """The page crashed its renderer (``Inspector.targetCrashed``)."""


class CdpTab(Tab):
    """A page target in a browser context of its own, its websocket and the current capture."""

    def __init__(self, browser: Browser, context_id: str, target_id: str) -> None:
        self.browser = browser
        self.context_id = context_id
        self.target_id = target_id
        self.crashed = False
        self.captures = 0
        self.deadline: float | None = None  # the current capture's, bounding every command
        self.network: NetworkLog | None = None  # the current capture's requests
        self.viewport: tuple[int, int] | None = None
        self.scale = 1.0
        self._applied: dict[str, Any] = {}
        self._events: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self.cache = CacheState()  # the HTTP cache of the tab's browser context
        self.connection = cdp.Connection(
            cdp.page_url(browser.address, target_id), self._on_event, name="tab"
        )
        self.cdp("Page.enable")
        self.cdp("Network.enable")
        self.cdp("Inspector.enable")
        # print() and alert()/confirm()/prompt() would stall or block the page; the console
        # hook counts console.error and uncaught errors.
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": chromium.PAGE_GUARD_SCRIPT})
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": page.CONSOLE_HOOK})
        self.frame_id = str(self.cdp("Page.getFrameTree")["frameTree"]["frame"]["id"])

    # -- events ----------------------------------------------------------------------------

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        """In the reader thread: note a crash, dismiss dialogs, queue the rest."""
        if method == "Inspector.targetCrashed":
            self.crashed = True
            self.connection.close()
            return
        if method == "Page.javascriptDialogOpening":
            # A beforeunload prompt must not keep the page; any other dialog is dismissed.
            leave = params.get("type") == "beforeunload"
            self.connection.post("Page.handleJavaScriptDialog", {"accept": leave})
            return
        self._events.put((method, params))

    def read_network(self) -> None:
        """Feed the events that arrived since the last look to the capture's record."""
        network = self.network
        while True:
            try:
                method, params = self._events.get_nowait()
            except queue.Empty:
                return
            if network is not None:
                network.feed_event(method, params)

    def pause_for_events(self, seconds: float) -> None:
        """Wait up to ``seconds``, less if an event arrives (then feed it and what follows)."""
        try:
            item = self._events.get(timeout=max(0.0, seconds))
        except queue.Empty:
            return
        if self.network is not None:
            self.network.feed_event(*item)
        self.read_network()

    # -- Tab -------------------------------------------------------------------------------

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """Evaluate ``expression`` in the page (the page's CSP does not apply). A JavaScript
        exception raises :class:`~screenshots.core.errors.PermanentError` with its message."""
        result = self.cdp(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
        )
        details = result.get("exceptionDetails")
        if details:
            exception = details.get("exception") or {}
            text = exception.get("description") or details.get("text") or "error"
            raise PermanentError(str(text).splitlines()[0][:300])
        return result.get("result", {}).get("value")

    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A DevTools command for this tab, answered before the capture's deadline."""
        try:
            return self.connection.send(method, params, self.command_timeout())
        except cdp.Closed:
            if self.crashed:
                raise TabCrashed(method) from None
            raise

    def pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.crashed or self.connection.closed:
                raise TabCrashed("pause") if self.crashed else cdp.Closed("the tab was closed")
            time.sleep(min(left, 0.1))

    def command_timeout(self) -> float:
        if self.deadline is None:
            return SETUP_TIMEOUT
        return max(MIN_COMMAND_TIMEOUT, self.deadline - time.monotonic())

    # -- between captures ------------------------------------------------------------------

    def set_viewport(self, options: CaptureOptions) -> None:
        """The shot's viewport and scale (sent only when they change)."""
        if self.viewport == (options.width, options.height) and self.scale == options.scale:
            return
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": options.width,
                "height": options.height,
                "deviceScaleFactor": options.scale,
                "mobile": False,
            },
        )
        self.viewport = (options.width, options.height)
        self.scale = options.scale

    def forget_previous_page(self) -> None:
        """Leave the previous capture's page, then wipe everything a page can leave behind.

        The page is left first (for ``about:blank``, from inside the page so its renderer
        stays warm) because it keeps running after its capture: a timer or a ``pagehide``
        handler could write again into freshly wiped storage. Then cookies, local and session
        storage, IndexedDB, Cache Storage, service workers (``Storage.clearDataForOrigin`` with
        ``*``, every type, in this tab's browser context), granted permissions, the tab's
        history and ``window.name`` are cleared: the next capture sees what a fresh browser
        would, but for the HTTP cache, which :meth:`prepare` sets by :mod:`engines.isolation`.
        A page that will not go away raises :class:`StaleTab`: the capture goes on in a new tab.
        """
        self.deadline = None
        with contextlib.suppress(cdp.CdpError):  # "Inspected target navigated": it left
            self.cdp("Runtime.evaluate", {"expression": "location.replace('about:blank')"})
        deadline = time.monotonic() + LEAVE_TIMEOUT
        pause = LEAVE_POLL_FIRST
        while (state := self._blank_state()) is not True:
            if state == "error page" or time.monotonic() >= deadline:
                # An error page, or a page fighting back: a browser-side navigation works.
                self.cdp("Page.navigate", {"url": "about:blank"})
                if self.evaluate(page.BLANK_AND_NAMELESS) is not True:
                    raise StaleTab("the previous page would not give way to about:blank")
                break
            time.sleep(pause)
            pause = min(LEAVE_POLL_MAX, pause * 2)
        self.cdp("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
        self.browser.browser_command(
            "Browser.resetPermissions", {"browserContextId": self.context_id}
        )
        self.cdp("Page.resetNavigationHistory")

    def _blank_state(self) -> object:
        """:data:`engines.page.BLANK_AND_NAMELESS` in the page; ``False`` while it is being
        replaced."""
        try:
            return self.evaluate(page.BLANK_AND_NAMELESS)
        except cdp.CdpError:  # the context went away under the command: not there yet
            return False

    def prepare(self, url: str, options: CaptureOptions, private: bool) -> None:
        """Set the tab up for this capture: every emulation to this shot's value, its cookies,
        the HTTP cache (``private``: neither read nor kept, see :mod:`engines.isolation`)."""
        cdp_command = self.cdp
        self.cache.apply(private, cdp_command)
        wanted: dict[str, Any] = {
            "media": (options.dark_mode, options.reduced_motion),
            "timezone": options.timezone or "",
            "locale": options.locale,
            "agent": (options.user_agent, options.locale),
            "headers": dict(options.headers),
            "blocked": page.BlockRules.of(options).url_patterns(),
            "csp": page.needs_csp_bypass(options),
        }
        applied = self._applied

        def changed(name: str) -> bool:
            return name not in applied or applied[name] != wanted[name]

        if changed("media"):
            reduce = "reduce" if options.reduced_motion else ""
            features = [
                {"name": "prefers-color-scheme", "value": "dark" if options.dark_mode else ""},
                {"name": "prefers-reduced-motion", "value": reduce},
            ]
            cdp_command("Emulation.setEmulatedMedia", {"media": "", "features": features})
        if changed("timezone"):
            cdp_command("Emulation.setTimezoneOverride", {"timezoneId": wanted["timezone"]})
        if changed("locale"):
            cdp_command("Emulation.setLocaleOverride")
            if options.locale:
                cdp_command("Emulation.setLocaleOverride", {"locale": options.locale})
        if changed("agent"):
            agent: dict[str, Any] = {
                "userAgent": options.user_agent or self.browser.default_user_agent
            }
            if options.locale:
                agent["acceptLanguage"] = options.locale
            cdp_command("Network.setUserAgentOverride", agent)
        if changed("headers"):
            cdp_command("Network.setExtraHTTPHeaders", {"headers": wanted["headers"]})
        if changed("blocked"):
            cdp_command("Network.setBlockedURLs", {"urls": wanted["blocked"]})
        if changed("csp"):
            cdp_command("Page.setBypassCSP", {"enabled": wanted["csp"]})
        applied.update(wanted)
        if options.cookies:
            cookies = [{"name": n, "value": v, "url": url} for n, v in options.cookies]
            cdp_command("Network.setCookies", {"cookies": cookies})

    # -- during a capture ------------------------------------------------------------------

    def start_network_log(self) -> NetworkLog:
        """Drop the events of earlier pages; a new record for this capture's navigation."""
        self.network = None
        self.read_network()
        network = self.network = NetworkLog(self.frame_id)
        return network

    def navigate(self, url: str, until: float) -> str | None:
        """Start loading ``url``; the browser's network error, if it failed at once. Waits for
        the navigation to commit at most until ``until`` (:class:`cdp.CommandTimeout`)."""
        pending = self.connection.post("Page.navigate", {"url": url})
        timeout = max(MIN_COMMAND_TIMEOUT, until - time.monotonic())
        try:
            result = self.connection.wait(pending, "Page.navigate", timeout)
        except cdp.Closed:
            if self.crashed:
                raise TabCrashed("Page.navigate") from None
            raise
        error = result.get("errorText")
        return str(error) if error else None

    def read_document(self) -> tuple[str, str | None, tuple[int, list[str]]]:
        """The page's URL, title and console errors (count, first messages)."""
        page_url, title, console = self.evaluate(_READ_DOCUMENT)
        errors, messages = console if isinstance(console, list) else (0, [])
        return str(page_url), (str(title) if title is not None else None), (
            int(errors),
            list(messages),
        )

    # -- end -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the tab and its browser context (any thread; the browser may be gone)."""
        self.connection.close()
        self.browser.close_tab(self)
