"""A filtering HTTP forward proxy on loopback that every request of our browsers goes through.

It speaks the two things Chromium sends to an HTTP proxy:

- ``CONNECT host:port`` for HTTPS and WebSockets (``wss:`` and ``ws:``): after the policy says
  yes, bytes are relayed both ways untouched (TLS stays end to end, no certificate of ours);
- ``GET http://host:port/path`` (absolute-form) for plain HTTP: the request is sent on to the
  origin and the response relayed back, with HTTP/1.1 framing (``Content-Length``, chunked,
  close-delimited) so that one browser connection can carry requests for several hosts and
  every request is checked; a WebSocket upgrade (``101``) becomes a tunnel.

For every new upstream connection the host is resolved **once** (``getaddrinfo``, or read as a
numeric address the way browsers read it), the connection is refused if **any** resolved
address is refused by the :class:`~screenshots.egress.policy.EgressPolicy`, and otherwise the proxy
dials
exactly an address it checked: there is no second resolution for DNS rebinding to exploit.
Loopback ports registered with :meth:`EgressProxy.protect` (the browser's DevTools port and
ChromeDriver's port, and the proxy's own) are refused whatever the allow-list says.

A refusal is answered ``403 Forbidden`` with an ``X-Egress-Blocked`` header and a body saying
why (``blocked by egress policy: 10.0.0.5 is private``); a host that does not resolve or
cannot be reached is answered ``502``. Both are remembered (:meth:`EgressProxy.failure_for`)
so the engine can report why a main document failed, and refusals are counted
(:attr:`EgressProxy.blocked_count`) so it can report blocked subresources.

A hostile page cannot exhaust it: at most ``max_connections`` browser connections (default
256; more are answered ``503``), at most :data:`MAX_RESOLVING` DNS lookups at once, each
bounded by ``resolve_timeout`` (10 s), connects bounded by ``connect_timeout`` (10 s), header
blocks bounded by :data:`HEAD_LIMIT`, and any connection idle for ``idle_timeout`` (300 s,
the longest capture) is closed. When the browser closes its side, the upstream side is closed
at once.

The proxy runs its own asyncio loop in a daemon thread: ``EgressProxy(policy).start()``,
``proxy.url`` for ``--proxy-server``, ``proxy.close()`` when done.

This module is the server and its lifecycle; the jobs are apart:

- :mod:`screenshots.egress.session`: one browser connection, its requests one at a time;
- :mod:`screenshots.egress.http1`: HTTP/1.1 parsing and framing (h11), the proxy's own answers;
- :mod:`screenshots.egress.forward`: sending a plain-HTTP request on and relaying its answer;
- :mod:`screenshots.egress.relay`: tunnels (``CONNECT``, ``101``);
- :mod:`screenshots.egress.dial`: resolve once, check every address, dial what was checked;
- :mod:`screenshots.egress.failures`: failures, remembered and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import h11

from screenshots.egress.dial import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_RESOLVE_TIMEOUT,
    MAX_RESOLVING,
    Dialer,
    Resolver,
    host_key,
)
from screenshots.egress.failures import BLOCKED_CODE, FAILURE_MEMORY, Failure, FailureLog
from screenshots.egress.http1 import CHUNK, HEAD_LIMIT, H11Stream, HTTPError
from screenshots.egress.policy import EgressPolicy
from screenshots.egress.session import BLOCKED_HEADER, ERROR_HEADER, Session

__all__ = [
    "BLOCKED_CODE",
    "BLOCKED_HEADER",
    "CHUNK",
    "CLOSE_GRACE",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_RESOLVE_TIMEOUT",
    "ERROR_HEADER",
    "FAILURE_MEMORY",
    "HEAD_LIMIT",
    "MAX_RESOLVING",
    "EgressProxy",
    "Failure",
    "Resolver",
]

logger = logging.getLogger(__name__)

#: Browser connections handled at once; more are answered 503.
DEFAULT_MAX_CONNECTIONS = 256
#: Seconds a connection may stay silent (in the direction being read) before it is closed.
DEFAULT_IDLE_TIMEOUT = 300.0
#: Seconds a closed browser connection may take to flush what was written to it.
CLOSE_GRACE = 5.0


class _ClientProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that also tells, at once, when the browser closed its side."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        on_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        super().__init__(reader, on_connected)
        self.closed = asyncio.Event()

    def eof_received(self) -> bool:
        self.closed.set()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        super().connection_lost(exc)


class EgressProxy:
    """The filtering forward proxy. One per engine; thread-safe to query from the engine.

    ``policy`` decides; ``resolver`` (``async (host, port) -> [address text]``) replaces
    ``getaddrinfo`` in tests. The other arguments bound resources (defaults above).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        resolver: Resolver | None = None,
    ) -> None:
        self.policy = policy
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self._dialer = Dialer(
            policy,
            resolve_timeout=resolve_timeout,
            connect_timeout=connect_timeout,
            resolver=resolver,
        )
        self._failures = FailureLog()
        self._active = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- the engine's side ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for Chromium's ``--proxy-server``."""
        return f"http://{self.host}:{self.port}"

    @property
    def resolve_timeout(self) -> float:
        """Seconds to resolve a host name (set at construction)."""
        return self._dialer.resolve_timeout

    @property
    def connect_timeout(self) -> float:
        """Seconds to connect to one resolved address (set at construction)."""
        return self._dialer.connect_timeout

    @property
    def blocked_count(self) -> int:
        """Requests refused by the policy since the proxy started."""
        return self._failures.blocked

    @property
    def request_count(self) -> int:
        """Upstream connections asked for since the proxy started (allowed or not)."""
        return self._failures.requests

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def protect(self, port: int) -> None:
        """Never connect to ``port`` on a loopback address (a DevTools or ChromeDriver port)."""
        self._dialer.protect(port)

    def failure_for(self, url: str, since: float = 0.0) -> Failure | None:
        """The last failure for ``url``'s host and port at or after ``since`` (monotonic)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        except ValueError:
            return None
        return self._failures.find((host_key(host), port), since)

    def latest_failure(self, since: float = 0.0) -> Failure | None:
        """The most recent failure at or after ``since`` (monotonic), whatever its host."""
        return self._failures.latest(since)

    def start(self) -> EgressProxy:
        """Listen on ``127.0.0.1`` (a free port) in a background thread; return when ready."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._main(ready))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                errors.append(exc)
            finally:
                ready.set()
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=run, name="egress-proxy", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors or not self.port:
            self._thread = None
            raise RuntimeError(f"the egress proxy could not start: {errors[:1]}")
        return self

    def close(self) -> None:
        """Stop listening and close every connection. Safe to call twice."""
        thread, loop, stop = self._thread, self._loop, self._stop
        self._thread = None
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the loop --------------------------------------------------------------------------

    async def _main(self, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        self._dialer.bind()
        server = await loop.create_server(self._protocol, self.host, 0, backlog=512)
        self.port = server.sockets[0].getsockname()[1]
        self.protect(self.port)
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)

    def _protocol(self) -> _ClientProtocol:
        reader = asyncio.StreamReader(limit=HEAD_LIMIT)
        protocol: _ClientProtocol

        async def connected(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                await self._client(r, w, protocol.closed)
            finally:
                if task is not None:
                    self._tasks.discard(task)

        protocol = _ClientProtocol(reader, connected)
        return protocol

    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, closed: asyncio.Event
    ) -> None:
        if self._active >= self.max_connections:
            H11Stream(h11.SERVER, reader, writer, self.idle_timeout).answer(
                503, "too many connections through the egress proxy"
            )
            writer.close()
            return
        self._active += 1
        session = Session(reader, writer, self._dialer, self._failures, self.idle_timeout)

        async def watch() -> None:  # the browser hung up: hang up on the origin too
            await closed.wait()
            session.drop_upstream()

        watcher = asyncio.ensure_future(watch())
        try:
            await session.serve()
        except HTTPError as exc:
            with contextlib.suppress(Exception):
                session.browser.answer(exc.status, exc.text)
                await writer.drain()
        except (ConnectionError, TimeoutError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("egress proxy connection failed", exc_info=True)
        finally:
            self._active -= 1
            watcher.cancel()
            session.drop_upstream()
            # Flush what was written (a refusal), but never wait on a browser that stops reading.
            writer.close()
            asyncio.get_running_loop().call_later(CLOSE_GRACE, writer.transport.abort)
