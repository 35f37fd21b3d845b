"""What every engine driving Chromium shares, whatever drives it: one browser, its life, its words.

:class:`ChromiumEngine` holds the browser-wide part of the Selenium and Playwright engines, so
that each keeps only how it navigates, evaluates in the page and records the network:

- settings, ``recycle_after``, ``tabs``, the egress guard (the filtering proxy every browser
  goes through);
- the tabs: up to ``tabs`` captures at once, each under a :class:`Watchdog`, counted in on a
  browser that is up (:meth:`ChromiumEngine._enter`);
- starting: the binaries' checks (one clear error when Chromium is not installed) and reaping
  the browsers of dead owners once per process;
- retiring: a browser is replaced after ``recycle_after`` captures (once the captures in
  flight end) or when it died, by one capture while the others wait; stopping politely or by
  force;
- the main document: turning a network error or the proxy's refusal into the error of
  :mod:`screenshots.core.errors` the user reads, and building the :class:`~engines.base.Capture`;
- the user-facing texts of timeouts, crashes and failed starts (:func:`load_timeout`...), and
  the :class:`Watchdog` that ends a capture past its deadline.

What one capture does inside the page (styles, scripts, waits, the image) is in
:mod:`engines.tab`. The engine object is browser-wide: per-capture state lives in the objects
each capture creates (its tab, its network record), not here.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from PIL import Image

from engines import chromium
from engines.base import Capture, Engine
from engines.page import LOOP_NAVIGATIONS, Document, clip_message, navigation_error
from screenshots.core.errors import (
    BrowserCrashed,
    CaptureTimeout,
    EngineUnavailable,
    NavigationError,
    RedirectLoop,
    ScreenshotError,
)
from screenshots.core.options import CaptureOptions, option_names
from screenshots.core.settings import Settings
from screenshots.egress.guard import EgressGuard

logger = logging.getLogger(__name__)

#: Seconds past a capture's deadline after which the watchdog kills the browser.
WATCHDOG_GRACE = 2.0

_NET_ERROR = re.compile(r"net::ERR_[A-Z0-9_]+")

_reaped_in: int | None = None  # pid of the process that already reaped orphans


class NoTimeLeft(CaptureTimeout):
    """The deadline is too short for the asked delay or after a cold start: the browser is fine."""


class Browser(Protocol):
    """One started Chromium (and whatever drives it), as :class:`ChromiumEngine` handles it."""

    profile: Path
    captures: int

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    def quit(self, polite: bool) -> None: ...


class Traffic(Protocol):
    """What a capture's network record counts (requests made, failed, blocked)."""

    requests: int
    failed: int
    blocked: int


@dataclass
class Clock:
    """When a capture started navigating, finished waiting for the page, took its image."""

    started: float = field(default_factory=time.monotonic)
    navigated: float = 0.0
    waited: float = 0.0
    captured: float = 0.0


class InFlight:
    """One capture's place in the engine: its browser (and the one it is starting), for the
    watchdog; each engine adds its tab."""

    def __init__(self) -> None:
        self.browser: Browser | None = None
        self.starting: Browser | None = None  # the browser this capture is starting


BrowserT = TypeVar("BrowserT", bound=Browser)
FlightT = TypeVar("FlightT", bound=InFlight)


