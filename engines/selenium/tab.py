"""The browser's tab as the Selenium engine uses it: set up for a capture, wiped after one.

ChromeDriver drives one tab per browser, reused from capture to capture. Before each capture
:meth:`SeleniumTab.forget_previous_page` leaves the last page and wipes what it could leave
behind, and :meth:`SeleniumTab.prepare` sets every emulation to this shot's value (sending only
what changed since the last capture). Scripts run through DevTools ``Runtime.evaluate``, so the
page's Content-Security-Policy does not apply to them. The tab also holds what is per capture:
the network record of the capture in progress (:attr:`SeleniumTab.network`).
"""

from __future__ import annotations

import time
from typing import Any

from selenium import webdriver
from selenium.webdriver.remote.command import Command

from engines import page
from engines.isolation import CacheState
from engines.selenium.network import NetworkLog
from engines.tab import Tab
from screenshots.core.errors import PermanentError
from screenshots.core.options import CaptureOptions

#: Seconds the previous capture's page gets to give way to ``about:blank`` before the browser
#: is replaced instead (a page cannot keep a browser that must be wiped).
LEAVE_TIMEOUT = 2.0
#: Seconds between two looks at the page while it is left: the first, and the most (the pause
#: doubles in between).
LEAVE_POLL_FIRST = 0.005
LEAVE_POLL_MAX = 0.1
#: A page-load timeout already set is kept if within this many seconds of the wanted one
#: (saves one WebDriver round trip per capture; the watchdog grace covers the difference).
TIMEOUT_SLACK = 0.5

#: On ``about:blank``, clears ``window.name`` (it outlives navigations) and says ``true``;
#: ``"error page"`` on Chromium's error page (it ignores ``location.replace``). ``location``
#: cannot be redefined by a page, ``document.URL`` can.
_BLANK_AND_NAMELESS = (
    "(() => { try { const here = location.href;"
    " if (here === 'about:blank') { window.name = ''; return true; }"
    " return here.startsWith('chrome-error:') ? 'error page' : false;"
    " } catch (e) { return false; } })()"
)
#: The document's URL, title and console errors (see :data:`engines.page.READ_CONSOLE`); a
#: page that breaks the console read gets no console errors, not a failed capture.
_READ_DOCUMENT = (
    "let console = [0, []]; try { console = "
    f"{page.READ_CONSOLE}; }} catch (e) {{}} return [document.URL, document.title, console];"
)


class StaleBrowser(Exception):
    """The previous capture's page could not be left or wiped: use a new browser instead."""


