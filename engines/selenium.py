"""Chromium driven by ChromeDriver through Selenium: the default engine.

One browser per engine, started on the first capture and reused (a warm capture costs a
fraction of a cold start), replaced after ``recycle_after`` captures and after any failure
that leaves it suspect. Every capture has a hard deadline: ChromeDriver's own timeouts first,
then a watchdog thread that kills the whole browser process tree ``WATCHDOG_GRACE`` seconds
past the deadline, so a page stuck in ``while(true){}`` cannot hold a worker.

What the main document answered (status, URL after redirects, MIME type, network error) comes
from ChromeDriver's performance log, i.e. the DevTools ``Network`` events of the main frame's
document request. The page's own state (``document.URL``) catches Chromium's error page. Both
are needed: a download or an HTTP 204 leaves the *previous* page on screen with no error page
at all, and only the network events tell.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import logging
import os
import re
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import urllib3
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import (
    SessionNotCreatedException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.command import Command
from selenium.webdriver.remote.remote_connection import RemoteConnection
from selenium.webdriver.remote.webdriver import WebDriver as RemoteWebDriver

from engines import chromium, page
from engines.base import Capture, Engine
from engines.page import Document, navigation_error
from screenshots.core.errors import (
    BrowserCrashed,
    CaptureTimeout,
    EngineUnavailable,
    NavigationError,
    PermanentError,
    RedirectLoop,
)
from screenshots.core.options import CaptureOptions, option_names
from screenshots.core.settings import Settings
from screenshots.egress.guard import EgressGuard

logger = logging.getLogger(__name__)

#: Seconds past a capture's deadline after which the watchdog kills the browser.
WATCHDOG_GRACE = 2.0
#: Seconds ``close()`` lets ChromeDriver shut Chromium down before everything is killed.
QUIT_TIMEOUT = 3.0
#: A page-load timeout already set is kept if within this many seconds of the wanted one
#: (saves one WebDriver round trip per capture; the watchdog grace covers the difference).
TIMEOUT_SLACK = 0.5

#: Seconds the previous capture's page gets to give way to ``about:blank`` before the browser
#: is replaced instead (a page cannot keep a browser that must be wiped).
LEAVE_TIMEOUT = 2.0

#: Seconds a timed-out capture waits for the browser's network events (to tell a redirect loop).
LOOP_CHECK_TIMEOUT = 1.0

#: Seconds between two looks at ``document.readyState`` while a page loads: the first, and
#: the most (the pause doubles in between).
LOAD_POLL_FIRST = 0.01
LOAD_POLL_MAX = 0.1
#: Seconds a loaded page must start no new navigation to count as settled.
SETTLE_WINDOW = 0.05
#: Main-frame navigations at which a page still loading is a redirect loop at once (at the
#: deadline, ``engines.page.LOOP_NAVIGATIONS`` suffice).
LOOP_EARLY = 20

#: The error when a page crashes its tab (a memory bomb past ``chromium.JS_HEAP_MB``): a
#: permanent error, as the page would do it again.
PAGE_CRASHED = "the page crashed the browser tab (out of memory, or a browser bug)"
#: Errors that mean ChromeDriver or Chromium is gone or not answering.
_TRANSPORT_ERRORS = (
    WebDriverException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,  # a truncated JSON answer from a dying driver
)
_NET_ERROR = re.compile(r"net::ERR_[A-Z0-9_]+")
#: Not set by anyone: keeps ``SE_CHROMEDRIVER`` from overriding ``Settings.chromedriver_path``.
_NO_DRIVER_ENV = "SCREENSHOTS_SELENIUM_DRIVER_PATH_UNUSED"

_reaped_in: int | None = None  # pid of the process that already reaped orphans


class _StaleBrowser(Exception):
    """The previous capture's page could not be left or wiped: use a new browser instead."""


class _NoTimeLeft(CaptureTimeout):
    """The deadline is too short for the asked delay or after a cold start: the browser is fine."""


