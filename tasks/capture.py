"""The capture task: a batch of shots in, one manifest row per shot out."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from errors import ConfigurationError, InvalidOption
from results import Result, error_result
from screenshot import take_screenshot
from shots import Shot
from tasks import resources
from tasks.celery import CAPTURE_TASK, app

log = logging.getLogger(__name__)


@app.task(name=CAPTURE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def capture(
    self: Task, shots: list[dict[str, Any]], engine: str | None = None
) -> list[dict[str, Any]]:
    """Capture each shot of the batch and return its manifest row (a dict per shot).

    Problems with a URL or a page become ``error`` rows; the task itself fails only if the
    message cannot be understood at all.
    """
    return [row.to_dict() for row in capture_batch(shots, engine)]


def capture_batch(shots: list[dict[str, Any]], engine_name: str | None) -> list[Result]:
    """The body of :func:`capture`, callable without a worker."""
    rows: list[Result] = []
    current = resources.settings()
    for message in shots:
        try:
            shot = Shot.from_message(message)
        except (InvalidOption, KeyError, TypeError, ValueError) as exc:
            line = message.get("line", 0) if isinstance(message, dict) else 0
            url = message.get("url", "") if isinstance(message, dict) else ""
            text = exc.message if isinstance(exc, InvalidOption) else f"bad shot: {exc!r}"
            rows.append(error_result(int(line), str(url), text))
            continue
        try:
            rows.append(
                take_screenshot(
                    shot,
                    resources.engine(engine_name),
                    resources.storage(),
                    key_prefix=current.key_prefix,
                    max_attempts=current.max_attempts,
                )
            )
        except ConfigurationError as exc:
            log.error("cannot capture line %d: %s", shot.line, exc)
            rows.append(error_result(shot.line, shot.url, f"worker misconfigured: {exc}"))
    return rows
