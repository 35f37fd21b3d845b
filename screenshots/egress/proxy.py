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
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from screenshots.egress.policy import Decision, EgressPolicy, IPAddress, parse_ip_host

logger = logging.getLogger(__name__)

#: Browser connections handled at once; more are answered 503.
DEFAULT_MAX_CONNECTIONS = 256
#: Seconds to resolve a host name.
DEFAULT_RESOLVE_TIMEOUT = 10.0
#: Seconds to connect to one resolved address.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Seconds a connection may stay silent (in the direction being read) before it is closed.
DEFAULT_IDLE_TIMEOUT = 300.0
#: DNS lookups at once (they run in the loop's thread pool).
MAX_RESOLVING = 8
#: Largest request or response header block, in bytes (Chromium's own limit is 256 KiB).
HEAD_LIMIT = 256 * 1024
#: Bytes read at a time when relaying.
CHUNK = 256 * 1024
#: Seconds a closed browser connection may take to flush what was written to it.
CLOSE_GRACE = 5.0
#: Failures remembered for :meth:`EgressProxy.failure_for`.
FAILURE_MEMORY = 512

#: Response header carrying the reason of a refusal.
BLOCKED_HEADER = "X-Egress-Blocked"
#: Response header carrying the network error of a failed upstream connection.
ERROR_HEADER = "X-Egress-Error"
#: :attr:`Failure.code` of a refusal by the policy.
BLOCKED_CODE = "egress:blocked"

#: Request headers that concern only the hop to the proxy.
_HOP_HEADERS = frozenset(
    {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}
)
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class Failure:
    """Why the proxy did not connect a request to ``host:port``."""

    host: str
    port: int
    #: :data:`BLOCKED_CODE` for a refusal, else Chromium's name of the network error
    #: (``net::ERR_NAME_NOT_RESOLVED``, ``net::ERR_CONNECTION_REFUSED``...).
    code: str
    #: For people: ``"10.0.0.5 is private"``, ``"unknown host nosuch.example"``.
    reason: str
    #: HTTP status the proxy answered with (403 for a refusal, 502 otherwise).
    status: int
    #: ``time.monotonic()`` when it happened.
    at: float = field(default_factory=time.monotonic)

    @property
    def blocked(self) -> bool:
        """Whether the policy refused it (rather than the network failing)."""
        return self.code == BLOCKED_CODE

    @property
    def message(self) -> str:
        """``"blocked by egress policy: <reason>"`` for a refusal, else the reason."""
        return f"blocked by egress policy: {self.reason}" if self.blocked else self.reason