class _Browser:
    """One ChromeDriver, its Chromium and its profile directory."""

    def __init__(
        self, settings: Settings, width: int, height: int, proxy_server: str | None = None
    ) -> None:
        self.profile = chromium.new_profile_dir()
        self.proxy_server = proxy_server  # the egress proxy every request goes through
        self.width, self.height = width, height
        preexec = chromium.parent_death_signal_preexec()
        self.service = Service(
            executable_path=settings.chromedriver_path,
            log_output=subprocess.DEVNULL,
            env=chromium.browser_environment(self.profile),
            driver_path_env_key=_NO_DRIVER_ENV,
            popen_kw={"preexec_fn": preexec} if preexec else {},
        )
        self.chromium_path = settings.chromium_path
        self.keep_http_cache = settings.keep_http_cache
        self.driver: webdriver.Chrome | None = None
        self.driver_process: psutil.Process | None = None
        self.browser_process: psutil.Process | None = None
        self.frame_id = ""
        self.captures = 0
        self.network: _NetworkLog | None = None  # the current capture's requests
        self.viewport: tuple[int, int] | None = None
        self.page_load_timeout: float | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = self.chromium_path
        # Navigation returns at DOMContentLoaded; the engine waits for load itself when asked
        # (wait_until), which WebDriver can only choose per session.
        options.page_load_strategy = "eager"
        for flag in chromium.chromium_flags(
            self.profile, self.width, self.height, self.proxy_server
        ):
            options.add_argument(flag)
        # Off the record: what pages store lives in memory, never in the profile on disk, and
        # wiping it between captures (_forget_previous_page) is several times cheaper.
        options.add_argument("--incognito")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        options.add_experimental_option(
            "perfLoggingPrefs", {"enableNetwork": True, "enablePage": True}
        )
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(self.profile / "downloads"),
                **chromium.PROFILE_PREFS,  # no downloads, PDFs not shown
            },
        )
        # Dialogs (alert, confirm, beforeunload) are dismissed instead of failing commands;
        # pop-ups stay blocked (ChromeDriver would allow them) so no tabs pile up.
        options.unhandled_prompt_behavior = "dismiss"
        options.add_experimental_option("excludeSwitches", ["disable-popup-blocking"])
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver_process = psutil.Process(self.service.process.pid)
        self.browser_process = self._find_browser()
        # Downloads are also refused by the profile's preferences (PROFILE_PREFS), which the
        # incognito context inherits (DevTools cannot name that context here).
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "deny"})
        if not self.keep_http_cache:
            # No HTTP cache at all: it would be wiped between captures anyway, and so every
            # page load passes the egress proxy, which counts them (a redirect loop of a
            # cached page). Off also for the V8 code cache, which lives in it.
            self.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        # print() and alert()/confirm()/prompt() would stall or block the page.
        self.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": chromium.PAGE_GUARD_SCRIPT}
        )
        tree = self.driver.execute_cdp_cmd("Page.getFrameTree", {})
        self.frame_id = tree["frameTree"]["frame"]["id"]

    def _find_browser(self) -> psutil.Process | None:
        assert self.driver_process is not None
        flag = f"--user-data-dir={self.profile}"
        for child in self.driver_process.children(recursive=True):
            try:
                if flag in child.cmdline():
                    return child
            except psutil.Error:
                continue
        return None

    @property
    def pid(self) -> int | None:
        return self.browser_process.pid if self.browser_process else None

    def alive(self) -> bool:
        process = getattr(self.service, "process", None)
        if self.driver is None or process is None or process.poll() is not None:
            return False
        return self.browser_process is None or chromium.process_alive(self.browser_process)

    def kill(self) -> None:
        """Kill ChromeDriver, Chromium and its crash handler. Any thread may call it."""
        with self._lock:
            processes: list[psutil.Process] = []
            process = getattr(self.service, "process", None)
            if process is not None:
                processes += chromium.process_tree(process.pid)
            if self.browser_process is not None and chromium.process_alive(self.browser_process):
                processes += chromium.process_tree(self.browser_process.pid)
            processes += chromium.our_browser_processes(self.profile)
            chromium.kill_processes(processes)
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1)  # reap our child

    def quit(self, polite: bool) -> None:
        """Stop everything and delete the profile; ``polite`` asks ChromeDriver first."""
        driver, self.driver = self.driver, None
        if driver is not None:
            if polite and self.alive_process():
                _connection(driver).client_config.timeout = QUIT_TIMEOUT
                try:
                    RemoteWebDriver.quit(driver)  # not Chrome.quit: its service.stop() waits
                except Exception:  # it is going away regardless
                    logger.debug("polite quit failed", exc_info=True)
            _connection(driver).close()
        self.kill()
        try:
            self.service.stop()  # the process is dead: only closes its pipes
        except Exception:
            logger.debug("service stop failed", exc_info=True)
        chromium.remove_profile_dir(self.profile)

    def alive_process(self) -> bool:
        process = getattr(self.service, "process", None)
        return process is not None and process.poll() is None