class ChromiumEngine(Engine, Generic[BrowserT, FlightT]):
    """Base of the engines driving Chromium: one browser, ``tabs`` captures at once; see the
    module docstring.

    ``settings`` gives the binaries' paths and ``SCREENSHOT_TABS`` (default:
    :func:`screenshots.core.settings.load_settings`); ``recycle_after`` is the number of
    captures a browser serves before it is replaced (default ``settings.recycle_after`` per
    tab); ``tabs`` overrides ``settings.tabs``. Thread-safe: :meth:`capture` may be called
    from ``tabs`` threads at once (more wait for a free tab), :meth:`~Engine.close` from any.

    :meth:`capture` counts a capture in on a browser that is up (:meth:`_enter`: started,
    recycled or replaced by one capture while the others wait), under a :class:`Watchdog`
    that calls :meth:`_expire` past its deadline, and hands it to :meth:`_capture_in_tab`.
    An engine says how it starts a browser (:meth:`_start`), captures in a tab, ends a stuck
    capture and drops its idle tabs (:meth:`_drop_idle_tabs`).
    """

    #: Every option (an engine refuses what it cannot honour in :meth:`unsupported`).
    supports = frozenset(option_names())

    def __init__(
        self,
        settings: Settings | None = None,
        recycle_after: int | None = None,
        tabs: int | None = None,
    ) -> None:
        if settings is None:
            from screenshots.core.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self.recycle_after = settings.recycle_after if recycle_after is None else recycle_after
        if self.recycle_after < 1:
            raise ValueError("recycle_after must be at least 1")
        self.tabs = settings.tabs if tabs is None else tabs
        if self.tabs < 1:
            raise ValueError("tabs must be at least 1")
        self.concurrent = self.tabs
        if recycle_after is None:
            # SCREENSHOT_RECYCLE_AFTER counts captures per tab: each tab's browser context
            # keeps its own HTTP cache, which a replaced browser loses (a browser of 4 tabs
            # replaced every 200 captures cost the bench 13% more CPU per shot).
            self.recycle_after = settings.recycle_after * self.tabs
        self._browser: BrowserT | None = None
        self._egress = EgressGuard(settings)  # the filtering proxy every browser goes through
        #: Browser starts that failed in a row (see :func:`could_not_start`).
        self._start_failures = 0
        self._free_tabs = threading.BoundedSemaphore(self.tabs)
        self._lock = threading.Condition()
        self._in_flight = 0
        self._retiring = False

    # -- capture ---------------------------------------------------------------------------

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        deadline = time.monotonic() + options.timeout
        with self._free_tabs:
            flight = self._new_flight()
            with Watchdog(options.timeout + WATCHDOG_GRACE, lambda: self._expire(flight)) as dog:
                try:
                    browser = self._enter(options, dog, flight)
                except BaseException:
                    self._leave()
                    raise
                flight.browser = browser
                try:
                    return self._capture_in_tab(browser, flight, url, options, deadline, dog)
                finally:
                    self._leave()

    def _new_flight(self) -> FlightT:  # pragma: no cover
        raise NotImplementedError

    def _capture_in_tab(
        self,
        browser: BrowserT,
        flight: FlightT,
        url: str,
        options: CaptureOptions,
        deadline: float,
        watchdog: Watchdog,
    ) -> Capture:  # pragma: no cover
        """Capture ``url`` in a tab of ``browser``; failures stay with this capture."""
        raise NotImplementedError

    def _expire(self, flight: FlightT) -> None:  # pragma: no cover
        """The watchdog, past a capture's deadline: end whatever the capture waits for."""
        raise NotImplementedError

    @property
    def profile_dir(self) -> Path | None:
        """Profile directory of the current browser (for tests and diagnostics)."""
        browser = self._browser
        return browser.profile if browser else None

    # -- browser life ----------------------------------------------------------------------

    def binaries(self) -> list[tuple[str, str, str]]:
        """``(name, path, Debian package)`` of each program this engine starts."""
        return [("chromium", self.settings.chromium_path, "chromium")]

    def _before_start(self) -> None:
        """Check the binaries, and reap orphaned browsers once per process."""
        for what, path, package in self.binaries():
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

    def _enter(self, options: CaptureOptions, watchdog: Watchdog, flight: FlightT) -> BrowserT:
        """Count this capture in, on a browser that is up (started, retired or replaced as
        needed, by one capture while the others wait)."""
        with self._lock:
            while True:
                if self._retiring:
                    self._lock.wait()
                    continue
                browser = self._browser
                if browser is not None and not browser.alive():
                    logger.warning("the browser died: starting a new one")
                    self._forget(browser)
                    browser.quit(False)
                    continue
                if browser is not None and browser.captures >= self.recycle_after:
                    logger.debug("recycling the browser after %d captures", browser.captures)
                    self._retiring = True
                    try:
                        while self._in_flight:
                            self._lock.wait()
                        self._stop(polite=True)
                    finally:
                        self._retiring = False
                        self._lock.notify_all()
                    continue
                break
            self._in_flight += 1
            if self._browser is None:
                self._start(options, watchdog, flight)
            browser = self._browser
            assert browser is not None
            browser.captures += 1
            return browser

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._lock.notify_all()

    def _start(
        self, options: CaptureOptions, watchdog: Watchdog, flight: FlightT
    ) -> None:  # pragma: no cover
        """Start a browser as ``self._browser`` (under the lock, the other captures wait)."""
        raise NotImplementedError

    def _drop_idle_tabs(self) -> None:  # pragma: no cover
        """Forget the tabs no capture uses (their browser is going away; under the lock)."""
        raise NotImplementedError

    @staticmethod
    def _time_left(deadline: float, options: CaptureOptions) -> float:
        """Seconds left before ``deadline``; none left (a slow browser start) is
        :class:`NoTimeLeft`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise no_time_after_start(options)
        return remaining

    def _discard(self) -> None:
        self._stop(polite=False)

    def _discard_browser(self, browser: BrowserT) -> None:
        """Kill ``browser`` if it is still the engine's (the captures in flight on it fail)."""
        with self._lock:
            if self._browser is not browser:
                return
            self._forget(browser)
        browser.quit(False)

    def _forget(self, browser: BrowserT) -> None:
        """Drop ``browser`` and its idle tabs (under the lock)."""
        self._browser = None
        self._drop_idle_tabs()

    def _stop(self, polite: bool) -> None:
        with self._lock:
            browser = self._browser
            if browser is not None:
                self._forget(browser)
        if browser is not None:
            browser.quit(polite)

    def _egress_view(self) -> EgressGuard:
        """The proxy as one capture sees it: its own start mark (:meth:`EgressGuard.begin`), so
        that captures in flight at the same time on one engine do not reset each other's. The
        proxy's count of refused requests is browser-wide: with several captures in flight, a
        capture's ``blocked_requests`` may include another's refusals in the same moments."""
        return copy.copy(self._egress)

    # -- the main document -----------------------------------------------------------------

    def _failed_navigation(
        self,
        text: str,
        url: str,
        document: Document | None = None,
        egress: EgressGuard | None = None,
    ) -> ScreenshotError | None:
        """The error for a navigation that failed with ``text``, if it names a network error
        (the proxy's refusal first); ``None`` if it does not. ``egress`` is the capture's view
        of the proxy (:meth:`_egress_view`), the engine's by default."""
        code = net_error(text)
        if code is None:
            return None
        refused = (egress or self._egress).navigation_error(url, error=code)
        return refused or navigation_error(code, url, document)

    def _check_document(
        self,
        url: str,
        document: Document | None,
        error_page: bool,
        egress: EgressGuard | None = None,
    ) -> None:
        """Raise if the main document failed, the proxy refused it or Chromium shows its error
        page (``error_page``) instead of it."""
        error = document.error if document else None
        refused = (egress or self._egress).navigation_error(
            document.url if document else url,
            document.status if document else None,
            error or ("net::ERR_FAILED" if error_page else None),
        )
        if refused is not None:  # the egress proxy refused or failed the main document
            raise refused
        if document is not None and document.error is not None:
            raise navigation_error(document.error, url, document)
        if document is not None and document.challenge and not error_page:
            raise navigation_error("net::ERR_INVALID_AUTH_CREDENTIALS", url, document)
        if error_page:
            raise NavigationError(f"the browser could not show {url}")

    def _result(
        self,
        image: bytes,
        document: Document | None,
        page: tuple[str, str | None],
        traffic: Traffic,
        console: tuple[int, Sequence[str]],
        clock: Clock,
        egress: EgressGuard | None = None,
    ) -> Capture:
        """The capture: the image, the main document, the page's ``(URL, title)``, what the
        network record and the console counted, and the timings."""
        width, height = image_size(image)
        errors, messages = console
        return Capture(
            image=image,
            width=width,
            height=height,
            http_status=document.status if document else None,
            final_url=page[0],
            title=page[1],
            content_type=document.mime_type if document else None,
            blocked_requests=traffic.blocked + (egress or self._egress).blocked(),
            requests=traffic.requests,
            failed_requests=traffic.failed,
            console_errors=errors,
            console_messages=tuple(clip_message(m) for m in messages),
            navigation_ms=ms(clock.navigated - clock.started),
            wait_ms=ms(clock.waited - clock.navigated),
            capture_ms=ms(clock.captured - clock.waited),
        )


