"""Take one screenshot end to end: capture, store, link. Plain code, no Celery.

The Celery task (:mod:`tasks.capture`) and the embedded runner
(:mod:`screenshots.delivery.embedded`) both
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
from typing import Any

from engines.base import Capture, Engine
from screenshots.core.errors import (
    ConfigurationError,
    PermanentError,
    ScreenshotError,
    StorageUnavailable,
    TransientError,
)
from screenshots.core.keys import DEFAULT_KEY_PREFIX, storage_key
from screenshots.core.options import status_fails
from screenshots.core.result import MAX_CONSOLE_MESSAGES, OK, Result, error_result
from screenshots.core.settings import DEFAULT_MAX_ATTEMPTS
from screenshots.core.shot import Shot
from screenshots.storage.base import Storage

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
    raise_storage_outage: bool = False,
) -> Result:
    """Capture ``shot`` with ``engine``, store it in ``storage`` and return its manifest row.

    Never raises for a problem with the URL or the page: those become ``error`` rows.
    Transient failures (browser crash, timeout, storage unreachable) are retried up to
    ``max_attempts`` times with :func:`backoff_delay` between attempts. A
    :class:`~screenshots.core.errors.ConfigurationError` (no browser, no bucket) is raised: no
    other URL can
    succeed either, and the caller must say so. With ``raise_storage_outage``, storage that is
    still unreachable after the last attempt raises
    :class:`~screenshots.core.errors.StorageUnavailable`
    instead of making an error row, so a Celery task can retry the URL much later.
    """
    started = clock()
    queued_ms = _queued_ms(shot)
    key = storage_key(shot.url, shot.options, key_prefix)
    unsupported = engine.unsupported(shot.options)
    if unsupported:
        message = f"option {unsupported[0]} is not supported by engine {engine.name}"
        return _failed(shot, engine, message, started, clock, 0, None, queued_ms)
    attempts = 0
    capture: Capture | None = None
    upload_ms: int | None = None
    while True:
        attempts += 1
        try:
            if capture is None:
                capture = engine.capture(shot.url, shot.options)
                failing = status_fails(shot.options, capture.http_status)
                if failing is not None:
                    raise PermanentError(
                        f"HTTP {capture.http_status} is in fail_on_status ({failing})"
                    )
            upload_started = clock()
            metadata = {"width": str(capture.width), "height": str(capture.height)}
            metadata["engine"] = engine.name
            if capture.http_status is not None:
                metadata["http-status"] = str(capture.http_status)
            uri = storage.put(key, capture.image, shot.options.content_type, metadata)
            link = storage.link(key)
            upload_ms = _elapsed_ms(upload_started, clock)
        except ConfigurationError:
            raise
        except PermanentError as exc:
            return _failed(shot, engine, exc.message, started, clock, attempts, capture, queued_ms)
        except TransientError as exc:
            outage = isinstance(exc, StorageUnavailable)
            if attempts >= max_attempts and raise_storage_outage and outage:
                raise
            if attempts >= max_attempts:
                message = f"{exc.message} (gave up after {attempts} attempts)"
                return _failed(
                    shot, engine, message, started, clock, attempts, capture, queued_ms
                )
            delay = backoff_delay(attempts)
            log.warning(
                "line %d attempt %d failed (%s); retrying in %.1fs", shot.line, attempts, exc, delay
            )
            sleep(delay)
            continue
        except ScreenshotError as exc:  # pragma: no cover - every subclass is handled above
            return _failed(shot, engine, exc.message, started, clock, attempts, capture, queued_ms)
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
            upload_ms=upload_ms,
            **_page_fields(capture, queued_ms),
        )


def _failed(
    shot: Shot,
    engine: Engine,
    message: str,
    started: float,
    clock: Callable[[], float],
    attempts: int,
    capture: Capture | None,
    queued_ms: int | None = None,
) -> Result:
    page: dict[str, Any] = {"queued_ms": queued_ms}
    if capture is not None:
        page = _page_fields(capture, queued_ms)
        page.update(http_status=capture.http_status, final_url=capture.final_url)
        page.update(title=capture.title)
    return error_result(
        shot.line,
        shot.url,
        message,
        duration_ms=_elapsed_ms(started, clock),
        format=shot.options.format,
        engine=engine.name,
        attempts=attempts,
        finished_at=_now(),
        **page,
    )


def _page_fields(capture: Capture, queued_ms: int | None) -> dict[str, Any]:
    """The row's page metadata and timings from what the engine saw."""
    return {
        "content_type": capture.content_type,
        "requests": capture.requests,
        "failed_requests": capture.failed_requests,
        "blocked_requests": capture.blocked_requests,
        "console_errors": capture.console_errors,
        "console_messages": tuple(capture.console_messages[:MAX_CONSOLE_MESSAGES]),
        "queued_ms": queued_ms,
        "navigation_ms": capture.navigation_ms,
        "wait_ms": capture.wait_ms,
        "capture_ms": capture.capture_ms,
    }


def _queued_ms(shot: Shot) -> int | None:
    """Milliseconds since the shot was read from the input (clocks of two machines may differ
    a little in the distributed mode: never negative)."""
    if shot.queued_at is None:
        return None
    return max(0, int(round((time.time() - shot.queued_at) * 1000)))


def _elapsed_ms(started: float, clock: Callable[[], float]) -> int:
    return int(round((clock() - started) * 1000))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
