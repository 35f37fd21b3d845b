"""Per-key rate limit: a token bucket per key name, in memory.

Each key may make ``burst`` requests at once, refilled at ``rate`` per second. A request
without a token gets 429 with ``Retry-After`` (the seconds until the next token). Buckets are
per API process: with several processes behind a balancer, the effective limit is multiplied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from screenshots.api.errors import Busy


class RateLimiter:
    """``take(name)`` spends a token of ``name``'s bucket or raises
    :class:`~screenshots.api.errors.Busy`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        #: name -> (tokens, time of last refill)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_time(self, name: str) -> float:
        """Spend a token of ``name`` and return 0, or return the seconds until one is due."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def take(self, name: str) -> None:
        """Spend a token of ``name``, or raise 429 with ``Retry-After``."""
        wait = self.wait_time(name)
        if wait > 0:
            raise Busy(
                f"rate limit exceeded for API key {name!r}: at most {self.rate:g} requests/s "
                f"(bursts of {self.burst}); retry in {wait:.1f} s",
                retry_after=wait,
                reason="rate_limit",
            )