class SeleniumTab(Tab):
    """The browser's tab: its main frame, what was last set in it, the current capture."""

    def __init__(self, driver: webdriver.Chrome, frame_id: str) -> None:
        self.driver = driver
        self.frame_id = frame_id
        self.network: NetworkLog | None = None  # the current capture's requests
        self.viewport: tuple[int, int] | None = None
        self.scale = 1.0
        self.page_load_timeout: float | None = None
        self._hooked = False
        self._default_user_agent = ""
        self._applied: dict[str, Any] = {}
        self.cache = CacheState()  # the HTTP cache of the tab's (only) browser context

    # -- Tab -------------------------------------------------------------------------------

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """Evaluate ``expression`` in the page through DevTools (so the page's CSP does not
        apply). A JavaScript exception raises
        :class:`~screenshots.core.errors.PermanentError` with its message."""
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
        result: dict[str, Any] = self.driver.execute_cdp_cmd(method, params or {})
        return result

    # -- between captures ------------------------------------------------------------------

    def set_page_load_timeout(self, seconds: float) -> None:
        """Set ChromeDriver's page-load (and script) timeout, unless already within the slack."""
        if self.page_load_timeout is not None and (
            abs(self.page_load_timeout - seconds) <= min(TIMEOUT_SLACK, seconds / 10)
        ):
            return
        milliseconds = max(1, int(seconds * 1000))
        timeouts = {"pageLoad": milliseconds, "script": milliseconds}
        self.driver.execute(Command.SET_TIMEOUTS, timeouts)
        self.page_load_timeout = seconds

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
        ``*``, every type), granted permissions, the tab's history and ``window.name`` are
        cleared: the next capture sees what a fresh browser would, but for the HTTP cache, which
        :meth:`prepare` sets by :mod:`engines.isolation`. A page that will not go away raises
        :class:`StaleBrowser`: the capture goes on in a new browser.
        """
        self.cdp("Runtime.evaluate", {"expression": "location.replace('about:blank')"})
        deadline = time.monotonic() + LEAVE_TIMEOUT
        pause = LEAVE_POLL_FIRST
        while (state := self.evaluate(_BLANK_AND_NAMELESS)) is not True:
            if state == "error page" or time.monotonic() >= deadline:
                # An error page, or a page fighting back: a browser-side navigation always works.
                self.driver.get("about:blank")
                if self.evaluate(_BLANK_AND_NAMELESS) is not True:
                    raise StaleBrowser("the previous page would not give way to about:blank")
                break
            time.sleep(pause)
            pause = min(LEAVE_POLL_MAX, pause * 2)
        self.cdp("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
        self.cdp("Browser.resetPermissions")
        self.cdp("Page.resetNavigationHistory")

    def prepare(self, url: str, options: CaptureOptions, private: bool) -> None:
        """Set the tab up for this capture: every emulation to this shot's value, its cookies,
        the HTTP cache (``private``: neither read nor kept, see :mod:`engines.isolation`).

        The tab is reused, so whatever an earlier capture set is reset here (and what pages
        left behind was wiped by :meth:`forget_previous_page`).
        """
        cdp = self.cdp
        self.cache.apply(private, cdp)
        if not self._hooked:
            cdp("Page.addScriptToEvaluateOnNewDocument", {"source": page.CONSOLE_HOOK})
            self._default_user_agent = cdp("Browser.getVersion")["userAgent"]
            self._hooked = True
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
            cdp("Emulation.setEmulatedMedia", {"media": "", "features": features})
        if changed("timezone"):
            cdp("Emulation.setTimezoneOverride", {"timezoneId": wanted["timezone"]})
        if changed("locale"):
            cdp("Emulation.setLocaleOverride")
            if options.locale:
                cdp("Emulation.setLocaleOverride", {"locale": options.locale})
        if changed("agent"):
            agent: dict[str, Any] = {"userAgent": options.user_agent or self._default_user_agent}
            if options.locale:
                agent["acceptLanguage"] = options.locale
            cdp("Network.setUserAgentOverride", agent)
        if changed("headers"):
            cdp("Network.setExtraHTTPHeaders", {"headers": wanted["headers"]})
        if changed("blocked"):
            cdp("Network.setBlockedURLs", {"urls": wanted["blocked"]})
        if changed("csp"):
            cdp("Page.setBypassCSP", {"enabled": wanted["csp"]})
        applied.update(wanted)
        if options.cookies:
            cookies = [{"name": n, "value": v, "url": url} for n, v in options.cookies]
            cdp("Network.setCookies", {"cookies": cookies})

    # -- during a capture ------------------------------------------------------------------

    def start_network_log(self) -> NetworkLog:
        """Drop the events of earlier pages; a new record for this capture's navigation."""
        self.driver.get_log("performance")
        network = self.network = NetworkLog(self.frame_id)
        return network

    def read_network(self) -> None:
        """Feed the performance log's new events to the capture's record."""
        assert self.network is not None
        self.network.feed(self.driver.get_log("performance"))

    def read_document(self) -> tuple[str, str | None, tuple[int, list[str]]]:
        """The page's URL, title and console errors (count, first messages)."""
        page_url, title, console = self.driver.execute_script(_READ_DOCUMENT)
        errors, messages = console if isinstance(console, list) else (0, [])
        return str(page_url), (str(title) if title is not None else None), (
            int(errors),
            list(messages),
        )
