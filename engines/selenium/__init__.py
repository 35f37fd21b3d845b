"""Chromium driven by ChromeDriver through Selenium: the default engine.

One browser per engine, started by ChromeDriver on the first capture and reused (a warm
capture costs a fraction of a cold start), replaced after ``recycle_after`` captures and when
it dies. Up to ``SCREENSHOT_TABS`` captures run at once, each in a tab of its own driven over
its own DevTools websocket (ChromeDriver's per-command cost stays off the hot path). Every
capture has a hard deadline: its DevTools commands wait no longer, then a watchdog closes its
tab ``WATCHDOG_GRACE`` seconds past the deadline (the whole browser if that does not answer),
so a page stuck in ``while(true){}`` cannot hold a worker or the other tabs.

What the main document answered (status, URL after redirects, MIME type, network error) comes
from the tab's DevTools ``Network`` events of the main frame's document request. The page's
own state (``document.URL``) catches Chromium's error page. Both
are needed: a download or an HTTP 204 leaves the *previous* page on screen with no error page
at all, and only the network events tell.

The package is split by job:

- :mod:`engines.selenium.engine`: :class:`SeleniumEngine`, its tabs, captures and failures;
- :mod:`engines.selenium.driver`: ChromeDriver, its Chromium and their processes;
- :mod:`engines.selenium.cdp`: a small thread-safe DevTools client (one websocket);
- :mod:`engines.selenium.cdptab`: a tab, set up before and wiped after each capture;
- :mod:`engines.selenium.loading`: waiting for ``load`` and ``networkidle`` without blocking;
- :mod:`engines.selenium.network`: the capture's requests, from the tab's DevTools events.
"""

from engines.chromium_engine import WATCHDOG_GRACE
from engines.selenium.engine import PAGE_CRASHED, SeleniumEngine

__all__ = ["PAGE_CRASHED", "WATCHDOG_GRACE", "SeleniumEngine"]