class Watchdog:
    """Calls ``action`` from a timer thread if not cancelled within ``seconds``."""

    def __init__(self, seconds: float, action: Callable[[], None]) -> None:
        self.fired = False
        self._action = action
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        deadline_passed()
        try:
            self._action()
        except Exception:  # a watchdog must not die noisily
            logger.exception("watchdog could not kill the browser")

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


# -- the words users read ------------------------------------------------------------------


def deadline_passed() -> None:
    logger.warning("capture deadline passed: killing the browser")


def load_timeout(options: CaptureOptions) -> CaptureTimeout:
    return CaptureTimeout(f"page did not finish loading within {options.timeout:g} s")


def start_timeout(options: CaptureOptions) -> CaptureTimeout:
    return CaptureTimeout(f"the browser did not start within {options.timeout:g} s")


def no_time_after_start(options: CaptureOptions) -> NoTimeLeft:
    return NoTimeLeft(f"starting the browser took the whole {options.timeout:g} s timeout")


def browser_crashed(exc: BaseException) -> BrowserCrashed:
    return BrowserCrashed(f"the browser stopped answering ({short(exc)})")


#: Failed starts in a row after which a browser that will not start is the worker's
#: configuration (bad flags, no sandbox as root), not a browser killed while starting.
START_FAILURES_FATAL = 3


