"""The HTTP cache decision (issue #15): which captures may share the browser's HTTP cache.

Chromium partitions its HTTP cache by top-level site, so an anonymous capture only ever sees
what any visitor of that site would have fetched: keeping the cache between anonymous captures
leaks nothing that is not public, and it is what every browser does. A capture that carries
credentials (``cookies``, any ``headers``, ``user:pass@`` in the URL) could fetch a private
response, so it must neither read nor write the shared cache; ``isolation: strict`` (the
option, or ``SCREENSHOT_ISOLATION=strict`` for the whole fleet) asks the same of any capture.
Everything else a page can leave behind (cookies, storage, service workers, permissions) is
wiped between captures whatever this says.

Both Chromium engines apply it through :class:`CacheState`, one per tab: DevTools'
``Network.setCacheDisabled`` keeps a private capture from *reading* the cache, but Chromium
still *writes* the responses it fetched into it (measured: the next capture with the cache on
was served what a cache-disabled one fetched). So once a private capture ran in a browser
context, its cache is cleared (``Network.clearBrowserCache``) before the next capture that
reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings


def private(url: str, options: CaptureOptions, settings: Settings) -> bool:
    """Whether this capture must neither read nor write the shared HTTP cache."""
    if settings.isolation == "strict" or options.isolation == "strict":
        return True
    return bool(options.cookies or options.headers or has_credentials(url))


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user name or password (``https://user:pass@host/``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True  # the browser will refuse it; do not risk the cache for it
    return "@" in parts.netloc


class CacheState:
    """What one browser context's HTTP cache is set to, and whether a private capture wrote
    into it; :meth:`apply` sets it for the next capture with the fewest DevTools commands."""

    def __init__(self) -> None:
        self.disabled = False  # Chromium's default: the cache is used
        self.written_privately = False

    def apply(self, private: bool, cdp: Callable[[str, dict[str, Any]], object]) -> None:
        """Set the cache for a capture (``private``: neither read nor keep what it fetches)."""
        if private:
            if not self.disabled:
                cdp("Network.setCacheDisabled", {"cacheDisabled": True})
                self.disabled = True
            self.written_privately = True
            return
        if self.written_privately:
            # Chromium wrote what the private capture fetched despite the disabled cache.
            cdp("Network.clearBrowserCache", {})
            self.written_privately = False
        if self.disabled:
            cdp("Network.setCacheDisabled", {"cacheDisabled": False})
            self.disabled = False