class _Watchdog:
    """Calls ``action`` from a timer thread if not cancelled within ``seconds``."""

    def __init__(self, seconds: float, action: Callable[[], None]) -> None:
        self.fired = False
        self._action = action
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        logger.warning("capture deadline passed: killing the browser")
        try:
            self._action()
        except Exception:  # a watchdog must not die noisily
            logger.exception("watchdog could not kill the browser")

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


class SeleniumEngine(Engine):
    """Chromium through ChromeDriver, one browser per engine, reused across captures.

    ``settings`` gives the binaries' paths (default:
    :func:`screenshots.core.settings.load_settings`);
    ``recycle_after`` is the number of captures a browser serves before it is replaced
    (default ``settings.recycle_after``). A browser is also replaced after a timeout, a crash or
    any unexpected driver error. Not thread-safe: one engine per thread.
    """

    name = "selenium"
    #: Every option. ``block`` matches resource types by file name ending (ChromeDriver gives
    #: no per-request hook), so the types it cannot tell by URL are refused (:meth:`unsupported`).
    supports = frozenset(option_names())

    def unsupported(self, options: CaptureOptions) -> list[str]:
        blind = sorted(page.URL_BLIND_TYPES.intersection(options.block))
        return super().unsupported(options) + [f"block={kind}" for kind in blind]

    def __init__(self, settings: Settings | None = None, recycle_after: int | None = None) -> None:
        if settings is None:
            from screenshots.core.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self.recycle_after = settings.recycle_after if recycle_after is None else recycle_after
        if self.recycle_after < 1:
            raise ValueError("recycle_after must be at least 1")
        self._browser: _Browser | None = None
        self._egress = EgressGuard(settings)  # the filtering proxy every browser goes through

    @property
    def browser_pid(self) -> int | None:
        """Pid of the current Chromium browser process, ``None`` before the first capture."""
        return self._browser.pid if self._browser else None

    @property
    def profile_dir(self) -> Path | None:
        """Profile directory of the current browser (for tests and diagnostics)."""
        return self._browser.profile if self._browser else None

    # -- capture ---------------------------------------------------------------------------

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self._retire_if_needed()
        timeout_message = f"the browser did not start within {options.timeout:g} s"
        deadline = time.monotonic() + options.timeout
        with _Watchdog(options.timeout + WATCHDOG_GRACE, self._kill_current) as watchdog:
            try:
                browser = self._ensure_browser(options, watchdog)
                timeout_message = f"page did not finish loading within {options.timeout:g} s"
                browser.captures += 1
                try:
                    return self._capture(browser, url, options, deadline)
                except _StaleBrowser as exc:  # the last page's fault, not this URL's
                    logger.warning("replacing the browser: %s", exc)
                    self._discard()
                    browser = self._ensure_browser(options, watchdog)
                    browser.captures += 1
                    return self._capture(browser, url, options, deadline)
            except RedirectLoop:  # the page is still navigating: start the next one afresh
                self._discard()
                raise
            except PermanentError:  # the page's fault (an error page, no such element...)
                raise
            except _NoTimeLeft as exc:  # the browser is fine: keep it
                raise CaptureTimeout(exc.message) from None
            except (CaptureTimeout, TimeoutException) as exc:
                loop = self._redirect_loop()
                self._discard()
                raise loop or CaptureTimeout(timeout_message) from exc
            except EngineUnavailable:
                self._discard()
                raise
            except _TRANSPORT_ERRORS as exc:
                timed_out = watchdog.fired or time.monotonic() >= deadline
                loop = self._redirect_loop() if timed_out else None
                self._discard()
                if timed_out:
                    raise loop or CaptureTimeout(timeout_message) from exc
                if "tab crashed" in _short(exc):  # the page killed its renderer: it would again
                    raise NavigationError(PAGE_CRASHED, code="tab crashed") from exc
                raise BrowserCrashed(f"the browser stopped answering ({_short(exc)})") from exc
            except BaseException:
                self._discard()  # interrupted mid-command: the browser's state is unknown
                raise

    def _capture(
        self, browser: _Browser, url: str, options: CaptureOptions, deadline: float
    ) -> Capture:
        driver = browser.driver
        assert driver is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _NoTimeLeft(f"starting the browser took the whole {options.timeout:g} s timeout")
        _connection(driver).client_config.timeout = remaining + WATCHDOG_GRACE
        browser.network = None  # until this capture's navigation starts
        state = _page_state(browser)
        if browser.viewport != (options.width, options.height) or state.scale != options.scale:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": options.width,
                    "height": options.height,
                    "deviceScaleFactor": options.scale,
                    "mobile": False,
                },
            )
            browser.viewport = (options.width, options.height)
            state.scale = options.scale
        # ChromeDriver makes most commands wait for a pending navigation, up to this timeout: it
        # ends a little before the deadline, leaving time to tell a redirect loop. Set once for
        # leaving the last page and loading this one (unchanged from capture to capture, it
        # costs no round trip; the watchdog covers the few ms the leave takes from it).
        _set_page_load_timeout(browser, _load_budget(deadline))
        if browser.captures > 1:
            try:
                _forget_previous_page(driver)
            except (TimeoutException, *_TRANSPORT_ERRORS) as exc:
                raise _StaleBrowser(f"the previous page could not be left ({_short(exc)})") from exc
        _prepare_page(driver, state, url, options)
        driver.get_log("performance")  # drop events of earlier pages
        network = browser.network = _NetworkLog(browser.frame_id)
        started = time.monotonic()
        self._egress.begin()
        try:
            driver.get(url)
        except TimeoutException:
            raise
        except WebDriverException as exc:
            code = _net_error(exc.msg or "")
            if code is None:
                raise
            refused = self._egress.navigation_error(url, error=code)
            raise refused or navigation_error(code, url, None) from None
        network.feed(driver.get_log("performance"))
        _wait_until(browser, network, options, deadline)
        navigated = time.monotonic()
        document, page_url, title, console = self._check_document(driver, browser, network, url)
        if _wait_in_page(driver, options, deadline):  # the page may have moved on: look again
            network.feed(driver.get_log("performance"))
            document, page_url, title, console = self._check_document(
                driver, browser, network, url
            )
        waited = time.monotonic()
        image = self._screenshot(driver, options)
        with Image.open(io.BytesIO(image)) as decoded:
            width, height = decoded.size
        captured = time.monotonic()
        errors, messages = console
        network.feed(driver.get_log("performance"))
        return Capture(
            image=image,
            width=width,
            height=height,
            http_status=document.status if document else None,
            final_url=str(page_url) or (document.url if document else url),
            title=str(title) if title is not None else None,
            content_type=document.mime_type if document else None,
            blocked_requests=network.blocked + self._egress.blocked(),
            requests=network.requests,
            failed_requests=network.failed,
            console_errors=int(errors),
            console_messages=tuple(page.clip_message(m) for m in messages),
            navigation_ms=_ms(navigated - started),
            wait_ms=_ms(waited - navigated),
            capture_ms=_ms(captured - waited),
        )

    def _check_document(
        self, driver: webdriver.Chrome, browser: _Browser, network: _NetworkLog, url: str
    ) -> tuple[Document | None, str, str | None, tuple[int, list[str]]]:
        """The document on screen, its URL, title and console errors (count, first messages);
        raises if it is Chromium's error page."""
        documents = list(network.documents.values())
        page_url, title, console = driver.execute_script(_READ_DOCUMENT)
        error_page = str(page_url).startswith("chrome-error://")
        document = _main_document(documents, error_page)
        refused = self._egress.navigation_error(
            document.url if document else url,
            document.status if document else None,
            document.error if document else ("net::ERR_FAILED" if error_page else None),
        )
        if refused is not None:  # the egress proxy refused or failed the main document
            raise refused
        if error_page or (document is not None and document.error is not None):
            if document is not None and document.error is not None:
                raise navigation_error(document.error, url, document)
            raise NavigationError(f"the browser could not show {url}")
        errors, messages = console if isinstance(console, list) else (0, [])
        return document, str(page_url), title, (int(errors), list(messages))

    def _redirect_loop(self) -> RedirectLoop | None:
        """After a timeout: a :class:`~screenshots.core.errors.RedirectLoop` if the page kept
        navigating."""
        browser = self._browser
        if browser is None or browser.network is None:
            return None
        network = browser.network
        if browser.driver is not None and browser.alive():
            try:  # the log is ChromeDriver's: it answers even while the page navigates
                _connection(browser.driver).client_config.timeout = LOOP_CHECK_TIMEOUT
                network.feed(browser.driver.get_log("performance"))
            except _TRANSPORT_ERRORS:
                pass  # judge by what was read before
        navigations = network.navigations
        return RedirectLoop(navigations) if navigations >= page.LOOP_NAVIGATIONS else None

    def _screenshot(self, driver: webdriver.Chrome, options: CaptureOptions) -> bytes:
        element = None
        content_height = None
        if options.selector is not None:
            element = _element_rect(driver, options.selector)
        elif options.full_page:
            metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            content_height = metrics["cssContentSize"]["height"]
        params = page.screenshot_params(options, content_height, element)
        result = driver.execute_cdp_cmd("Page.captureScreenshot", params)
        return base64.b64decode(result["data"])

    # -- browser life ----------------------------------------------------------------------

    def _ensure_browser(self, options: CaptureOptions, watchdog: _Watchdog) -> _Browser:
        if self._browser is not None:
            return self._browser
        for what, path, package in (
            ("chromedriver", self.settings.chromedriver_path, "chromium-driver"),
            ("chromium", self.settings.chromium_path, "chromium"),
        ):
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise EngineUnavailable(
                    f"{what} not found at {path}: install Debian's {package} (make install)"
                )
        global _reaped_in
        if _reaped_in != os.getpid():
            _reaped_in = os.getpid()
            killed = chromium.reap_orphans()
            if killed:
                logger.warning("killed %d orphaned browser processes", killed)
        browser = self._browser = _Browser(
            self.settings, options.width, options.height, self._egress.proxy_server()
        )
        started = time.monotonic()
        try:
            browser.start()
        except SessionNotCreatedException as exc:
            if watchdog.fired:
                raise
            raise EngineUnavailable(f"Chromium could not start: {_short(exc)}") from exc
        # Pages must never reach ChromeDriver or the DevTools endpoint, even if loopback is
        # allowed by SCREENSHOT_EGRESS_ALLOW.
        self._egress.protect(browser.service.port, _debugger_address(browser.driver))
        logger.debug("started Chromium pid %s in %.2f s", browser.pid, time.monotonic() - started)
        return browser

    def _retire_if_needed(self) -> None:
        browser = self._browser
        if browser is None:
            return
        if browser.captures >= self.recycle_after:
            logger.debug("recycling the browser after %d captures", browser.captures)
            self._stop(polite=True)
        elif not browser.alive():
            logger.warning("the browser died between captures: starting a new one")
            self._discard()

    def _kill_current(self) -> None:
        browser = self._browser
        if browser is not None:
            browser.kill()

    def _discard(self) -> None:
        self._stop(polite=False)

    def _stop(self, polite: bool) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            browser.quit(polite)

    def close(self) -> None:
        """Quit the browser (politely, then by force) and delete its profile. Idempotent."""
        self._stop(polite=True)
        self._egress.close()


