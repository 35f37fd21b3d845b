"""One browser connection to the egress proxy: its requests, one at a time, and its upstream.

A :class:`Session` reads the browser's requests with h11 (:mod:`screenshots.egress.http1`):

- ``CONNECT host:port`` (HTTPS, ``wss:``): after the dialer's checks the proxy answers
  ``200 Connection Established`` and relays bytes both ways (:mod:`screenshots.egress.relay`);
  the connection is the tunnel's from then on;
- ``GET http://host:port/path`` (absolute-form, plain HTTP):
  :func:`screenshots.egress.forward.forward` sends it on and relays the answer, and the
  connection may carry the next request, for the same host or another: every request is
  checked.

Each new upstream connection goes through :meth:`Session.open`: resolved, checked and dialed
by the :class:`~screenshots.egress.dial.Dialer`, and on failure answered ``403`` (with
:data:`BLOCKED_HEADER`) or ``502`` (with :data:`ERROR_HEADER`) and recorded in the
:class:`~screenshots.egress.failures.FailureLog`.
"""

from __future__ import annotations

import asyncio
import contextlib

import h11

from screenshots.egress.dial import Dialer, Upstream, host_key
from screenshots.egress.failures import FailureLog, Refused
from screenshots.egress.forward import forward
from screenshots.egress.http1 import H11Stream, check_request, split_authority
from screenshots.egress.relay import relay_both

#: Response header carrying the reason of a refusal.
BLOCKED_HEADER = "X-Egress-Blocked"
#: Response header carrying the network error of a failed upstream connection.
ERROR_HEADER = "X-Egress-Error"


class Session:
    """One browser connection to the proxy and the origin connection it is using."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dialer: Dialer,
        failures: FailureLog,
        idle_timeout: float,
    ) -> None:
        self.browser = H11Stream(h11.SERVER, reader, writer, idle_timeout)
        self.dialer, self.failures, self.idle_timeout = dialer, failures, idle_timeout
        self.upstream: Upstream | None = None
        #: The HTTP client side of :attr:`upstream` (``None`` for a tunnel).
        self.origin: H11Stream | None = None
        #: ``(host, port)`` as the request spelled them when :attr:`origin` was dialed.
        self.target: tuple[str, int] | None = None

    def use(self, upstream: Upstream) -> H11Stream:
        """Make ``upstream`` the origin connection for plain HTTP; its client side."""
        self.drop_upstream()
        self.upstream = upstream
        self.origin = H11Stream(h11.CLIENT, upstream.reader, upstream.writer, self.idle_timeout)
        return self.origin

    def drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        self.upstream = self.origin = None
        self.target = None

    async def serve(self) -> None:
        """Answer the browser's requests until either side is done."""
        while True:
            request = await self.browser.next_event()
            if not isinstance(request, h11.Request):
                return  # closed between requests
            check_request(request)
            if request.method == b"CONNECT":
                await self.tunnel(request)
                return
            if not await forward(self, request):
                return

    async def open(self, host: str, port: int) -> Upstream | None:
        """Resolve, check and connect; on failure answer the browser and return ``None``."""
        self.failures.requests += 1
        try:
            return await self.dialer.dial(host, port)
        except Refused as refused:
            failure = refused.failure
            self.failures.record((host_key(failure.host), failure.port), failure)
            extra = (
                {BLOCKED_HEADER: failure.reason}
                if failure.blocked
                else {ERROR_HEADER: failure.code}
            )
            self.browser.answer(failure.status, failure.message, extra)
            with contextlib.suppress(Exception):
                await self.browser.drain()
            return None

    async def tunnel(self, request: h11.Request) -> None:
        """``CONNECT``: check and dial, then relay bytes both ways untouched."""
        host, port = split_authority(request.target.decode("ascii"), None)
        upstream = await self.open(host, port)
        if upstream is None:
            return
        self.upstream = upstream  # closed with the session, or when the browser hangs up
        self.browser.send(
            h11.Response(status_code=200, reason=b"Connection Established", headers=[])
        )
        early = self.browser.trailing()  # what the browser sent right behind its request
        if early:
            upstream.writer.write(early)
        await relay_both(
            (self.browser.reader, self.browser.writer),
            (upstream.reader, upstream.writer),
            self.idle_timeout,
        )
