"""One shot in flight: what its capture and store phases share, and the row it ends as.

A :class:`Run` is started when a shot is taken up, goes through the capture phase
(:mod:`screenshots.pipeline.capture`) and the store phase (:mod:`screenshots.pipeline.store`),
possibly in two threads (the API's pool captures in a tab and uploads elsewhere), and becomes
one manifest row: :func:`ok_row` or :func:`failed_row`. The row's ``duration_ms`` is the time
spent in the phases (not the wait between them), its ``attempts`` the shared budget's count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engines.base import Capture
from screenshots.core.keys import storage_key
from screenshots.core.result import MAX_CONSOLE_MESSAGES, OK, Result, error_result
from screenshots.core.shot import Shot
from screenshots.pipeline.retries import Attempts


@dataclass(frozen=True)
class Stored:
    """Where the store phase put the image."""

    uri: str
    link: str
    upload_ms: int
    #: The image's perceptual hash (None when it could not be decoded).
    phash: str | None = None
    #: The link of its thumbnail.
    thumbnail_link: str | None = None
    #: The key of this shot's version of the image (the URL's history).
    version_key: str | None = None


@dataclass
class Run:
    """One shot between being taken up and becoming a row."""

    shot: Shot
    #: The storage key of the shot (the same for the same URL and options).
    key: str
    #: Name of the engine that captures it (a row's ``engine``).
    engine: str
    attempts: Attempts
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: Milliseconds between reading the shot from the input and taking it up.
    queued_ms: int | None = None
    #: What the engine saw, once a capture succeeded.
    capture: Capture | None = None
    #: Seconds spent in finished phases.
    spent: float = 0.0

    @classmethod
    def start(
        cls,
        shot: Shot,
        engine: str,
        attempts: Attempts,
        *,
        key_prefix: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> Run:
        key = storage_key(shot.url, shot.options, key_prefix)
        return cls(shot, key, engine, attempts, clock, _queued_ms(shot))

    def elapsed_ms(self, since: float) -> int:
        """Milliseconds of the finished phases plus the one running since ``since``."""
        return int(round((self.spent + self.clock() - since) * 1000))


def ok_row(run: Run, stored: Stored, started: float) -> Result:
    """The ``ok`` row of ``run``, stored as ``stored``; its last phase began at ``started``."""
    capture = run.capture
    assert capture is not None
    return Result(
        line=run.shot.line,
        url=run.shot.url,
        status=OK,
        storage_uri=stored.uri,
        link=stored.link,
        width=capture.width,
        height=capture.height,
        bytes=len(capture.image),
        duration_ms=run.elapsed_ms(started),
        http_status=capture.http_status,
        final_url=capture.final_url,
        title=capture.title,
        format=run.shot.options.format,
        engine=run.engine,
        attempts=run.attempts.used,
        finished_at=_now(),
        key=run.key,
        upload_ms=stored.upload_ms,
        phash=stored.phash,
        thumbnail_link=stored.thumbnail_link,
        version_key=stored.version_key,
        **_page_fields(capture, run.queued_ms),
    )


def failed_row(run: Run, message: str, started: float) -> Result:
    """The ``error`` row of ``run``, with what the engine saw if it captured the page."""
    capture = run.capture
    page: dict[str, Any] = {"queued_ms": run.queued_ms}
    if capture is not None:
        page = _page_fields(capture, run.queued_ms)
        page.update(http_status=capture.http_status, final_url=capture.final_url)
        page.update(title=capture.title)
    return error_result(
        run.shot.line,
        run.shot.url,
        message,
        duration_ms=run.elapsed_ms(started),
        format=run.shot.options.format,
        engine=run.engine,
        attempts=run.attempts.used,
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
        "ignored_regions": capture.ignored_regions,
    }


def _queued_ms(shot: Shot) -> int | None:
    """Milliseconds since the shot was read from the input (clocks of two machines may differ
    a little in the distributed mode: never negative)."""
    if shot.queued_at is None:
        return None
    return max(0, int(round((time.time() - shot.queued_at) * 1000)))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