# -- capture options in the page ----------------------------------------------------------


@dataclass
class _PageState:
    """What was last set in a browser's tab, so each capture sends only what changes."""

    scale: float = 1.0
    hooked: bool = False
    default_user_agent: str = ""
    applied: dict[str, Any] = field(default_factory=dict)


_page_states: weakref.WeakKeyDictionary[_Browser, _PageState] = weakref.WeakKeyDictionary()


def _page_state(browser: _Browser) -> _PageState:
    state = _page_states.get(browser)
    if state is None:
        state = _page_states[browser] = _PageState()
    return state


def _prepare_page(
    driver: webdriver.Chrome, state: _PageState, url: str, options: CaptureOptions
) -> None:
    """Set the tab up for this capture: every emulation to this shot's value, its cookies.

    The tab is reused, so whatever an earlier capture set is reset here (and what pages left
    behind was wiped by :func:`_forget_previous_page`).
    """
    cdp = driver.execute_cdp_cmd
    if not state.hooked:
        cdp("Page.addScriptToEvaluateOnNewDocument", {"source": page.CONSOLE_HOOK})
        state.default_user_agent = cdp("Browser.getVersion", {})["userAgent"]
        state.hooked = True
    wanted: dict[str, Any] = {
        "media": (options.dark_mode, options.reduced_motion),
        "timezone": options.timezone or "",
        "locale": options.locale,
        "agent": (options.user_agent, options.locale),
        "headers": dict(options.headers),
        "blocked": page.BlockRules.of(options).url_patterns(),
        "csp": page.needs_csp_bypass(options),
    }
    applied = state.applied

    def changed(name: str) -> bool:
        return name not in applied or applied[name] != wanted[name]

    if changed("media"):
        features = [
            {"name": "prefers-color-scheme", "value": "dark" if options.dark_mode else ""},
            {"name": "prefers-reduced-motion", "value": "reduce" if options.reduced_motion else ""},
        ]
        cdp("Emulation.setEmulatedMedia", {"media": "", "features": features})
    if changed("timezone"):
        cdp("Emulation.setTimezoneOverride", {"timezoneId": wanted["timezone"]})
    if changed("locale"):
        cdp("Emulation.setLocaleOverride", {})
        if options.locale:
            cdp("Emulation.setLocaleOverride", {"locale": options.locale})
    if changed("agent"):
        agent: dict[str, Any] = {"userAgent": options.user_agent or state.default_user_agent}
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
        cookies = [{"name": name, "value": value, "url": url} for name, value in options.cookies]
        cdp("Network.setCookies", {"cookies": cookies})


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


