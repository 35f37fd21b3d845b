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

The package is split by job:

- :mod:`engines.selenium.engine`: :class:`SeleniumEngine`, one capture and its failures;
- :mod:`engines.selenium.driver`: ChromeDriver, its Chromium and their processes;
- :mod:`engines.selenium.tab`: the reused tab, set up before and wiped after each capture;
- :mod:`engines.selenium.loading`: waiting for ``load`` and ``networkidle`` without blocking;
- :mod:`engines.selenium.network`: the capture's requests, from the performance log.
"""

from engines.chromium_engine import WATCHDOG_GRACE
from engines.selenium.engine import PAGE_CRASHED, SeleniumEngine

__all__ = ["PAGE_CRASHED", "WATCHDOG_GRACE", "SeleniumEngine"]
