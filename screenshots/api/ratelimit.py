"""Request limits shared by every API process: per key, and per address for failed logins.

The counting is the maintained library `limits <https://limits.readthedocs.io>`_ (moving
window strategy), so there is one code path for both modes and only its storage differs:

- broker mode: the Redis of ``CELERY_RESULT_BACKEND``, so N replicas behind a balancer enforce
  *one* limit per key (and per failing address) instead of N;
- broker-less mode: ``limits``' memory storage, in this process (that mode is one process by
  design).

A limit of ``burst`` requests at once and ``rate`` per second is counted as a moving window of
``burst`` requests per ``burst / rate`` seconds (rounded up to whole seconds; when ``burst`` is
less than a second's worth, ``rate`` requests per second): a key may send ``burst`` at once,
and never more than ``rate`` per second on average. Unlike a token bucket, a request is given
back only when it leaves the window, so a key that spent its burst waits up to the whole window.
A refused request gets 429 with ``Retry-After`` (the seconds until the oldest counted request
leaves the window).

The calls are synchronous: in memory they cost nothing, and against Redis they are one round
trip with short timeouts. If Redis cannot be reached the request is let through (and logged):
a result backend that is down shows in ``/readyz`` and fails the requests that need it anyway,
and the limiter must not turn a Redis hiccup into refusing every caller.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from screenshots.api.errors import Busy
from screenshots.core.settings import Settings

log = logging.getLogger("api")

#: ``limits`` storage of broker-less mode: this process's memory.
MEMORY_STORAGE = "memory://"
#: Seconds a Redis command of the limiter may take before the request is let through.
REDIS_TIMEOUT = 0.5
#: First part of every counter's name (Redis keys are ``LIMITS:LIMITER/screenshots-api/...``).
NAMESPACE = "screenshots-api"


def limit_storage_uri(settings: Settings) -> str:
    """Where the counters live: the Redis result backend in broker mode, else memory."""
    backend = str(settings.result_backend) if settings.result_backend is not None else ""
    if settings.distributed and backend.startswith(("redis://", "rediss://")):
        return backend
    return MEMORY_STORAGE


def open_storage(uri: str) -> Storage:
    """The ``limits`` storage of ``uri`` (``memory://`` or a ``redis://`` URL)."""
    if uri.startswith(("redis://", "rediss://")):
        return RedisStorage(
            uri,
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
    return MemoryStorage()


class RateLimiter:
    """``take(name)`` counts a request of ``name`` or raises
    :class:`~screenshots.api.errors.Busy` (429).

    ``kind`` names what ``name`` is in counter names and messages (``key``, ``address``);
    ``reason`` labels the refusals in ``screenshots_api_rejections_total``.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        storage: Storage | None = None,
        *,
        kind: str = "key",
        reason: str = "rate_limit",
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.kind = kind
        self.reason = reason
        self.storage = storage if storage is not None else open_storage(MEMORY_STORAGE)
        if burst >= rate:
            # Never more than ``burst`` at once, nor more than ``rate`` per second on average.
            self.item = RateLimitItemPerSecond(burst, math.ceil(burst / rate))
        else:  # less than a second's worth: a window is at least one second long
            self.item = RateLimitItemPerSecond(math.ceil(rate), 1)
        self._strategy = MovingWindowRateLimiter(self.storage)

    def __repr__(self) -> str:
        return f"RateLimiter({self.item}, per {self.kind}, {type(self.storage).__name__})"

    def wait_time(self, name: str) -> float:
        """Count a request of ``name`` and return 0, or return the seconds until one is allowed."""
        return self._wait(name, count=True)

    def blocked_for(self, name: str) -> float:
        """Seconds until ``name`` may make a request again (0 if it may now); counts nothing."""
        return self._wait(name, count=False)

    def _wait(self, name: str, *, count: bool) -> float:
        allowed = self._strategy.hit if count else self._strategy.test
        try:
            if allowed(self.item, NAMESPACE, self.kind, name):
                return 0.0
            return self._retry_after(name)
        except StorageError as exc:
            log.warning("rate limit not checked, its storage failed: %s", exc.storage_error)
            return 0.0

    def _retry_after(self, name: str) -> float:
        stats = self._strategy.get_window_stats(self.item, NAMESPACE, self.kind, name)
        return max(0.001, stats.reset_time - time.time())

    def take(self, name: str) -> None:
        """Count a request of ``name``, or raise 429 with ``Retry-After``."""
        wait = self.wait_time(name)
        if wait > 0:
            raise Busy(
                f"rate limit exceeded for API key {name!r}: at most {self.rate:g} requests/s "
                f"(bursts of {self.burst}); retry in {wait:.1f} s",
                retry_after=wait,
                reason=self.reason,
            )
