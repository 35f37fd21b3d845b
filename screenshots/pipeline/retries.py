"""The retry layer of the pipeline: one attempt budget per shot, shared by its two phases.

A shot gets ``max_attempts`` attempts in all. The capture phase starts an attempt for each
browser capture; the store phase's first upload belongs to the attempt whose capture
succeeded, and each retried upload starts a new one. So a row's ``attempts`` counts every try
of either phase, and a storage hiccup retries the upload, not the capture. Transient failures
(:class:`~screenshots.core.errors.TransientError`) are retried with :func:`backoff_delay`
between attempts; anything else goes up at once. Kept in one place so the embedded runner, the
Celery task and the API's pool retry alike.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from screenshots.core.errors import TransientError
from screenshots.core.settings import DEFAULT_MAX_ATTEMPTS

log = logging.getLogger(__name__)

#: First wait before retrying a transient failure, in seconds; doubles with every attempt.
BACKOFF_BASE = 1.0
#: Longest wait between two attempts, in seconds.
BACKOFF_MAX = 10.0

T = TypeVar("T")


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, half jitter."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass
class Attempts:
    """The attempt budget of one shot (input line ``line``)."""

    line: int
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    #: Attempts started so far.
    used: int = 0

    def start(self) -> None:
        """Start a new attempt (the capture phase does, before each capture)."""
        self.used += 1

    def retry(self, action: Callable[[], T]) -> T:
        """``action()``, called again (as a new attempt) after a backoff while it fails
        transiently and the budget lasts; the last
        :class:`~screenshots.core.errors.TransientError` is raised."""
        while True:
            try:
                return action()
            except TransientError as exc:
                if self.used >= self.max_attempts:
                    raise
                delay = backoff_delay(self.used)
                log.warning(
                    "line %d attempt %d failed (%s); retrying in %.1fs",
                    self.line, self.used, exc, delay,
                )
                self.sleep(delay)
                self.start()