def could_not_start(exc: BaseException, failures: int = START_FAILURES_FATAL) -> ScreenshotError:
    """The error of a browser start that failed, the ``failures``-th in a row: transient at
    first (a browser killed while starting, by the OOM killer or an orphan reaper, is retried
    like a crash), :class:`EngineUnavailable` once it keeps failing."""
    if failures < START_FAILURES_FATAL:
        return BrowserCrashed(f"Chromium could not start ({short(exc)}); trying again")
    return EngineUnavailable(f"Chromium could not start: {short(exc)}")


def redirect_loop(navigations: int) -> RedirectLoop | None:
    """A :class:`~screenshots.core.errors.RedirectLoop` if the main frame navigated often
    enough (:data:`engines.page.LOOP_NAVIGATIONS`) to be caught in one."""
    return RedirectLoop(navigations) if navigations >= LOOP_NAVIGATIONS else None


# -- small helpers -------------------------------------------------------------------------


def net_error(text: str) -> str | None:
    """The ``net::ERR_...`` code in an error message, if any."""
    match = _NET_ERROR.search(text)
    return match.group(0) if match else None


def short(exc: BaseException) -> str:
    """The first line of an exception's message, without the driver's stack trace or call log."""
    text = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:200]


def image_size(image: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(image)) as decoded:
        return decoded.size


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def left_ms(deadline: float) -> int:
    """Milliseconds until ``deadline`` (negative once past)."""
    return int((deadline - time.monotonic()) * 1000)