def _forget_previous_page(driver: webdriver.Chrome) -> None:
    """Leave the previous capture's page, then wipe everything a page can leave behind.

    The page is left first (for ``about:blank``, from inside the page so its renderer stays
    warm) because it keeps running after its capture: a timer or a ``pagehide`` handler could
    write again into freshly wiped storage. Then cookies, local and session storage, IndexedDB,
    Cache Storage, service workers (``Storage.clearDataForOrigin`` with ``*``, every type),
    granted permissions, the tab's history and ``window.name`` are cleared: the next capture
    sees what a fresh browser would (the HTTP cache is off altogether, see :class:`_Browser`,
    unless ``SCREENSHOT_KEEP_HTTP_CACHE``). A page that will not go away raises
    :class:`_StaleBrowser`: the capture goes on in a new browser.
    """
    cdp = driver.execute_cdp_cmd
    cdp("Runtime.evaluate", {"expression": "location.replace('about:blank')"})
    deadline = time.monotonic() + LEAVE_TIMEOUT
    pause = LOAD_POLL_FIRST / 2
    while (state := _evaluate(driver, _BLANK_AND_NAMELESS)) is not True:
        if state == "error page" or time.monotonic() >= deadline:
            # An error page, or a page fighting back: a browser-side navigation always works.
            driver.get("about:blank")
            if _evaluate(driver, _BLANK_AND_NAMELESS) is not True:
                raise _StaleBrowser("the previous page would not give way to about:blank")
            break
        time.sleep(pause)
        pause = min(LOAD_POLL_MAX, pause * 2)
    cdp("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
    cdp("Browser.resetPermissions", {})
    cdp("Page.resetNavigationHistory", {})


def _evaluate(driver: webdriver.Chrome, expression: str, await_promise: bool = False) -> Any:
    """Evaluate ``expression`` in the page through DevTools (so the page's CSP does not apply).

    A JavaScript exception raises :class:`~screenshots.core.errors.PermanentError` with its message.
    """
    result = driver.execute_cdp_cmd(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
    )
    details = result.get("exceptionDetails")
    if details:
        exception = details.get("exception") or {}
        text = exception.get("description") or details.get("text") or "error"
        raise PermanentError(str(text).splitlines()[0][:300])
    return result.get("result", {}).get("value")


def _left_ms(deadline: float) -> int:
    return int((deadline - time.monotonic()) * 1000)


def _wait_until(
    browser: _Browser, network: _NetworkLog, options: CaptureOptions, deadline: float
) -> None:
    """Wait for ``options.wait_until`` (navigation returned at DOMContentLoaded)."""
    if options.wait_until == "domcontentloaded":
        return
    _wait_for_load(browser, network, options, deadline)
    driver = browser.driver
    assert driver is not None
    if options.wait_until == "networkidle":
        idle = page.NETWORK_IDLE_MS / 1000
        while True:
            network.feed(driver.get_log("performance"))
            now = time.monotonic()
            if not network.in_flight and now - network.last_activity >= idle:
                return
            if now + 0.05 >= deadline:
                raise _NoTimeLeft(
                    f"the network did not go idle within the {options.timeout:g} s timeout"
                )
            time.sleep(0.05)


def _wait_for_load(
    browser: _Browser, network: _NetworkLog, options: CaptureOptions, deadline: float
) -> None:
    """Wait for the main frame's load event, watching for a redirect loop meanwhile.

    Only ChromeDriver's performance log is read while waiting: it answers at once, whereas
    any command about the page waits for a pending navigation (for ever, in a redirect loop).
    The page counts as loaded once it fired ``load`` and started no new navigation within
    ``SETTLE_WINDOW`` (a meta refresh of 0 s or an ``onload`` redirect starts at once).
    """
    driver = browser.driver
    assert driver is not None
    pause = LOAD_POLL_FIRST
    loaded_at: float | None = None
    while True:
        network.feed(driver.get_log("performance"))
        now = time.monotonic()
        if network.navigations >= LOOP_EARLY:
            raise RedirectLoop(network.navigations)
        if not network.loaded:
            loaded_at = None
        elif loaded_at is None:
            loaded_at = now
        elif now - loaded_at >= SETTLE_WINDOW:
            return
        if now + pause >= deadline - _load_margin(options):
            raise CaptureTimeout(f"page did not finish loading within {options.timeout:g} s")
        time.sleep(SETTLE_WINDOW if loaded_at is not None else pause)
        pause = min(LOAD_POLL_MAX, pause * 2)


def _load_budget(deadline: float) -> float:
    """ChromeDriver's page-load timeout for a capture: the time left, less a margin."""
    left = deadline - time.monotonic()
    return max(0.5, left - min(LOOP_CHECK_TIMEOUT, left / 10))


def _load_margin(options: CaptureOptions) -> float:
    """Seconds before the deadline the load wait gives up (room to tell a redirect loop)."""
    return min(LOOP_CHECK_TIMEOUT, options.timeout / 10)


def _set_page_load_timeout(browser: _Browser, seconds: float) -> None:
    """Set ChromeDriver's page-load (and script) timeout, unless already within the slack."""
    if browser.page_load_timeout is not None and (
        abs(browser.page_load_timeout - seconds) <= min(TIMEOUT_SLACK, seconds / 10)
    ):
        return
    assert browser.driver is not None
    milliseconds = max(1, int(seconds * 1000))
    browser.driver.execute(Command.SET_TIMEOUTS, {"pageLoad": milliseconds, "script": milliseconds})
    browser.page_load_timeout = seconds


def _wait_in_page(driver: webdriver.Chrome, options: CaptureOptions, deadline: float) -> bool:
    """Everything between load and capture: styles, script, waits, scrolling, delay.

    Whether there was anything to do (if not, the page was not given time to change).
    """
    if not page.acts_in_page(options):
        return False
    sheet = page.style_sheet(options)
    if sheet is not None:
        _evaluate(driver, page.add_style_script(sheet))
    if options.js is not None:
        try:
            _evaluate(driver, page.run_script(options.js, _left_ms(deadline)), True)
        except PermanentError as exc:
            raise PermanentError(f"js failed: {exc.message}") from None
    if options.wait_for is not None:
        check = page.visible_script(options.wait_for)
        _poll(driver, check, deadline, f"wait_for: no visible {options.wait_for!r}", options)
    if options.wait_for_js is not None:
        check = page.truthy_script(options.wait_for_js)
        what = f"wait_for_js: {options.wait_for_js!r} stayed false"
        _poll(driver, check, deadline, what, options)
    if options.scroll:
        _evaluate(driver, page.scroll_script(_left_ms(deadline) - 500), True)
    if options.delay_ms:
        delay = options.delay_ms / 1000
        if time.monotonic() + delay >= deadline:
            raise _NoTimeLeft(
                f"delay_ms={options.delay_ms} leaves no time to capture within "
                f"the {options.timeout:g} s timeout"
            )
        time.sleep(delay)
    return True


def _poll(
    driver: webdriver.Chrome, check: str, deadline: float, what: str, options: CaptureOptions
) -> None:
    while not _evaluate(driver, check):
        if time.monotonic() + 0.1 >= deadline:
            raise _NoTimeLeft(f"{what} within the {options.timeout:g} s timeout")
        time.sleep(0.1)


def _element_rect(driver: webdriver.Chrome, selector: str) -> tuple[float, float, float, float]:
    rect = _evaluate(driver, page.element_rect_script(selector))
    if rect is None:
        raise PermanentError(f"selector {selector!r} matched no element")
    x, y, width, height = (float(v) for v in rect)
    if width < 1 or height < 1:
        raise PermanentError(f"selector {selector!r} matched an element with no size")
    return x, y, width, height


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class _NetworkLog:
    """Every request of one capture, from the DevTools events of the performance log.

    Counts requests, failures (no answer, or HTTP >= 400) and blocked requests, and knows what
    is still in flight (for ``networkidle``). The browser's own favicon request is not the
    page's: it is left out (Playwright's pages do not make it). For the main frame
    (``frame_id``) it keeps the documents asked for, in order (``documents``: a redirect is
    part of its document, which moves on to the new URL), counts them (``navigations``) and
    knows whether the last one has ``loaded`` (its ``load`` event fired, or it failed and left
    the previous page up). Each event is read once, as it is fed.
    """

    _EVENTS = (
        "Network.requestWillBeSent",
        "Network.responseReceived",
        "Network.loadingFinished",
        "Network.loadingFailed",
        "Page.loadEventFired",
    )

    def __init__(self, frame_id: str = "") -> None:
        self.frame_id = frame_id
        self.documents: dict[str, Document] = {}  # by request id
        self.requests = 0
        self.failed = 0
        self.blocked = 0
        self.navigations = 0
        self.loaded = False
        self.in_flight: set[str] = set()
        self.last_activity = time.monotonic()
        self._ignored: set[str] = set()

    def feed(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            message = entry.get("message", "")
            if not any(name in message for name in self._EVENTS):
                continue
            event = json.loads(message).get("message", {})
            method, params = event.get("method"), event.get("params", {})
            if method == "Page.loadEventFired":
                self.loaded = True
                continue
            request_id = params.get("requestId")
            self.last_activity = time.monotonic()
            if request_id in self._ignored:
                continue
            self._follow_document(method, params, request_id)
            if method == "Network.requestWillBeSent":
                request = params.get("request") or {}
                if params.get("type") == "Other" and str(request.get("url", "")).endswith(
                    "/favicon.ico"
                ):
                    self._ignored.add(request_id)
                    continue
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

    def _follow_document(self, method: str | None, params: dict[str, Any], request_id: Any) -> None:
        if method == "Network.requestWillBeSent":
            if (
                params.get("type") == "Document"
                and params.get("frameId") == self.frame_id
                and request_id == params.get("loaderId")
            ):
                if request_id not in self.documents:  # else a redirect: the same document
                    self.navigations += 1
                    self.loaded = False
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
        elif method == "Network.loadingFailed":
            document.error = params.get("errorText") or "net::ERR_FAILED"
            self.loaded = True  # nothing new to load: the previous page stays up


# -- reading the network -------------------------------------------------------------------


def _main_document(documents: list[Document], error_page: bool) -> Document | None:
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


def _net_error(text: str) -> str | None:
    match = _NET_ERROR.search(text)
    return match.group(0) if match else None


def _connection(driver: RemoteWebDriver) -> RemoteConnection:
    """The driver's HTTP connection to ChromeDriver (whose timeout bounds every command)."""
    executor = driver.command_executor
    assert isinstance(executor, RemoteConnection)
    return executor


def _debugger_address(driver: RemoteWebDriver | None) -> str | None:
    """ChromeDriver's ``host:port`` of the browser's DevTools endpoint, if it says."""
    capabilities = driver.capabilities if driver is not None else {}
    address = capabilities.get("goog:chromeOptions", {}).get("debuggerAddress")
    return str(address) if address else None


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, without Selenium's stack trace."""
    text = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:200]
