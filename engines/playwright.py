"""Chromium driven by Playwright (sync API): one browser per engine, a fresh context per capture.

The system Chromium (``Settings.chromium_path``) is launched with the flags of
:func:`engines.chromium.chromium_flags`, in a profile directory of
:func:`engines.chromium.new_profile_dir` (as a persistent context, so the profile path is on
Chromium's command line and :func:`engines.chromium.reap_orphans` finds a browser whose owner
died). Playwright never downloads a browser here.

Every capture gets a new browser context (cookies, storage, cache, permissions: nothing leaks
from one URL to the next), created with the shot's viewport, scale, user agent, locale, time
zone, colour scheme and headers. The browser is replaced after ``recycle_after`` captures and
after any failure that leaves it suspect.

Playwright's sync objects belong to the thread that created them, and its sync API refuses to
run inside an asyncio loop. So each engine owns one thread that does all its Playwright calls;
:meth:`PlaywrightEngine.capture` hands the work over and waits, which makes the engine usable
from any thread (one capture at a time) and lets :meth:`~PlaywrightEngine.close` run from
another thread than the captures (the embedded runner and Celery's shutdown do that). The
caller's wait is the hard deadline: ``WATCHDOG_GRACE`` seconds past ``options.timeout`` the
browser's processes are killed, which ends whatever Playwright call was stuck.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import psutil
from PIL import Image
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

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
from screenshots.core.result import MAX_CONSOLE_MESSAGES
from screenshots.core.settings import Settings
from screenshots.egress.guard import EgressGuard

logger = logging.getLogger(__name__)

#: Seconds past a capture's deadline after which the browser is killed.
WATCHDOG_GRACE = 2.0
#: Seconds ``close()`` lets Playwright shut Chromium down before everything is killed.
QUIT_TIMEOUT = 5.0
#: Attempts at a screenshot Chromium could not take (no frame yet, on a loaded machine).
SCREENSHOT_ATTEMPTS = 3
#: Milliseconds before retrying such a screenshot, times the attempt number.
SCREENSHOT_RETRY_MS = 200
#: Seconds a failed capture whose page navigated by itself is watched for a redirect loop.
LOOP_WATCH = 2.0
#: The same for a capture that succeeded (a meta refresh loop can be caught mid-way).
LOOP_SETTLED_WATCH = 0.5
#: Seconds the browser may take to start.
LAUNCH_TIMEOUT = 30.0
#: Chromium's console messages about failed resources: counted as failed requests instead.
_RESOURCE_MESSAGE = "Failed to load resource:"
_NET_ERROR = re.compile(r"net::ERR_[A-Z0-9_]+")
_CRASH_WORDS = ("has been closed", "Target crashed", "Target closed", "Browser closed",
                "Connection closed", "browser has disconnected")

_T = TypeVar("_T")
_reaped_in: int | None = None  # pid of the process that already reaped orphans


class _Thread:
    """A daemon thread running submitted calls one at a time (all of one engine's Playwright)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._loop, name="playwright", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the waiting caller
                future.set_exception(exc)

    def submit(self, function: Callable[[], _T]) -> Future[_T]:
        future: Future[_T] = Future()
        self._queue.put((function, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)


class _Page:
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


class _Browser:
    """Playwright, its Chromium and the profile directory. Used only in the engine's thread."""

    def __init__(
        self, settings: Settings, width: int, height: int, proxy_server: str | None = None
    ) -> None:
        self.profile = chromium.new_profile_dir()
        self.playwright: Playwright | None = None
        self.context: BrowserContext | None = None
        self.driver_pid: int | None = None
        self.captures = 0
        flags = chromium.chromium_flags(self.profile, width, height, proxy_server)
        self.flags = [f for f in flags if not f.startswith("--user-data-dir=")]
        self.chromium_path = settings.chromium_path

    def start(self) -> None:
        _write_preferences(self.profile, chromium.PROFILE_PREFS)
        self.playwright = sync_playwright().start()
        self.driver_pid = _driver_pid(self.playwright)
        env: dict[str, str | float | bool] = dict(chromium.browser_environment(self.profile))
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=self.chromium_path,
            args=self.flags,
            headless=True,
            env=env,
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
            timeout=LAUNCH_TIMEOUT * 1000,
            accept_downloads=False,
        )

    def new_context(self, options: CaptureOptions) -> BrowserContext:
        assert self.context is not None and self.context.browser is not None
        kwargs: dict[str, Any] = {
            "viewport": {"width": options.width, "height": options.height},
            "device_scale_factor": options.scale,
            "accept_downloads": False,
            "bypass_csp": page.needs_csp_bypass(options),
            "reduced_motion": "reduce" if options.reduced_motion else "no-preference",
        }
        if options.dark_mode:
            kwargs["color_scheme"] = "dark"
        if options.user_agent:
            kwargs["user_agent"] = options.user_agent
        if options.headers:
            kwargs["extra_http_headers"] = dict(options.headers)
        if options.timezone:
            kwargs["timezone_id"] = options.timezone
        if options.locale:
            kwargs["locale"] = options.locale
        if options.block:
            kwargs["service_workers"] = "block"  # else requests could dodge the route
        context = self.context.browser.new_context(**kwargs)
        context.add_init_script(script=chromium.PAGE_GUARD_SCRIPT)  # print(), alert()...
        return context

    def processes(self) -> list[psutil.Process]:
        """This browser's processes and Playwright's driver: safe from any thread."""
        found = chromium.our_browser_processes(self.profile)
        if self.driver_pid is not None:
            found += chromium.process_tree(self.driver_pid)
        return found

    def kill(self) -> None:
        chromium.kill_processes(chromium.our_browser_processes(self.profile))

    def quit(self, polite: bool) -> None:
        """Close the browser (politely first if asked), stop Playwright, delete the profile."""
        if polite and self.context is not None:
            with contextlib.suppress(Exception):
                self.context.close()
        self.context = None
        self.kill()
        if self.playwright is not None:
            with contextlib.suppress(Exception):
                self.playwright.stop()
            self.playwright = None
        if self.driver_pid is not None:
            chromium.kill_process_tree(self.driver_pid, wait=1.0)
        chromium.remove_profile_dir(self.profile)


def _write_preferences(profile: Path, prefs: dict[str, object]) -> None:
    """Write Chromium preferences (dotted names) where a new profile reads them at start."""
    nested: dict[str, Any] = {}
    for name, value in prefs.items():
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    default = profile / "Default"
    default.mkdir(parents=True, exist_ok=True)
    (default / "Preferences").write_text(json.dumps(nested), encoding="utf-8")


def _driver_pid(playwright: Playwright) -> int | None:
    """Pid of Playwright's Node.js driver process (private attributes; ``None`` if they move)."""
    try:
        transport = playwright._impl_obj._connection._transport  # type: ignore[attr-defined]
        return int(transport._proc.pid)
    except (AttributeError, TypeError, ValueError):
        return None


class PlaywrightEngine(Engine):
    """Chromium through Playwright; see the module docstring.

    ``settings`` gives the Chromium path (default: :func:`screenshots.core.settings.load_settings`);
    ``recycle_after`` is the number of captures a browser serves before it is replaced
    (default ``settings.recycle_after``). One capture at a time; any thread may call.
    """

    name = "playwright"
    #: Every option.
    supports = frozenset(option_names())

    def __init__(self, settings: Settings | None = None, recycle_after: int | None = None) -> None:
        if settings is None:
            from screenshots.core.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self.recycle_after = settings.recycle_after if recycle_after is None else recycle_after
        if self.recycle_after < 1:
            raise ValueError("recycle_after must be at least 1")
        self._thread: _Thread | None = None
        self._browser: _Browser | None = None  # touched only in self._thread
        self._record: _Page | None = None  # what the current capture's page did
        self._egress = EgressGuard(settings)  # the filtering proxy every browser goes through
        self._lock = threading.Lock()

    @property
    def profile_dir(self) -> Path | None:
        """Profile directory of the current browser (for tests and diagnostics)."""
        browser = self._browser
        return browser.profile if browser else None

    # -- capture (caller's thread) ---------------------------------------------------------

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        with self._lock:
            if self._thread is None:
                self._thread = _Thread()
            thread = self._thread
            deadline = time.monotonic() + options.timeout
            self._record = None
            future = thread.submit(lambda: self._capture(url, options, deadline))
            try:
                return future.result(timeout=options.timeout + WATCHDOG_GRACE)
            except FutureTimeout:
                pass
            logger.warning("capture deadline passed: killing the browser")
            browser = self._browser
            if browser is not None:
                chromium.kill_processes(browser.processes())
            try:
                future.result(timeout=QUIT_TIMEOUT + chromium.KILL_WAIT)
            except FutureTimeout:  # the thread is stuck for good: leave it, start afresh
                logger.warning("the Playwright thread did not come back: abandoning it")
                self._thread = None
                self._browser = None
                if browser is not None:
                    chromium.remove_profile_dir(browser.profile)
                thread.stop()
            except Exception:  # noqa: S110 - it failed because we killed it
                pass
            record = self._record  # a stuck DevTools call while the page kept navigating?
            if record is not None and record.navigations >= page.LOOP_NAVIGATIONS:
                raise RedirectLoop(record.navigations)
            raise CaptureTimeout(f"page did not finish loading within {options.timeout:g} s")

    def close(self) -> None:
        """Close the browser (politely, then by force), delete its profile. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            future = thread.submit(lambda: self._stop(polite=True))
            try:
                future.result(timeout=QUIT_TIMEOUT + chromium.KILL_WAIT + 2)
            except FutureTimeout:
                browser = self._browser
                if browser is not None:
                    chromium.kill_processes(browser.processes())
                    chromium.remove_profile_dir(browser.profile)
                self._browser = None
            thread.stop()
            self._egress.close()

    # -- capture (engine's thread) ---------------------------------------------------------

    def _capture(self, url: str, options: CaptureOptions, deadline: float) -> Capture:
        self._retire_if_needed()
        try:
            browser = self._ensure_browser(options)
            browser.captures += 1
            return self._capture_with(browser, url, options, deadline)
        except (PermanentError, CaptureTimeout, EngineUnavailable):
            raise
        except PlaywrightTimeout as exc:
            raise CaptureTimeout(
                f"page did not finish loading within {options.timeout:g} s"
            ) from exc
        except PlaywrightError as exc:
            self._stop(polite=False)
            raise BrowserCrashed(f"the browser stopped answering ({_short(exc)})") from exc
        except BaseException:
            self._stop(polite=False)
            raise

    def _capture_with(
        self, browser: _Browser, url: str, options: CaptureOptions, deadline: float
    ) -> Capture:
        if deadline - time.monotonic() <= 0:
            raise CaptureTimeout(
                f"starting the browser took the whole {options.timeout:g} s timeout"
            )
        context = browser.new_context(options)
        try:
            context.set_default_timeout(max(1.0, (deadline - time.monotonic()) * 1000))
            if options.cookies:
                context.add_cookies(
                    [{"name": name, "value": value, "url": url} for name, value in options.cookies]
                )
            record = self._record = _Page(page.BlockRules.of(options))
            if record.rules:
                context.route("**/*", record.route)
            tab = context.new_page()
            record.main_frame = tab.main_frame
            tab.on("request", record.on_request)
            tab.on("requestfailed", record.on_failed)
            tab.on("response", record.on_response)
            tab.on("console", record.on_console)
            tab.on("pageerror", record.on_page_error)
            started = time.monotonic()
            self._egress.begin()
            try:
                self._navigate(tab, record, url, options, deadline)
                navigated = time.monotonic()
                self._check_document(tab, record, url)
                _wait_in_page(tab, options, deadline)
                waited = time.monotonic()
                self._check_document(tab, record, url)
                image = _screenshot(context, tab, options)
            except (PlaywrightError, CaptureTimeout) as exc:
                loop = _redirect_loop(tab, record, deadline, LOOP_WATCH)
                if loop is not None:
                    raise loop from exc
                raise
            if record.navigations >= 2:  # it moved on by itself: caught in a loop, mid-way?
                loop = _redirect_loop(tab, record, deadline, LOOP_SETTLED_WATCH)
                if loop is not None:
                    raise loop
            captured = time.monotonic()
            title = tab.title()
            document = record.document()
            width, height = _image_size(image)
            return Capture(
                image=image,
                width=width,
                height=height,
                http_status=document.status if document else None,
                final_url=tab.url,
                title=title,
                content_type=document.mime_type if document else None,
                blocked_requests=record.blocked + self._egress.blocked(),
                requests=record.requests,
                failed_requests=record.failed,
                console_errors=record.console_count,
                console_messages=tuple(record.console),
                navigation_ms=_ms(navigated - started),
                wait_ms=_ms(waited - navigated),
                capture_ms=_ms(captured - waited),
            )
        finally:
            with contextlib.suppress(PlaywrightError):
                context.close()

    def _navigate(
        self, tab: Page, record: _Page, url: str, options: CaptureOptions, deadline: float
    ) -> None:
        remaining = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            tab.goto(url, wait_until=options.wait_until, timeout=remaining)  # type: ignore[arg-type]
        except PlaywrightTimeout:
            raise
        except PlaywrightError as exc:
            text = str(exc)
            document = record.document()
            if "Download is starting" in text:
                document = document or Document(url, 200)
                raise navigation_error("net::ERR_ABORTED", url, document) from None
            code = _NET_ERROR.search(text)
            if code is None:
                raise
            refused = self._egress.navigation_error(url, error=code.group(0))
            raise refused or navigation_error(code.group(0), url, document) from None

    def _check_document(self, tab: Page, record: _Page, url: str) -> None:
        """Raise if the page on screen is Chromium's error page or the proxy's refusal."""
        document = record.document()
        error_page = tab.url.startswith("chrome-error://")
        refused = self._egress.navigation_error(
            document.url if document else url,
            document.status if document else None,
            "net::ERR_FAILED" if error_page else None,
        )
        if refused is not None:
            raise refused
        if error_page:
            raise NavigationError(f"the browser could not show {url}")

    # -- browser life (engine's thread) ----------------------------------------------------

    def _ensure_browser(self, options: CaptureOptions) -> _Browser:
        if self._browser is not None:
            return self._browser
        path = self.settings.chromium_path
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise EngineUnavailable(
                f"chromium not found at {path}: install Debian's chromium (make install)"
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
        try:
            browser.start()
        except PlaywrightError as exc:
            self._stop(polite=False)
            raise EngineUnavailable(f"Chromium could not start: {_short(exc)}") from exc
        return browser

    def _retire_if_needed(self) -> None:
        browser = self._browser
        if browser is None:
            return
        context = browser.context
        if browser.captures >= self.recycle_after:
            logger.debug("recycling the browser after %d captures", browser.captures)
            self._stop(polite=True)
        elif context is None or context.browser is None or not context.browser.is_connected():
            logger.warning("the browser died between captures: starting a new one")
            self._stop(polite=False)

    def _stop(self, polite: bool) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            browser.quit(polite)


# -- in the page ---------------------------------------------------------------------------


def _left_ms(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


def _wait_in_page(tab: Page, options: CaptureOptions, deadline: float) -> None:
    """Everything between load and capture: styles, script, waits, scrolling, delay."""
    sheet = page.style_sheet(options)
    if sheet is not None:
        tab.evaluate(page.add_style_script(sheet))
    if options.js is not None:
        try:
            tab.evaluate(page.run_script(options.js, int(_left_ms(deadline))))
        except PlaywrightError as exc:
            if _is_crash(exc):
                raise
            raise PermanentError(f"js failed: {_short(exc)}") from None
    try:
        if options.wait_for is not None:
            tab.wait_for_selector(options.wait_for, state="visible", timeout=_left_ms(deadline))
    except PlaywrightTimeout:
        raise CaptureTimeout(
            f"wait_for: no visible {options.wait_for!r} within the {options.timeout:g} s timeout"
        ) from None
    try:
        if options.wait_for_js is not None:
            tab.wait_for_function(
                page.truthy_script(options.wait_for_js), timeout=_left_ms(deadline), polling=100
            )
    except PlaywrightTimeout:
        raise CaptureTimeout(
            f"wait_for_js: {options.wait_for_js!r} stayed false within the "
            f"{options.timeout:g} s timeout"
        ) from None
    if options.scroll:
        tab.evaluate(page.scroll_script(int(_left_ms(deadline)) - 500))
    if options.delay_ms:
        if time.monotonic() + options.delay_ms / 1000 >= deadline:
            raise CaptureTimeout(
                f"delay_ms={options.delay_ms} leaves no time to capture within "
                f"the {options.timeout:g} s timeout"
            )
        tab.wait_for_timeout(options.delay_ms)


def _screenshot(context: BrowserContext, tab: Page, options: CaptureOptions) -> bytes:
    """The image, through DevTools ``Page.captureScreenshot`` like the Selenium engine."""
    cdp = context.new_cdp_session(tab)
    if options.scale != 1:  # emulation is per DevTools session: repeat Playwright's here
        device: dict[str, Any] = {"width": options.width, "height": options.height}
        device.update(mobile=False, deviceScaleFactor=options.scale)
        cdp.send("Emulation.setDeviceMetricsOverride", device)
    element = None
    content_height = None
    if options.selector is not None:
        rect = tab.evaluate(page.element_rect_script(options.selector))
        if rect is None:
            raise PermanentError(f"selector {options.selector!r} matched no element")
        x, y, width, height = (float(v) for v in rect)
        if width < 1 or height < 1:
            raise PermanentError(f"selector {options.selector!r} matched an element with no size")
        element = (x, y, width, height)
    elif options.full_page:
        metrics = cdp.send("Page.getLayoutMetrics")
        content_height = metrics["cssContentSize"]["height"]
    params = page.screenshot_params(options, content_height, element)
    for attempt in range(1, SCREENSHOT_ATTEMPTS + 1):
        try:
            result = cdp.send("Page.captureScreenshot", params)
            break
        except PlaywrightError as exc:
            # A page just created may have no frame to capture yet on a loaded machine; a page
            # whose script never yields (busy after load) never renders one: it is hung.
            if "Unable to capture screenshot" not in str(exc):
                raise
            if attempt == SCREENSHOT_ATTEMPTS:
                raise CaptureTimeout(
                    "the page rendered no frame to capture (its script never yields)"
                ) from exc
            tab.wait_for_timeout(SCREENSHOT_RETRY_MS * attempt)
    cdp.detach()
    return base64.b64decode(result["data"])


def _image_size(image: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(image)) as decoded:
        return decoded.size


def _is_crash(exc: BaseException) -> bool:
    text = str(exc)
    return any(word in text for word in _CRASH_WORDS)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _redirect_loop(
    tab: Page, record: _Page, deadline: float, watch: float
) -> RedirectLoop | None:
    """A :class:`~screenshots.core.errors.RedirectLoop` if the page keeps navigating on its own.

    A page that has navigated by itself at least once is watched for up to ``watch``
    seconds (within the deadline) to see whether it goes on.
    """
    watch_until = min(deadline, time.monotonic() + watch)
    while record.navigations < page.LOOP_NAVIGATIONS and record.navigations >= 2:
        if time.monotonic() >= watch_until:
            break
        try:
            tab.wait_for_timeout(100)
        except PlaywrightError:
            break
    if record.navigations >= page.LOOP_NAVIGATIONS:
        return RedirectLoop(record.navigations)
    return None


def _short(exc: BaseException) -> str:
    """The first line of an exception's message, without Playwright's call log."""
    text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200]
