"""The capture phase: the engine loads the page and takes the image, retried within the budget.

First phase of :mod:`screenshots.pipeline.screenshot`. Runs where the engine lives (the
embedded runner's thread, a worker process, an API tab); the store phase
(:mod:`screenshots.pipeline.store`) may then run elsewhere.
"""

from __future__ import annotations

from engines.base import Capture, Engine
from screenshots.core.errors import PermanentError
from screenshots.core.options import status_fails
from screenshots.pipeline.run import Run


def capture_page(run: Run, engine: Engine) -> Capture:
    """Capture ``run``'s shot with ``engine`` and keep it in ``run.capture``.

    Transient failures are retried within ``run.attempts``; the last one is raised. Raises
    :class:`~screenshots.core.errors.PermanentError` for an option the engine does not support
    (before any attempt) and for a page whose HTTP status is in ``fail_on_status`` (the capture
    is kept: its row describes the page). A
    :class:`~screenshots.core.errors.ConfigurationError` goes up as it is.
    """
    shot = run.shot
    unsupported = engine.unsupported(shot.options)
    if unsupported:
        raise PermanentError(
            f"option {unsupported[0]} is not supported by engine {engine.name}"
        )
    run.attempts.start()
    capture = run.attempts.retry(lambda: engine.capture(shot.url, shot.options))
    run.capture = capture
    failing = status_fails(shot.options, capture.http_status)
    if failing is not None:
        raise PermanentError(f"HTTP {capture.http_status} is in fail_on_status ({failing})")
    return capture
