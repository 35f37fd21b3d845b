"""Resolving, checking and dialing one upstream connection of the egress proxy.

This is where DNS rebinding is shut out. :meth:`Dialer.dial` resolves the host **once**
(``getaddrinfo``, or reads it as a numeric address the way browsers read it), refuses if
**any** resolved address is refused by the :class:`~screenshots.egress.policy.EgressPolicy`
or is a protected loopback port, and otherwise dials exactly an address it checked: there is
no second resolution for a rebinding answer to slip into. Lookups and connects are bounded
(at most :data:`MAX_RESOLVING` lookups at once, each bounded by ``resolve_timeout``, connects by
``connect_timeout``) so a hostile page cannot exhaust them.

Nothing here speaks HTTP: the caller gets a connected :class:`Upstream` or a
:class:`~screenshots.egress.failures.Refused` carrying the failure to answer with.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from screenshots.egress.failures import Failure, Refused, blocked
from screenshots.egress.policy import Decision, EgressPolicy, IPAddress, parse_ip_host

#: Seconds to resolve a host name.
DEFAULT_RESOLVE_TIMEOUT = 10.0
#: Seconds to connect to one resolved address.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: DNS lookups at once (they run in the loop's thread pool).
MAX_RESOLVING = 8
#: Bytes an upstream stream buffers before it stops reading (one relay read).
STREAM_BUFFER = 256 * 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]

_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")

#: ``getaddrinfo`` errors that are a resolver's answer: the name does not exist (or has no
#: address). Any other failure (``EAI_AGAIN``: no resolver could be asked, as on a host that
#: lost its network) says nothing about the name.
NO_SUCH_NAME = frozenset(
    code
    for code in (
        socket.EAI_NONAME,
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
)


@dataclass
class Upstream:
    """A connection to an origin, for ``key`` (``(host_key(host), port)``)."""

    key: tuple[str, int]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.transport.abort()


class Dialer:
    """Resolves, checks against ``policy`` and connects; ``resolver`` replaces DNS in tests.

    :meth:`protect` may be called from any thread; the rest runs on the proxy's loop, after
    :meth:`bind`.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        resolver: Resolver | None = None,
    ) -> None:
        self.policy = policy
        self.resolve_timeout = resolve_timeout
        self.connect_timeout = connect_timeout
        self._resolver = resolver
        self._lock = threading.Lock()
        self._protected: frozenset[int] = frozenset()
        self._resolving: asyncio.Semaphore | None = None

    def bind(self) -> None:
        """Make the bounds for the running loop (call on the loop, once per start)."""
        self._resolving = asyncio.Semaphore(MAX_RESOLVING)

    def protect(self, port: int) -> None:
        """Never connect to ``port`` on a loopback address (a DevTools or ChromeDriver port)."""
        with self._lock:
            self._protected = self._protected | {port}

    async def dial(self, host: str, port: int) -> Upstream:
        """Resolve, check and connect, or raise :class:`Refused`."""
        decisions = await self.check(host, port)
        return await self.connect(host, port, decisions)

    async def check(self, host: str, port: int) -> list[Decision]:
        """The policy's decisions for every address ``host`` resolves to; refuse if any says no."""
        try:
            literal = parse_ip_host(host)
        except ValueError:
            raise Refused(blocked(host, port, f"{host} is not a valid address")) from None
        addresses = [literal] if literal is not None else await self.resolve(host, port)
        decisions = self.policy.check_all(addresses)
        for decision in decisions:
            if not decision.allowed:
                raise Refused(blocked(host, port, decision.reason))
        protected = self._protected
        for decision in decisions:
            target = decision.connect_address
            if port in protected and (target.is_loopback or target.is_unspecified):
                reason = f"{target}:{port} is a control port of the browser or the proxy"
                raise Refused(blocked(host, port, reason))
        return decisions

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, once, in the resolver's order without repeats."""
        if not plausible_hostname(host):
            raise Refused(blocked(host, port, f"{host!r} is not a valid host name"))
        assert self._resolving is not None, "Dialer.bind() was not called"
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
            raise Refused(failure) from None
        except OSError as exc:  # socket.gaierror among them
            raise Refused(_resolver_failure(host, port, exc)) from None
        except UnicodeError:  # not a name a resolver could be asked about
            failure = Failure(host, port, "net::ERR_NAME_NOT_RESOLVED", f"unknown host {host}", 502)
            raise Refused(failure) from None
        addresses: list[IPAddress] = []
        for text in texts:
            address = ipaddress.ip_address(text)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Refused(
                Failure(host, port, "net::ERR_NAME_NOT_RESOLVED", f"unknown host {host}", 502)
            )
        return addresses

    async def connect(self, host: str, port: int, decisions: list[Decision]) -> Upstream:
        """Dial the checked addresses in order; the first that answers is used."""
        code, reason = "net::ERR_CONNECTION_FAILED", f"could not connect to {host}:{port}"
        for decision in decisions:
            target = decision.connect_address
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        str(target), port, limit=STREAM_BUFFER
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
            return Upstream((host_key(host), port), reader, writer)
        raise Refused(Failure(host, port, code, reason, 502))


def host_key(host: str) -> str:
    """A host as both Chromium's URL and the proxy's request spell it."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = parse_ip_host(text)
    except ValueError:
        return text
    return str(address) if address is not None else text


def plausible_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    return all(ch in _HOSTNAME_CHARS for ch in host.lower())


def _resolver_failure(host: str, port: int, exc: OSError) -> Failure:
    """What a failed lookup answers: ``net::ERR_NAME_NOT_RESOLVED`` ("unknown host") when a
    resolver said the name does not exist, as Chromium's own resolver does; otherwise
    ``net::ERR_NAME_RESOLUTION_FAILED`` with the resolver's words. The pipeline tells them apart
    (:mod:`screenshots.pipeline.reachability`): only the second may mean this host has no
    network, so only it costs a probe of the worker's services."""
    if isinstance(exc, socket.gaierror) and exc.errno in NO_SUCH_NAME:
        return Failure(host, port, "net::ERR_NAME_NOT_RESOLVED", f"unknown host {host}", 502)
    reason = exc.strerror or type(exc).__name__
    message = f"could not resolve {host}: {reason}"
    return Failure(host, port, "net::ERR_NAME_RESOLUTION_FAILED", message, 502)
