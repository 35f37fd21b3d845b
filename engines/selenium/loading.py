"""Waiting for a page to load, from the tab's DevTools events, without ever blocking on the page.

Navigation (:meth:`~engines.selenium.cdptab.CdpTab.navigate`) returns once the document is
committed; ``DOMContentLoaded``, ``load`` and ``networkidle`` are waited for here by reading
only the events the tab's websocket delivers: they arrive whatever the page does, whereas a
command evaluated in the page waits for a busy page (for ever, in ``while (true) {}``). The
wait ends a little before the capture's deadline (:func:`load_margin`), leaving time to tell
a redirect loop from a slow page.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engines import page
from engines.chromium_engine import NoTimeLeft, load_timeout
from engines.selenium.cdptab import CdpTab
from engines.selenium.network import NetworkLog
from screenshots.core.errors import RedirectLoop
from screenshots.core.options import CaptureOptions

#: Seconds a timed-out capture waits for the browser's network events (to tell a redirect loop).
LOOP_CHECK_TIMEOUT = 1.0
#: Seconds a loaded page must start no new navigation to count as settled.
SETTLE_WINDOW = 0.05
#: Main-frame navigations at which a page still loading is a redirect loop at once (at the
#: deadline, ``engines.page.LOOP_NAVIGATIONS`` suffice).
LOOP_EARLY = 20
#: Longest wait for the next event while a page loads, in seconds.
LOAD_POLL_MAX = 0.1
#: Seconds between two looks at the network while waiting for it to go idle.
IDLE_POLL = 0.05


def wait_until(tab: CdpTab, network: NetworkLog, options: CaptureOptions, deadline: float) -> None:
    """Wait for ``options.wait_until`` (``DOMContentLoaded`` at least)."""
    if options.wait_until == "domcontentloaded":
        _wait_settled(tab, network, options, deadline, lambda: network.ready)
        return
    _wait_settled(tab, network, options, deadline, lambda: network.loaded)
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
            tab.pause_for_events(IDLE_POLL)


def _wait_settled(
    tab: CdpTab,
    network: NetworkLog,
    options: CaptureOptions,
    deadline: float,
    reached: Callable[[], bool],
) -> None:
    """Wait for the main frame's event (``reached``), watching for a redirect loop meanwhile.

    The page counts as there once the event fired and no new navigation started within
    ``SETTLE_WINDOW`` (a meta refresh of 0 s or an ``onload`` redirect starts at once).
    """
    since: float | None = None
    give_up = deadline - load_margin(options)
    while True:
        tab.read_network()
        now = time.monotonic()
        if network.navigations >= LOOP_EARLY:
            raise RedirectLoop(network.navigations)
        if not reached() or network.coming():  # not there, or about to leave
            since = None
        elif since is None:
            since = now
        elif now - since >= SETTLE_WINDOW:
            return
        if now >= give_up:
            raise load_timeout(options)
        if tab.crashed or tab.connection.closed:
            tab.cdp("Runtime.evaluate", {"expression": "0"})  # raises what happened to the tab
        wait = SETTLE_WINDOW - (now - since) if since is not None else LOAD_POLL_MAX
        tab.pause_for_events(min(max(0.001, wait), give_up - now))


def load_margin(options: CaptureOptions) -> float:
    """Seconds before the deadline the load wait gives up (room to tell a redirect loop)."""
    return min(LOOP_CHECK_TIMEOUT, options.timeout / 10)
