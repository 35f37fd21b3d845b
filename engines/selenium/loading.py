"""Waiting for a page to load through ChromeDriver, without ever blocking on the page.

Navigation returns at DOMContentLoaded (the ``eager`` page-load strategy); ``wait_until``
``load`` and ``networkidle`` are waited for here by reading only ChromeDriver's performance log:
it answers at once, whereas any command about the page waits for a pending navigation (for
ever, in a redirect loop). ChromeDriver's own page-load timeout (:func:`load_budget`) ends a
little before the capture's deadline, leaving time to tell a redirect loop from a slow page.
"""

from __future__ import annotations

import time

from engines import page
from engines.chromium_engine import NoTimeLeft, load_timeout
from engines.selenium.network import NetworkLog
from engines.selenium.tab import SeleniumTab
from screenshots.core.errors import RedirectLoop
from screenshots.core.options import CaptureOptions

#: Seconds a timed-out capture waits for the browser's network events (to tell a redirect loop).
LOOP_CHECK_TIMEOUT = 1.0
#: Seconds between two looks at the network while a page loads: the first, and the most (the
#: pause doubles in between).
LOAD_POLL_FIRST = 0.01
LOAD_POLL_MAX = 0.1
#: Seconds a loaded page must start no new navigation to count as settled.
SETTLE_WINDOW = 0.05
#: Main-frame navigations at which a page still loading is a redirect loop at once (at the
#: deadline, ``engines.page.LOOP_NAVIGATIONS`` suffice).
LOOP_EARLY = 20
#: Seconds between two looks at the network while waiting for it to go idle.
IDLE_POLL = 0.05


def wait_until(
    tab: SeleniumTab, network: NetworkLog, options: CaptureOptions, deadline: float
) -> None:
    """Wait for ``options.wait_until`` (navigation returned at DOMContentLoaded)."""
    if options.wait_until == "domcontentloaded":
        return
    wait_for_load(tab, network, options, deadline)
    if options.wait_until == "networkidle":
        idle = page.NETWORK_IDLE_MS / 1000
        while True:
            tab.read_network()
            now = time.monotonic()
            if not network.in_flight and now - network.last_activity >= idle:
                return
            if now + IDLE_POLL >= deadline:
                raise NoTimeLeft(
                    f"the network did not go idle within the {options.timeout:g} s timeout"
                )
            time.sleep(IDLE_POLL)


def wait_for_load(
    tab: SeleniumTab, network: NetworkLog, options: CaptureOptions, deadline: float
) -> None:
    """Wait for the main frame's load event, watching for a redirect loop meanwhile.

    The page counts as loaded once it fired ``load`` and started no new navigation within
    ``SETTLE_WINDOW`` (a meta refresh of 0 s or an ``onload`` redirect starts at once).
    """
    pause = LOAD_POLL_FIRST
    loaded_at: float | None = None
    while True:
        tab.read_network()
        now = time.monotonic()
        if network.navigations >= LOOP_EARLY:
            raise RedirectLoop(network.navigations)
        if not network.loaded:
            loaded_at = None
        elif loaded_at is None:
            loaded_at = now
        elif now - loaded_at >= SETTLE_WINDOW:
            return
        if now + pause >= deadline - load_margin(options):
            raise load_timeout(options)
        time.sleep(SETTLE_WINDOW if loaded_at is not None else pause)
        pause = min(LOAD_POLL_MAX, pause * 2)


def load_budget(deadline: float) -> float:
    """ChromeDriver's page-load timeout for a capture: the time left, less a margin."""
    left = deadline - time.monotonic()
    return max(0.5, left - min(LOOP_CHECK_TIMEOUT, left / 10))


def load_margin(options: CaptureOptions) -> float:
    """Seconds before the deadline the load wait gives up (room to tell a redirect loop)."""
    return min(LOOP_CHECK_TIMEOUT, options.timeout / 10)
