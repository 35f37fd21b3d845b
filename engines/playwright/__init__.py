"""Chromium driven by Playwright (async API on a loop thread): one browser, many tabs.

The system Chromium (``Settings.chromium_path``) is launched with the flags of
:func:`engines.chromium.chromium_flags`, in a profile directory of
:func:`engines.chromium.new_profile_dir` (as a persistent context, so the profile path is on
Chromium's command line and :func:`engines.chromium.reap_orphans` finds a browser whose owner
died). Playwright never downloads a browser here.

Up to ``SCREENSHOT_TABS`` captures are in flight at once on one browser, from as many threads,
each in a tab of its own: a browser context and its page, reused and wiped between captures
(the page left for ``about:blank``, then cookies, storage, service workers, permissions: a new
context per URL cost ~400 ms of browser CPU, a new page a renderer process), so anonymous
captures keep the tab's HTTP cache (:mod:`engines.isolation`); a capture with
credentials or ``isolation: strict`` gets a context of its own, closed after it. Contexts are
made with the shot's viewport, scale, user agent, locale, time zone, colour scheme and headers
(an idle tab's context made with other settings is replaced).

Playwright's async API drives every page from one asyncio loop, in a thread of the engine's
own; the capturing threads hand it each call and wait, so the capture steps stay the blocking
code shared with the Selenium engine. The capture's deadline is hard: ``WATCHDOG_GRACE``
seconds past ``options.timeout`` its context is closed (the browser killed if that fails),
which ends whatever call was stuck. The browser is replaced after ``recycle_after`` captures
(counted per tab) and when it dies.

The package is split by job:

- :mod:`engines.playwright.engine`: :class:`PlaywrightEngine`, the tabs, a capture and its
  failures, the browser's life;
- :mod:`engines.playwright.thread`: the loop running all of an engine's Playwright calls;
- :mod:`engines.playwright.slot`: a tab (context and page): readied and wiped for each capture,
  a page that moves on by itself waited for;
- :mod:`engines.playwright.browser`: Playwright, its Chromium and the contexts' options;
- :mod:`engines.playwright.record`: what one capture's page did (requests, console, documents);
- :mod:`engines.playwright.tab`: the page as the shared steps of :mod:`engines.tab` see it.
"""

from engines.chromium_engine import WATCHDOG_GRACE
from engines.playwright.engine import PlaywrightEngine

__all__ = ["WATCHDOG_GRACE", "PlaywrightEngine"]