class _Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class _Head:
    """A parsed request or response head."""

    first: str  # request line or status line
    headers: list[tuple[str, str]]

    def get(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def tokens(self, *names: str) -> set[str]:
        found: set[str] = set()
        for name in names:
            for value in self.get(name):
                found.update(t.strip().lower() for t in value.split(",") if t.strip())
        return found


@dataclass
class _Upstream:
    key: tuple[str, int]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.transport.abort()


class _Connection:
    """One browser connection to the proxy and the origin connection it is using."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.upstream: _Upstream | None = None

    def drop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


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
        self.resolve_timeout = resolve_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._resolver = resolver
        self.host = "127.0.0.1"
        self.port = 0
        self._lock = threading.Lock()
        self._protected: frozenset[int] = frozenset()
        self._failures: OrderedDict[tuple[str, int], Failure] = OrderedDict()
        self._blocked = 0
        self._requests = 0
        self._active = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resolving: asyncio.Semaphore | None = None

    # -- the engine's side ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, for Chromium's ``--proxy-server``."""
        return f"http://{self.host}:{self.port}"

    @property
    def blocked_count(self) -> int:
        """Requests refused by the policy since the proxy started."""
        return self._blocked

    @property
    def request_count(self) -> int:
        """Upstream connections asked for since the proxy started (allowed or not)."""
        return self._requests

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def protect(self, port: int) -> None:
        """Never connect to ``port`` on a loopback address (a DevTools or ChromeDriver port)."""
        with self._lock:
            self._protected = self._protected | {port}

    def failure_for(self, url: str, since: float = 0.0) -> Failure | None:
        """The last failure for ``url``'s host and port at or after ``since`` (monotonic)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        except ValueError:
            return None
        with self._lock:
            failure = self._failures.get((_host_key(host), port))
        return failure if failure is not None and failure.at >= since else None

    def latest_failure(self, since: float = 0.0) -> Failure | None:
        """The most recent failure at or after ``since`` (monotonic), whatever its host."""
        with self._lock:
            failure = next(reversed(self._failures.values()), None)
        return failure if failure is not None and failure.at >= since else None

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
        self._resolving = asyncio.Semaphore(MAX_RESOLVING)
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
            writer.write(_response(503, "too many connections through the egress proxy"))
            writer.close()
            return
        self._active += 1
        connection = _Connection(reader, writer)

        async def watch() -> None:  # the browser hung up: hang up on the origin too
            await closed.wait()
            connection.drop_upstream()

        watcher = asyncio.ensure_future(watch())
        try:
            await self._serve(connection)
        except _BadRequest as exc:
            with contextlib.suppress(Exception):
                writer.write(_response(exc.status, exc.text))
                await writer.drain()
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            OSError,
        ):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("egress proxy connection failed", exc_info=True)
        finally:
            self._active -= 1
            watcher.cancel()
            connection.drop_upstream()
            # Flush what was written (a refusal), but never wait on a browser that stops reading.
            writer.close()
            asyncio.get_running_loop().call_later(CLOSE_GRACE, writer.transport.abort)

    async def _serve(self, connection: _Connection) -> None:
        """Answer the browser's requests on one connection until either side is done."""
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    raw = await connection.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # closed between requests
            except asyncio.LimitOverrunError:
                raise _BadRequest(431, "request header block too large") from None
            head = _parse_head(raw.lstrip(b"\r\n"))
            method, target, version = _request_line(head.first)
            if method == "CONNECT":
                await self._tunnel_request(connection, target)
                return
            if not await self._forward(connection, method, target, version, head):
                return

    # -- CONNECT -------------------------------------------------------------------------

    async def _tunnel_request(self, connection: _Connection, target: str) -> None:
        host, port = _split_authority(target, None)
        upstream = await self._open(connection, host, port)
        if upstream is None:
            return
        connection.writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await self._relay_both(connection, upstream)

    async def _relay_both(self, connection: _Connection, upstream: _Upstream) -> None:
        pipes = [
            asyncio.ensure_future(self._pipe(connection.reader, upstream.writer)),
            asyncio.ensure_future(self._pipe(upstream.reader, connection.writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError, OSError):
            while True:
                async with asyncio.timeout(self.idle_timeout):
                    data = await source.read(CHUNK)
                if not data:
                    return
                sink.write(data)
                await sink.drain()

    # -- absolute-form HTTP ----------------------------------------------------------------

    async def _forward(
        self, connection: _Connection, method: str, target: str, version: str, head: _Head
    ) -> bool:
        """Send one request on to its origin and relay the answer; whether to keep going."""
        if not target.lower().startswith("http://"):
            raise _BadRequest(400, "this is a forward proxy: send absolute http:// URLs")
        rest = target[len("http://") :]
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        authority, path = rest[:cut], rest[cut:] or "/"
        if path.startswith("?"):
            path = "/" + path
        host, port = _split_authority(authority, 80)
        tokens = head.tokens("connection", "proxy-connection")
        client_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        upgrade = "upgrade" in tokens and bool(head.get("upgrade"))
        framing = _request_framing(head)

        lines = [f"{method} {path} HTTP/1.1"]
        for name, value in head.headers:
            lowered = name.lower()
            if lowered in _HOP_HEADERS or lowered in tokens:
                continue
            lines.append(f"{name}: {value}")
        if upgrade:
            lines += [f"Upgrade: {head.get('upgrade')[0]}", "Connection: Upgrade"]
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        key = (_host_key(host), port)
        if connection.upstream is not None and connection.upstream.key != key:
            connection.drop_upstream()
        if connection.upstream is None:
            opened = await self._open(connection, host, port)
            if opened is None:
                return False
            connection.upstream = opened
        upstream = connection.upstream
        upstream.writer.write(out)
        if framing == "chunked":
            await self._copy_chunked(connection.reader, upstream.writer)
        elif framing:
            await self._copy_exact(connection.reader, upstream.writer, int(framing))
        await upstream.writer.drain()

        while True:  # skip interim answers (100 Continue, 103 Early Hints)
            try:
                async with asyncio.timeout(self.idle_timeout):
                    raw = await upstream.reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise _BadRequest(502, "the site's response header block is too large") from None
            response = _parse_head(raw)
            status = _status(response.first)
            if status == 407:  # only the proxy may ask for proxy credentials
                connection.drop_upstream()
                raise _BadRequest(502, "the site answered 407 Proxy Authentication Required")
            connection.writer.write(raw)
            if not (100 <= status < 200) or status == 101:
                break
        if status == 101 and upgrade:
            await connection.writer.drain()
            await self._relay_both(connection, upstream)
            return False
        response_tokens = response.tokens("connection")
        http10 = response.first.startswith("HTTP/1.0")
        reusable = "close" not in response_tokens and (
            not http10 or "keep-alive" in response_tokens
        )
        body = _response_framing(method, status, response)
        if body == "chunked":
            await self._copy_chunked(upstream.reader, connection.writer)
        elif body == "close":
            await self._pipe(upstream.reader, connection.writer)
            return False
        elif body:
            await self._copy_exact(upstream.reader, connection.writer, int(body))
        await connection.writer.drain()
        if not reusable:  # the browser read "close" in the answer too: it will not reuse it
            connection.drop_upstream()
            return False
        return not client_close

    async def _copy_exact(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, size: int
    ) -> None:
        while size > 0:
            async with asyncio.timeout(self.idle_timeout):
                data = await source.read(min(size, CHUNK))
            if not data:
                raise asyncio.IncompleteReadError(b"", size)
            sink.write(data)
            size -= len(data)
            await sink.drain()

    async def _copy_chunked(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while True:
            async with asyncio.timeout(self.idle_timeout):
                line = await source.readuntil(b"\r\n")
            sink.write(line)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(502, "malformed chunked body") from None
            if size < 0:
                raise _BadRequest(502, "malformed chunked body")
            if size == 0:
                while True:  # trailers, then the empty line
                    async with asyncio.timeout(self.idle_timeout):
                        trailer = await source.readuntil(b"\r\n")
                    sink.write(trailer)
                    if trailer == b"\r\n":
                        await sink.drain()
                        return
            await self._copy_exact(source, sink, size + 2)

    # -- checking and connecting -------------------------------------------------------------

    async def _open(self, connection: _Connection, host: str, port: int) -> _Upstream | None:
        """Resolve, check and connect; on failure answer the browser and return ``None``."""
        self._requests += 1
        try:
            decision_list = await self._check(host, port)
            upstream = await self._connect(host, port, decision_list)
        except _Refused as refused:
            failure = refused.failure
            self._record(failure)
            extra = {
                BLOCKED_HEADER if failure.blocked else ERROR_HEADER: (
                    failure.reason if failure.blocked else failure.code
                )
            }
            connection.writer.write(_response(failure.status, failure.message, extra))
            with contextlib.suppress(Exception):
                await connection.writer.drain()
            return None
        return upstream

    async def _check(self, host: str, port: int) -> list[Decision]:
        """The policy's decisions for every address ``host`` resolves to; refuse if any says no."""
        try:
            literal = parse_ip_host(host)
        except ValueError:
            raise _Refused(_blocked(host, port, f"{host} is not a valid address")) from None
        addresses = [literal] if literal is not None else await self._resolve(host, port)
        decisions = self.policy.check_all(addresses)
        for decision in decisions:
            if not decision.allowed:
                raise _Refused(_blocked(host, port, decision.reason))
        protected = self._protected
        for decision in decisions:
            target = decision.connect_address
            if port in protected and (target.is_loopback or target.is_unspecified):
                reason = f"{target}:{port} is a control port of the browser or the proxy"
                raise _Refused(_blocked(host, port, reason))
        return decisions

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        if not _plausible_hostname(host):
            raise _Refused(_blocked(host, port, f"{host!r} is not a valid host name"))
        assert self._resolving is not None
        try:
            async with self._resolving, asyncio.timeout(self.resolve_timeout):
                if self._resolver is not None:
                    texts = await self._resolver(host, port)
                else:
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                    )
                    texts = [str(info[4][0]) for info in infos]
        except TimeoutError:
            failure = Failure(
                host, port, "net::ERR_NAME_RESOLUTION_FAILED", f"could not resolve {host}", 502
            )
            raise _Refused(failure) from None
        except (OSError, UnicodeError):
            failure = Failure(host, port, "net::ERR_NAME_NOT_RESOLVED", f"unknown host {host}", 502)
            raise _Refused(failure) from None
        addresses: list[IPAddress] = []
        for text in texts:
            address = ipaddress.ip_address(text)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise _Refused(
                Failure(host, port, "net::ERR_NAME_NOT_RESOLVED", f"unknown host {host}", 502)
            )
        return addresses

    async def _connect(self, host: str, port: int, decisions: list[Decision]) -> _Upstream:
        """Dial the checked addresses in order; the first that answers is used."""
        code, reason = "net::ERR_CONNECTION_FAILED", f"could not connect to {host}:{port}"
        for decision in decisions:
            target = decision.connect_address
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        str(target), port, limit=HEAD_LIMIT
                    )
            except TimeoutError:
                code = "net::ERR_CONNECTION_TIMED_OUT"
                reason = f"connection to {host}:{port} timed out"
                continue
            except ConnectionRefusedError:
                code = "net::ERR_CONNECTION_REFUSED"
                reason = f"connection refused by {host}:{port}"
                continue
            except OSError as exc:
                code = "net::ERR_ADDRESS_UNREACHABLE"
                reason = f"{host}:{port} is unreachable ({exc.strerror or exc})"
                continue
            with contextlib.suppress(OSError):
                writer.transport.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                )
            return _Upstream((_host_key(host), port), reader, writer)
        raise _Refused(Failure(host, port, code, reason, 502))

    def _record(self, failure: Failure) -> None:
        with self._lock:
            key = (_host_key(failure.host), failure.port)
            self._failures.pop(key, None)
            self._failures[key] = failure
            while len(self._failures) > FAILURE_MEMORY:
                self._failures.popitem(last=False)
            if failure.blocked:
                self._blocked += 1
        logger.debug("egress proxy: %s:%d %s", failure.host, failure.port, failure.message)


# -- small helpers -------------------------------------------------------------------------


def _blocked(host: str, port: int, reason: str) -> Failure:
    return Failure(host, port, BLOCKED_CODE, reason, 403)


def _host_key(host: str) -> str:
    """A host as both Chromium's URL and the proxy's request spell it."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = parse_ip_host(text)
    except ValueError:
        return text
    return str(address) if address is not None else text


def _plausible_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    allowed = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    return all(ch in allowed for ch in host.lower())


def _split_authority(authority: str, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) → ``(host, port)``; refuses user info."""
    if "@" in authority:
        raise _BadRequest(400, "credentials in the proxy request target are refused")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise _BadRequest(400, "bad IPv6 host")
        host, rest = authority[1:end], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, sep, port_text_raw = authority.rpartition(":")
        if not sep:
            host, port_text_raw = authority, ""
        port_text = port_text_raw
    if port_text is None or not host:
        raise _BadRequest(400, f"bad request target {authority!r}")
    if not port_text:
        if default_port is None:
            raise _BadRequest(400, "CONNECT needs a port")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _BadRequest(400, f"bad port in {authority!r}")
    return host, int(port_text)


def _parse_head(raw: bytes) -> _Head:
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise _BadRequest(400, "empty request")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or any(ch not in _TOKEN_CHARS for ch in name):
            raise _BadRequest(400, "malformed header line")
        headers.append((name, value.strip()))
    return _Head(lines[0], headers)


def _request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if not method or any(ch not in _TOKEN_CHARS for ch in method):
        raise _BadRequest(400, "malformed request method")
    return method, target, version


def _status(line: str) -> int:
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _BadRequest(502, "the site sent a malformed response")
    return int(parts[1])


def _content_length(head: _Head) -> int | None:
    values = {v.strip() for value in head.get("content-length") for v in value.split(",")}
    if not values:
        return None
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise _BadRequest(400, "conflicting or malformed Content-Length")
    return int(next(iter(values)))


def _request_framing(head: _Head) -> str:
    """``"chunked"``, a byte count, or ``""`` for no body."""
    encodings = [t.strip().lower() for v in head.get("transfer-encoding") for t in v.split(",")]
    length = _content_length(head)
    if encodings:
        if length is not None or encodings[-1] != "chunked":
            raise _BadRequest(400, "ambiguous request body framing")
        return "chunked"
    return str(length) if length else ""


def _response_framing(method: str, status: int, head: _Head) -> str:
    """``"chunked"``, a byte count, ``"close"`` (until the origin closes), or ``""``."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return ""
    encodings = [t.strip().lower() for v in head.get("transfer-encoding") for t in v.split(",")]
    if encodings:
        return "chunked" if encodings[-1] == "chunked" else "close"
    try:
        length = _content_length(head)
    except _BadRequest:
        raise _BadRequest(502, "the site sent conflicting Content-Length headers") from None
    if length is None:
        return "close"
    return str(length) if length else ""


def _response(status: int, text: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete ``Connection: close`` answer from the proxy itself."""
    phrases = {
        400: "Bad Request",
        403: "Forbidden",
        431: "Request Header Fields Too Large",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }
    body = (text + "\n").encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {phrases.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        "Proxy-Connection: close",
    ]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value.encode('ascii', 'replace').decode('ascii')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body
