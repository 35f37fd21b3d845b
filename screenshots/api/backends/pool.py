"""The broker-less back end: browsers in this process, with a known capacity.

Three bounded stages, like the original design's "pools for screenshot taking and for S3
operations":

- **tabs**: ``tabs`` threads capturing on one engine of as many tabs (one Chromium), as in
  :mod:`screenshots.delivery.embedded`; an engine that takes one capture at a time (the stub)
  is made per thread, and each thread closes its own when it ends
  (:mod:`screenshots.pipeline.threadengines`).
- **wait queue**: at most ``wait_queue`` accepted captures wait for a tab. When every tab is
  busy and the wait queue is full, :meth:`PoolBackend.submit` raises
  :class:`~screenshots.api.errors.Busy` at once: 429 with a ``Retry-After`` estimated from the
  recent
  capture time. Nothing waits without bound, and being busy is never a 5xx.
- **uploads**: ``uploads`` threads store images (S3 ``PutObject``). A tab hands its image over
  and takes the next URL; when the uploads fall behind (at most ``2 × uploads`` images wait or
  upload), tabs wait for them, the wait queue fills, and new requests get 429.

Each capture goes through :class:`screenshots.pipeline.screenshot.Pipeline`, the service's one
pipeline, split at its phases: :meth:`~screenshots.pipeline.screenshot.Pipeline.begin` (the
capture phase) in the tab, :meth:`~screenshots.pipeline.screenshot.Pipeline.store` in the upload
thread, sharing one attempt budget. Retries, keys, links and the row's columns are therefore
exactly those of the batch runners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engines.base import Engine
from screenshots.api import metrics
from screenshots.api.backends.base import DONE, QUEUED, RUNNING, Backend, Check, Status
from screenshots.api.errors import ApiError, Busy
from screenshots.core.errors import ConfigurationError
from screenshots.core.keys import DEFAULT_KEY_PREFIX
from screenshots.core.result import Result, error_result
from screenshots.core.settings import DEFAULT_MAX_ATTEMPTS
from screenshots.core.shot import Shot
from screenshots.pipeline.run import Run
from screenshots.pipeline.screenshot import Pipeline
from screenshots.pipeline.threadengines import ThreadEngines
from screenshots.storage.base import Storage

log = logging.getLogger(__name__)

#: Most results kept in memory for ``GET`` (oldest finished ones are dropped first).
DEFAULT_MAX_RECORDS = 50_000
#: Seconds a capture is assumed to take before any has finished (for ``Retry-After``).
INITIAL_SERVICE_TIME = 1.0
#: Weight of the newest capture in the running average of capture times.
SERVICE_TIME_WEIGHT = 0.2
#: Seconds readiness results are reused.
READINESS_TTL = 5.0
#: Seconds ``close`` waits for a tab to finish its capture.
CLOSE_TIMEOUT = 60.0


@dataclass
class _Record:
    id: str
    owner: str
    submitted: float
    state: str = QUEUED
    result: Result | None = None
    finished: float | None = None
    event: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Item:
    id: str
    shot: Shot
    submitted: float


class PoolBackend(Backend):
    """Captures in ``tabs`` threads with ``engine_factory()`` engines, stored in ``storage``."""

    mode = "pool"

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        engine_name: str,
        storage: Storage,
        *,
        tabs: int,
        wait_queue: int,
        uploads: int,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        result_ttl: float = 3600.0,
        max_records: int = DEFAULT_MAX_RECORDS,
        browser_probe: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tabs < 1 or wait_queue < 0 or uploads < 1:
            raise ValueError("tabs and uploads must be at least 1, wait_queue at least 0")
        self.engine_factory = engine_factory
        self.default_engine = engine_name
        self.storage = storage
        self.tabs = tabs
        self.wait_queue = wait_queue
        self.uploads = uploads
        self.key_prefix = key_prefix
        self.max_attempts = max_attempts
        self.result_ttl = result_ttl
        self.max_records = max_records
        self.browser_probe = browser_probe
        self.pipeline = Pipeline(storage, key_prefix=key_prefix, max_attempts=max_attempts)
        # One engine for every tab thread (or one per thread, closed by the thread itself, for
        # an engine taking one capture at a time); the shared one is closed by close().
        self._engines = ThreadEngines(lambda _name: engine_factory())
        self._browser_pid: int | None = None  # the last seen, to count restarts once
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._admitted = 0  # queued + capturing + waiting for an upload slot
        self._running = 0  # capturing + uploading
        self._service_time = INITIAL_SERVICE_TIME
        self._upload_slots = threading.BoundedSemaphore(2 * uploads)
        self._uploader = ThreadPoolExecutor(uploads, thread_name_prefix="upload")
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._problem: str | None = None  # the engine's error, until a capture works again
        self._readiness: tuple[float, dict[str, Check]] | None = None

    def __repr__(self) -> str:
        return (
            f"PoolBackend(engine={self.default_engine!r}, tabs={self.tabs}, "
            f"wait_queue={self.wait_queue}, uploads={self.uploads}, storage={self.storage!r})"
        )

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.engine_factory().close()  # fails fast on a bad engine name or settings
        for index in range(self.tabs):
            thread = threading.Thread(
                target=self._tab_loop, name=f"tab-{index + 1}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    async def close(self) -> None:
        with self._lock:
            self._closing = True
        while True:  # fail what has not started: the process is going away
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._release_admission()
                self._complete(item.id, _failed(item.shot, "the server is shutting down"))
        for _ in self._threads:
            self._work.put(None)
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(CLOSE_TIMEOUT)
        self._engines.close()  # the one the tab threads shared
        self._uploader.shutdown(wait=True)

    def engines(self) -> Sequence[str]:
        return [self.default_engine]

    # -- the API side --------------------------------------------------------------------

    async def submit(
        self,
        shot: Shot,
        *,
        owner: str,
        engine: str,
        background: bool = False,
        ident: str | None = None,
    ) -> str:
        if engine != self.default_engine:
            raise ApiError(
                422, f"this server captures with {self.default_engine!r}, not {engine!r}"
            )
        limit = self.tabs + (self.wait_queue // 2 if background else self.wait_queue)
        with self._lock:
            if self._closing:
                raise ApiError(503, "the server is shutting down")
            if self._admitted >= limit:
                retry = self._service_time * (self._admitted - self.tabs + 1) / self.tabs
                raise Busy(
                    f"all {self.tabs} browser tabs are busy and {self.wait_queue} requests "
                    "are already waiting: retry later",
                    retry_after=retry,
                    reason="busy",
                )
            self._admitted += 1
        now = self._clock()
        ident = ident or uuid.uuid4().hex
        self._records[ident] = _Record(ident, owner, now)
        self._evict(now)
        self._work.put(_Item(ident, shot, now))
        return ident

    async def lookup(self, ids: Sequence[str]) -> list[Status | None]:
        return [self._status(self._records.get(ident)) for ident in ids]

    async def wait(self, ident: str, timeout: float) -> Status | None:
        record = self._records.get(ident)
        if record is None:
            return None
        if record.state != DONE and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.event.wait(), timeout)
        return self._status(record)

    async def readiness(self) -> dict[str, Check]:
        now = self._clock()
        if self._readiness is not None and now - self._readiness[0] < READINESS_TTL:
            return self._readiness[1]
        alive = sum(thread.is_alive() for thread in self._threads)
        checks = {
            "pool": Check(
                alive == self.tabs and not self._closing,
                f"{alive} of {self.tabs} tabs alive, {self.wait_queue} may wait",
            ),
            "storage": await _storage_check(self.storage),
        }
        problem = self._problem or (self.browser_probe() if self.browser_probe else None)
        checks["browser"] = Check(problem is None, problem or f"engine {self.default_engine}")
        self._readiness = (now, checks)
        return checks

    def capacity(self) -> dict[str, Any]:
        with self._lock:
            running = self._running
        return {
            "tabs": self.tabs,
            "wait_queue": self.wait_queue,
            "uploads": self.uploads,
            "running": running,
            "queued": self._work.qsize(),
            "capture_seconds": round(self._service_time, 3),
        }

    def _status(self, record: _Record | None) -> Status | None:
        if record is None:
            return None
        return Status(record.id, record.owner, record.state, record.result)

    def _evict(self, now: float) -> None:
        """Drop finished records past their TTL, and the oldest ones past ``max_records``."""
        for _ in range(len(self._records)):
            ident, record = next(iter(self._records.items()))
            if record.finished is None:
                if len(self._records) <= self.max_records:
                    return
                self._records.move_to_end(ident)  # still running: look at it again later
                continue
            if now - record.finished > self.result_ttl or len(self._records) > self.max_records:
                self._records.popitem(last=False)
                continue
            return

    # -- completion, on the event loop ---------------------------------------------------

    def _complete(self, ident: str, row: Result) -> None:
        record = self._records.get(ident)
        if record is not None:
            record.state, record.result, record.finished = DONE, row, self._clock()
            record.event.set()

    def _mark_running(self, ident: str) -> None:
        record = self._records.get(ident)
        if record is not None and record.state == QUEUED:
            record.state = RUNNING

    def _call_on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self._loop.call_soon_threadsafe(callback, *args)

    def _release_admission(self) -> None:
        with self._lock:
            self._admitted -= 1

    # -- the tab threads -----------------------------------------------------------------

    def _note_browser(self, pid: int | None) -> None:
        """Count a browser restart once, whichever tab thread sees the new browser first."""
        if pid is None:
            return
        with self._lock:
            before, self._browser_pid = self._browser_pid, pid
        if before is not None and before != pid:
            metrics.BROWSER_RESTARTS.inc()

    def _tab_loop(self) -> None:
        try:
            while True:
                item = self._work.get()
                if item is None:
                    return
                self._serve(item)
        finally:
            self._engines.close_thread()

    def _serve(self, item: _Item) -> None:
        """Capture ``item`` in this tab and hand it to an upload thread."""
        started = self._clock()
        metrics.QUEUE_WAIT.observe(max(0.0, started - item.submitted))
        metrics.IN_FLIGHT.inc()
        with self._lock:
            self._running += 1
        self._call_on_loop(self._mark_running, item.id)
        handed_over = False
        try:
            engine = self._engines.get(self.default_engine)
            step = self.pipeline.begin(item.shot, lambda: engine)
            self._problem = None
            self._note_browser(getattr(engine, "browser_pid", None))
            self._note_service_time(self._clock() - started)
            if isinstance(step, Run):
                self._upload_slots.acquire()
                self._uploader.submit(self._upload, item, step)
                handed_over = True
            else:
                self._finish(item, step)
        except ConfigurationError as exc:
            self._problem = f"cannot capture: {exc}"
            self._finish(item, _failed(item.shot, f"the server cannot capture: {exc}"))
        except Exception as exc:  # a bug must not kill the tab
            log.exception("capture of %s failed unexpectedly", item.shot.url)
            self._finish(item, _failed(item.shot, f"internal error: {type(exc).__name__}"))
        finally:
            self._release_admission()
            if not handed_over:
                with self._lock:
                    self._running -= 1

    def _upload(self, item: _Item, run: Run) -> None:
        try:
            row = self.pipeline.store(run)
        except ConfigurationError as exc:
            row = _failed(item.shot, f"the server cannot store screenshots: {exc}")
        except Exception as exc:  # a bug must not kill the upload thread
            log.exception("upload of %s failed unexpectedly", item.shot.url)
            row = _failed(item.shot, f"internal error: {type(exc).__name__}")
        finally:
            self._upload_slots.release()
            with self._lock:
                self._running -= 1
        self._finish(item, row)

    def _finish(self, item: _Item, row: Result) -> None:
        metrics.IN_FLIGHT.dec()
        metrics.observe_row(row)
        self._call_on_loop(self._complete, item.id, row)

    def _note_service_time(self, seconds: float) -> None:
        with self._lock:
            self._service_time += SERVICE_TIME_WEIGHT * (seconds - self._service_time)


def _failed(shot: Shot, message: str) -> Result:
    return error_result(shot.line, shot.url, message, format=shot.options.format)


async def _storage_check(storage: Storage) -> Check:
    try:
        await asyncio.wait_for(asyncio.to_thread(storage.check), READINESS_TTL)
    except TimeoutError:
        return Check(False, f"{storage!r} did not answer within {READINESS_TTL:g} s")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return Check(False, str(exc))
    return Check(True, repr(storage))
