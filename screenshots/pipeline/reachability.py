"""Is it the page, or is it this worker? A short probe of the worker's own path to its services.

A page the browser could not reach at the network level (``net::ERR_ADDRESS_UNREACHABLE``,
``net::ERR_INTERNET_DISCONNECTED``...) is normally the page's fault: an error row. But the same
codes come back for *every* URL when the worker's host has lost its network (a partition, a
link down, a network change): then the page says nothing, and an error row would lose a URL
that another worker could shoot. Issue #14 measured exactly that loss.

So before such an error becomes a row, the pipeline asks :class:`ServiceProbe`: a TCP connect,
with a short timeout, to each service the worker depends on — the broker's, the result
back end's and S3's ``host:port`` as the settings give them (nothing here assumes loopback or
one host). If any of them cannot be reached either, the shot is not an error row: it raises
:class:`~screenshots.core.errors.WorkerOffline`, a
:class:`~screenshots.core.errors.StorageUnavailable`, and the Celery task gives it back to the
queue exactly as it does in a storage outage.

Which codes are "maybe this host has no network" (:data:`HOST_NETWORK_CODES`):

- ``ERR_ADDRESS_UNREACHABLE`` / ``ERR_NETWORK_UNREACHABLE`` (no route: ``EHOSTUNREACH``),
  ``ERR_INTERNET_DISCONNECTED`` (``ENETUNREACH``, or Chromium's own offline notice),
  ``ERR_NETWORK_CHANGED`` (an interface went down or up during the load);
- ``ERR_NAME_RESOLUTION_FAILED`` (the resolver itself could not be asked) and, only when
  Chromium resolves names itself (egress policy off), ``ERR_NAME_NOT_RESOLVED``: Chromium says
  that both for a name that does not exist and when no resolver answered. With the egress
  proxy (the default) every name is resolved by the proxy, which tells the two apart
  (:meth:`screenshots.egress.dial.Dialer.resolve`: ``EAI_NONAME`` is a resolver's answer,
  ``EAI_AGAIN`` and the rest are not), so there ``ERR_NAME_NOT_RESOLVED`` is the page's own
  error and costs no probe. It is the most common error of a large URL list (dead domains):
  probing after each one cost the broker, the result back end and S3 a TCP connection per URL
  and cut the rate of such rows by two thirds (3,100 to 1,100 URLs/s in
  ``python -m screenshots.dev.bench.delivery --only memory``);
- ``ERR_CONNECTION_TIMED_OUT`` / ``ERR_TIMED_OUT`` (a path that drops packets);
- ``ERR_NETWORK_ACCESS_DENIED`` (the host's own firewall or sandbox refused the socket) and
  ``ERR_PROXY_CONNECTION_FAILED`` / ``ERR_TUNNEL_CONNECTION_FAILED`` (the egress proxy's path).

A capture whose in-process retries ran out (a page load that hung when the link went down
times out; a browser that kept dying) is probed too. Each is also a legitimate page error,
which is why the probe decides: with the services
reachable, the row is the page's error as before; the probe costs one local TCP handshake per
service (about a millisecond) and runs only after such a failure. Refused connections, TLS and
HTTP errors are never the host's network and are never probed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from screenshots.core.settings import Settings

__all__ = ["HOST_NETWORK_CODES", "PROBE_TIMEOUT", "ServiceProbe", "is_host_network_code"]

#: Seconds each TCP connect of the probe may take before the service counts as unreachable.
PROBE_TIMEOUT = 2.0

#: Navigation failures that may mean "this worker's host has no network" (see the module).
HOST_NETWORK_CODES = frozenset(
    {
        "ERR_ADDRESS_UNREACHABLE",
        "ERR_NETWORK_UNREACHABLE",
        "ERR_INTERNET_DISCONNECTED",
        "ERR_NETWORK_CHANGED",
        "ERR_NAME_RESOLUTION_FAILED",
        "ERR_NAME_NOT_RESOLVED",
        "ERR_CONNECTION_TIMED_OUT",
        "ERR_TIMED_OUT",
        "ERR_NETWORK_ACCESS_DENIED",
        "ERR_PROXY_CONNECTION_FAILED",
        "ERR_TUNNEL_CONNECTION_FAILED",
    }
)

_DEFAULT_PORTS = {
    "amqp": 5672,
    "pyamqp": 5672,
    "amqps": 5671,
    "redis": 6379,
    "rediss": 6379,
    "http": 80,
    "https": 443,
}

Connect = Callable[[tuple[str, int], float], None]


#: The code that is a resolver's answer ("no such name") when the egress proxy resolves names.
NAME_NOT_RESOLVED = "ERR_NAME_NOT_RESOLVED"


def is_host_network_code(code: str | None, *, names_by_proxy: bool = False) -> bool:
    """Whether the engine's failure ``code`` (``net::ERR_X``, ``ERR_X`` or with extra text
    after it) is one of :data:`HOST_NETWORK_CODES`; with ``names_by_proxy`` (the egress proxy
    resolves every name) ``ERR_NAME_NOT_RESOLVED`` is not: a resolver answered."""
    if not code:
        return False
    name = code.strip().split()[0].removeprefix("net::")
    if names_by_proxy and name == NAME_NOT_RESOLVED:
        return False
    return name in HOST_NETWORK_CODES


def service_address(url: str) -> tuple[str, int] | None:
    """The ``(host, port)`` a service URL connects to, or ``None`` (``memory://``, no host)."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.split("+")[-1].lower()
    if not host or scheme not in _DEFAULT_PORTS:
        return None
    return host, port or _DEFAULT_PORTS[scheme]


def _connect(address: tuple[str, int], timeout: float) -> None:
    with socket.create_connection(address, timeout=timeout):
        pass


@dataclass(frozen=True)
class ServiceProbe:
    """Calling it returns the services this process cannot reach now (``"host:port (error)"``
    each): empty when the worker's network is fine.

    ``services`` holds, per service, the addresses any one of which will do (Celery's failover
    brokers, ``amqp://a;amqp://b``).
    """

    services: tuple[tuple[tuple[str, int], ...], ...]
    timeout: float = PROBE_TIMEOUT
    connect: Connect = field(default=_connect, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, timeout: float = PROBE_TIMEOUT, connect: Connect = _connect
    ) -> ServiceProbe:
        """The probe of the broker, result back end and S3 endpoint that ``settings`` name; a
        service without an address (``memory://``, AWS's default S3 endpoint) is left out."""
        groups: list[list[str]] = []
        if settings.broker_url is not None:
            groups.append(str(settings.broker_url).split(";"))
        if settings.result_backend is not None:
            groups.append([str(settings.result_backend)])
        if settings.s3_endpoint:
            groups.append([settings.s3_endpoint])
        services = []
        for urls in groups:
            found = (service_address(url) for url in urls)
            addresses = tuple(dict.fromkeys(a for a in found if a is not None))
            if addresses and addresses not in services:
                services.append(addresses)
        return cls(tuple(services), timeout, connect)

    def __call__(self) -> Sequence[str]:
        down: list[str] = []
        for addresses in self.services:
            failures = []
            for host, port in addresses:
                try:
                    self.connect((host, port), self.timeout)
                except OSError as exc:
                    failures.append(f"{host}:{port} ({exc.strerror or type(exc).__name__})")
                else:
                    break
            else:
                down += failures
        return down
