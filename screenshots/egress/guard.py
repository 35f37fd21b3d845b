"""What an engine needs from the egress policy, whatever drives the browser.

:class:`EgressGuard` starts the engine's :class:`~screenshots.egress.proxy.EgressProxy` on first use
(when ``settings.egress_enabled``, the default), gives the ``--proxy-server`` value for the
browser's flags, keeps the browser's control ports out of reach, and per capture:

- :meth:`EgressGuard.begin` marks the start of a navigation;
- :meth:`EgressGuard.navigation_error` says whether the main document failed *because of the
  proxy* (refused by the policy, unknown host, refused connection) and gives the
  :class:`~screenshots.core.errors.NavigationError` to raise: ``blocked by egress policy: 10.0.0.5
  is private``,
  or the same ``unknown host x (net::ERR_NAME_NOT_RESOLVED)`` a direct browser would give;
- :meth:`EgressGuard.blocked` counts the requests the policy refused since the mark.

With the policy off every method is a no-op and the browser connects directly.
"""

from __future__ import annotations

import time

from screenshots.core.errors import BrowserCrashed, NavigationError, ScreenshotError
from screenshots.core.settings import Settings
from screenshots.egress.policy import EgressPolicy
from screenshots.egress.proxy import EgressProxy, Failure

#: What Chromium reports when the proxy refuses a ``CONNECT`` (HTTPS, WebSocket).
TUNNEL_FAILED = "net::ERR_TUNNEL_CONNECTION_FAILED"
#: What Chromium reports when the proxy itself does not answer.
PROXY_DOWN = frozenset(
    {"net::ERR_PROXY_CONNECTION_FAILED", "net::ERR_MANDATORY_PROXY_CONFIGURATION_FAILED"}
)


class EgressGuard:
    """One engine's egress proxy and per-capture accounting. Not thread-safe (like engines)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.egress_enabled
        self.policy = EgressPolicy(settings.egress_allow)
        self.proxy: EgressProxy | None = None
        self._since = 0.0
        self._blocked_before = 0

    def proxy_server(self) -> str | None:
        """The ``--proxy-server`` value (starting the proxy if needed), ``None`` when off."""
        if not self.enabled:
            return None
        if self.proxy is None or not self.proxy.running:
            self.proxy = EgressProxy(self.policy).start()
        return self.proxy.url

    def protect(self, *endpoints: int | str | None) -> None:
        """Keep loopback ports out of the pages' reach: ``1234`` or ``"localhost:1234"``."""
        if self.proxy is None:
            return
        for endpoint in endpoints:
            if endpoint is None:
                continue
            text = str(endpoint).rpartition(":")[2]
            if text.isdigit():
                self.proxy.protect(int(text))

    def begin(self) -> None:
        """Mark the start of a navigation: failures and refusals after it belong to it."""
        self._since = time.monotonic()
        self._blocked_before = self.proxy.blocked_count if self.proxy else 0

    def blocked(self) -> int:
        """Requests the policy refused since :meth:`begin`."""
        return self.proxy.blocked_count - self._blocked_before if self.proxy else 0

    def failure(
        self, url: str, status: int | None = None, error: str | None = None
    ) -> Failure | None:
        """The proxy's failure behind a main document at ``url``, if the proxy caused it.

        ``status`` is the document's HTTP status and ``error`` the browser's network error,
        as far as the engine knows them; a failure counts when the document got no answer
        or got exactly the answer the proxy gave.
        """
        if self.proxy is None:
            return None
        failure = self.proxy.failure_for(url, self._since)
        if failure is None and error == TUNNEL_FAILED:
            failure = self.proxy.latest_failure(self._since)  # a redirect to a refused host
        if failure is None:
            return None
        if status is not None and error is None and status != failure.status:
            return None
        return failure

    def navigation_error(
        self, url: str, status: int | None = None, error: str | None = None
    ) -> ScreenshotError | None:
        """The error for a main document the proxy failed, else ``None``.

        A :class:`NavigationError` when the proxy refused the document or could not reach its
        host; a :class:`BrowserCrashed` (transient: the engine replaces its browser, and this
        guard its proxy) when the proxy itself did not answer.
        """
        if self.proxy is not None and error in PROXY_DOWN:
            self.close()  # the next browser gets a new proxy
            return BrowserCrashed("the egress proxy did not answer: the browser is replaced")
        failure = self.failure(url, status, error)
        if failure is None:
            return None
        if failure.blocked:
            return NavigationError(failure.message, code=failure.code)
        return NavigationError(f"{failure.reason} ({failure.code})", code=failure.code)

    def close(self) -> None:
        """Stop the proxy. Safe to call twice; the next :meth:`proxy_server` starts a new one."""
        proxy, self.proxy = self.proxy, None
        if proxy is not None:
            proxy.close()
