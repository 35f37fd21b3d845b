"""Chromium driven by Playwright (sync API): one browser per engine, a context reused and wiped.

The system Chromium (``Settings.chromium_path``) is launched with the flags of
:func:`engines.chromium.chromium_flags`, in a profile directory of
:func:`engines.chromium.new_profile_dir` (as a persistent context, so the profile path is on
Chromium's command line and :func:`engines.chromium.reap_orphans` finds a browser whose owner
died). Playwright never downloads a browser here.

Anonymous captures share one browser context, wiped between captures (cookies, storage,
service workers, permissions: a new context per URL cost ~400 ms of browser CPU), so they share
its HTTP cache (:mod:`engines.isolation`); a capture with credentials or ``isolation: strict``
gets a context of its own. Contexts are made with the shot's viewport, scale, user agent,
locale, time zone, colour scheme and headers (a capture with other settings than the shared
context's gets a new shared context). The browser is replaced after ``recycle_after`` captures
and after any failure that leaves it suspect.

Playwright's sync objects belong to the thread that created them, and its sync API refuses to
run inside an asyncio loop. So each engine owns one thread that does all its Playwright calls;
:meth:`PlaywrightEngine.capture` hands the work over and waits, which makes the engine usable
from any thread (one capture at a time) and lets :meth:`~PlaywrightEngine.close` run from
another thread than the captures (the embedded runner and Celery's shutdown do that). The
caller's wait is the hard deadline: ``WATCHDOG_GRACE`` seconds past ``options.timeout`` the
browser's processes are killed, which ends whatever Playwright call was stuck.

The package is split by job:

- :mod:`engines.playwright.engine`: :class:`PlaywrightEngine`, one capture and its failures;
- :mod:`engines.playwright.thread`: the thread making all of an engine's Playwright calls;
- :mod:`engines.playwright.browser`: Playwright, its Chromium and the per-capture contexts;
- :mod:`engines.playwright.record`: what one capture's page did (requests, console, documents);
- :mod:`engines.playwright.tab`: the page as the shared steps of :mod:`engines.tab` see it.
"""

from engines.chromium_engine import WATCHDOG_GRACE
from engines.playwright.engine import PlaywrightEngine

__all__ = ["WATCHDOG_GRACE", "PlaywrightEngine"]
