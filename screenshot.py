"""Take one screenshot end to end: capture, store, link. Plain code, no Celery.

The Celery task (:mod:`tasks.capture`) and the embedded runner (:mod:`runners.embedded`) both
call :func:`take_screenshot`; that is the whole pipeline. Side effects come in as arguments
(engine, storage, ``sleep``, ``clock``) so tests can run it with the stub engine and memory
storage.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from engines.base import Capture, Engine
from errors import ConfigurationError, PermanentError, ScreenshotError, TransientError
from keys import DEFAULT_KEY_PREFIX, storage_key
from results import OK, Result, error_result
from settings import DEFAULT_MAX_ATTEMPTS
from shots import Shot
from storage.base import Storage

log = logging.getLogger(__name__)

#: First wait before retrying a transient failure, in seconds; doubles with every attempt.
BACKOFF_BASE = 1.0
#: Longest wait between two attempts, in seconds.
BACKOFF_MAX = 10.0


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, half jitter."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
    return ceiling / 2 + rand() * ceiling / 2


def take_screenshot(
    shot: Shot,
    engine: Engine,
    storage: Storage,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Result:
    """Capture ``shot`` with ``engine``, store it in ``storage`` and return its manifest row.

    Never raises for a problem with the URL or the page: those become ``error`` rows.
    Transient failures (browser crash, timeout, storage unreachable) are retried up to
    ``max_attempts`` times with :func:`backoff_delay` between attempts. A
    :class:`~errors.ConfigurationError` (no browser, no bucket) is raised: no other URL can
    succeed either, and the caller must say so.
    """
    started = clock()
    key = storage_key(shot.url, shot.options, key_prefix)
    attempts = 0
    capture: Capture | None = None
    while True:
        attempts += 1
        try:
            if capture is None:
                capture = engine.capture(shot.url, shot.options)
            metadata = {"width": str(capture.width), "height": str(capture.height)}
            metadata["engine"] = engine.name
            if capture.http_status is not None:
                metadata["http-status"] = str(capture.http_status)
            uri = storage.put(key, capture.image, shot.options.content_type, metadata)
            link = storage.link(key)
        except ConfigurationError:
            raise
        except PermanentError as exc:
            return _failed(shot, engine, exc.message, started, clock, attempts, capture)
        except TransientError as exc:
            if attempts >= max_attempts:
                message = f"{exc.message} (gave up after {attempts} attempts)"
                return _failed(shot, engine, message, started, clock, attempts, capture)
            delay = backoff_delay(attempts)
            log.warning(
                "line %d attempt %d failed (%s); retrying in %.1fs", shot.line, attempts, exc, delay
            )
            sleep(delay)
            continue
        except ScreenshotError as exc:  # pragma: no cover - every subclass is handled above
            return _failed(shot, engine, exc.message, started, clock, attempts, capture)
        return Result(
            line=shot.line,
            url=shot.url,
            status=OK,
            storage_uri=uri,
            link=link,
            width=capture.width,
            height=capture.height,
            bytes=len(capture.image),
            duration_ms=_elapsed_ms(started, clock),
            http_status=capture.http_status,
            final_url=capture.final_url,
            title=capture.title,
            format=shot.options.format,
            engine=engine.name,
            attempts=attempts,
            finished_at=_now(),
            key=key,
        )


def _failed(
    shot: Shot,
    engine: Engine,
    message: str,
    started: float,
    clock: Callable[[], float],
    attempts: int,
    capture: Capture | None,
) -> Result:
    return error_result(
        shot.line,
        shot.url,
        message,
        duration_ms=_elapsed_ms(started, clock),
        http_status=capture.http_status if capture else None,
        final_url=capture.final_url if capture else None,
        format=shot.options.format,
        engine=engine.name,
        attempts=attempts,
        finished_at=_now(),
    )


def _elapsed_ms(started: float, clock: Callable[[], float]) -> int:
    return int(round((clock() - started) * 1000))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
