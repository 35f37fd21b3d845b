"""The one pipeline: reuse → capture → store → row. Plain code, no Celery.

:class:`Pipeline` is the composition point of every caller: the embedded runner
(:mod:`screenshots.delivery.embedded`), the Celery task (:mod:`tasks.capture`) and the API's
pool (:mod:`screenshots.api.backends.pool`), which runs :meth:`Pipeline.begin` (reuse, else
capture) in a browser tab and :meth:`Pipeline.store` in an upload thread. The phases live beside it
(:mod:`~screenshots.pipeline.capture`, :mod:`~screenshots.pipeline.store`), with one retry
layer (:mod:`~screenshots.pipeline.retries`) and one reuse cache
(:mod:`~screenshots.pipeline.reuse`). Side effects come in as arguments (engine, storage,
``sleep``, ``clock``) so tests can run it with the stub engine and memory storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.base import Engine
from screenshots.core.errors import (
    ConfigurationError,
    NavigationError,
    ScreenshotError,
    StorageUnavailable,
    TransientError,
    WorkerOffline,
)
from screenshots.core.keys import DEFAULT_KEY_PREFIX
from screenshots.core.result import Result
from screenshots.core.settings import DEFAULT_MAX_ATTEMPTS, Settings
from screenshots.core.shot import Shot
from screenshots.pipeline.capture import capture_page
from screenshots.pipeline.reachability import ServiceProbe, is_host_network_code
from screenshots.pipeline.retries import BACKOFF_BASE, BACKOFF_MAX, Attempts, backoff_delay
from screenshots.pipeline.reuse import cached_result
from screenshots.pipeline.run import Run, failed_row, ok_row
from screenshots.pipeline.store import store_capture
from screenshots.storage.base import Storage

__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "Pipeline", "backoff_delay", "take_screenshot"]


@dataclass(frozen=True)
class Pipeline:
    """How a shot becomes its manifest row, the same for every caller.

    Never raises for a problem with the URL or the page: those become ``error`` rows.
    Transient failures (browser crash, timeout, storage unreachable) are retried up to
    ``max_attempts`` times in all (see :mod:`screenshots.pipeline.retries`). A
    :class:`~screenshots.core.errors.ConfigurationError` (no browser, no bucket) is raised: no
    other URL can succeed either, and the caller must say so. With ``raise_storage_outage``,
    storage still unreachable after the last attempt raises
    :class:`~screenshots.core.errors.StorageUnavailable` instead of making an error row, so a
    Celery task can retry the URL much later. With ``network_probe`` (set by
    :meth:`from_settings` with ``raise_storage_outage``), a page unreachable at the network
    level, or a capture whose retries ran out (a timeout), while the probe finds the worker's
    own services unreachable too raises
    :class:`~screenshots.core.errors.WorkerOffline` (a ``StorageUnavailable``) with
    ``raise_storage_outage``, and otherwise says so in the error row: the host lost its
    network, the page said nothing (:mod:`~screenshots.pipeline.reachability`). With
    ``max_age``, a shot of the same URL and options stored less than ``max_age`` seconds ago is
    reused, not shot again.
    """

    storage: Storage
    key_prefix: str = DEFAULT_KEY_PREFIX
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age: float | None = None
    raise_storage_outage: bool = False
    network_probe: Callable[[], Sequence[str]] | None = field(default=None, repr=False)
    #: The egress proxy resolves every name (``SCREENSHOT_EGRESS_POLICY`` on, set by
    #: :meth:`from_settings`): ``ERR_NAME_NOT_RESOLVED`` is then a resolver's answer, not probed.
    names_by_proxy: bool = False
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, storage: Storage, **options: Any) -> Pipeline:
        """The pipeline of ``settings`` (key prefix, attempts) storing into ``storage``; with
        ``raise_storage_outage``, probing the settings' services after a network failure."""
        options.setdefault("key_prefix", settings.key_prefix)
        options.setdefault("max_attempts", settings.max_attempts)
        options.setdefault("names_by_proxy", settings.egress_enabled)
        if options.get("raise_storage_outage"):
            options.setdefault("network_probe", ServiceProbe.from_settings(settings))
        return cls(storage, **options)

    def take(self, shot: Shot, engine: Callable[[], Engine]) -> Result:
        """The row of ``shot``: reused, or captured with ``engine()`` (asked for only when a
        capture is needed) and stored."""
        step = self.begin(shot, engine)
        return step if isinstance(step, Result) else self.store(step)

    def begin(self, shot: Shot, engine: Callable[[], Engine]) -> Run | Result:
        """Reuse, else the capture phase: the :class:`~screenshots.pipeline.run.Run` to store
        next, or the shot's finished row (reused, or an error)."""
        reused = self.reused(shot)
        if reused is not None:
            return reused
        return self.capture(shot, engine())

    def reused(self, shot: Shot) -> Result | None:
        """The row of a recent enough stored shot of ``shot`` (``max_age``), or ``None``."""
        return cached_result(shot, self.storage, self.max_age, key_prefix=self.key_prefix)

    def capture(self, shot: Shot, engine: Engine) -> Run | Result:
        """The capture phase: the :class:`~screenshots.pipeline.run.Run` to store next, or the
        shot's error row."""
        started = self.clock()
        attempts = Attempts(shot.line, self.max_attempts, self.sleep)
        run = Run.start(shot, engine.name, attempts, key_prefix=self.key_prefix, clock=self.clock)
        try:
            capture_page(run, engine)
        except ScreenshotError as exc:
            return self._failed(run, exc, started)
        run.spent += self.clock() - started
        return run

    def store(self, run: Run) -> Result:
        """The store phase of a captured ``run``, and its row."""
        started = self.clock()
        try:
            stored = store_capture(run, self.storage)
        except ScreenshotError as exc:
            return self._failed(run, exc, started)
        return ok_row(run, stored, started)

    def _failed(self, run: Run, exc: ScreenshotError, started: float) -> Result:
        """The error row of a phase that raised ``exc``, or ``exc`` again if it must go up."""
        if isinstance(exc, ConfigurationError):
            raise exc
        if isinstance(exc, StorageUnavailable) and self.raise_storage_outage:
            raise exc
        message = exc.message
        probe = self.network_probe
        down = probe() if probe is not None and _host_suspect(exc, self.names_by_proxy) else ()
        if down:
            offline = WorkerOffline(
                f"{exc.message}; this worker cannot reach its services either: "
                + ", ".join(down)
            )
            if self.raise_storage_outage:
                raise offline from exc
            return failed_row(run, offline.message, started)
        if isinstance(exc, TransientError):
            message = f"{exc.message} (gave up after {run.attempts.used} attempts)"
        return failed_row(run, message, started)


def _host_suspect(exc: ScreenshotError, names_by_proxy: bool) -> bool:
    """Whether ``exc`` may come from this worker's host having lost its network rather than from
    the page: a network-level navigation failure, or a capture whose retries ran out (a page load
    that hung when the link went down times out). Storage outages have their own path."""
    if isinstance(exc, NavigationError):
        return is_host_network_code(exc.code, names_by_proxy=names_by_proxy)
    return isinstance(exc, TransientError) and not isinstance(exc, StorageUnavailable)


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
    """Capture ``shot`` with ``engine``, store it in ``storage`` and return its manifest row
    (:class:`Pipeline` without reuse)."""
    pipeline = Pipeline(
        storage,
        key_prefix=key_prefix,
        max_attempts=max_attempts,
        raise_storage_outage=raise_storage_outage,
        sleep=sleep,
        clock=clock,
    )
    return pipeline.take(shot, lambda: engine)
