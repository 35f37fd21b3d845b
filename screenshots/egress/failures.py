"""Why the egress proxy did not connect a request, and the proxy's memory and counters of it.

A refusal by the policy or a network failure is a :class:`Failure`. The proxy answers the
browser with it (``403`` or ``502``) and records it in a :class:`FailureLog`, which the engine
reads from its own thread (:meth:`~screenshots.egress.proxy.EgressProxy.failure_for`) to tell
why a main document failed and how many subresources were refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: :attr:`Failure.code` of a refusal by the policy.
BLOCKED_CODE = "egress:blocked"
#: Failures remembered for :meth:`FailureLog.find`.
FAILURE_MEMORY = 512


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


class Refused(Exception):
    """Raised while resolving, checking or dialing: the connection is not made."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def blocked(host: str, port: int, reason: str) -> Failure:
    """A refusal by the policy (answered ``403``)."""
    return Failure(host, port, BLOCKED_CODE, reason, 403)


class FailureLog:
    """The last :data:`FAILURE_MEMORY` failures by host and port, and the proxy's counters.

    Written from the proxy's loop, read from the engine's thread: every access holds a lock.
    Hosts are keys as :func:`screenshots.egress.dial.host_key` spells them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, int], Failure] = OrderedDict()
        #: Requests refused by the policy.
        self.blocked = 0
        #: Upstream connections asked for (allowed or not).
        self.requests = 0

    def record(self, key: tuple[str, int], failure: Failure) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._failures[key] = failure
            while len(self._failures) > FAILURE_MEMORY:
                self._failures.popitem(last=False)
            if failure.blocked:
                self.blocked += 1
        logger.debug("egress proxy: %s:%d %s", failure.host, failure.port, failure.message)

    def find(self, key: tuple[str, int], since: float = 0.0) -> Failure | None:
        """The last failure for ``key`` at or after ``since`` (monotonic)."""
        with self._lock:
            failure = self._failures.get(key)
        return failure if failure is not None and failure.at >= since else None

    def latest(self, since: float = 0.0) -> Failure | None:
        """The most recent failure at or after ``since`` (monotonic), whatever its host."""
        with self._lock:
            failure = next(reversed(self._failures.values()), None)
        return failure if failure is not None and failure.at >= since else None
