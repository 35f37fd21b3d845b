"""Batch jobs: many URLs submitted at once, fed to the back end as capacity allows.

A job is fed by a task of the API process: it submits its shots as *background* work (the
back end keeps part of its capacity for interactive requests), at most ``window`` at a time,
collects the rows as they finish, and at the end POSTs the summary to the job's
``callback_url`` (see :mod:`screenshots.api.callbacks`). Between two rounds it waits for its
oldest capture in flight to finish (the back end's own wait: an event in the pool), at most
``poll_interval``; when the back end is busy it tries again after that, not after
``Retry-After``: that header is whole seconds, and sleeping whole seconds while the pool
drains in milliseconds made stub jobs crawl at a dozen captures a second.

Jobs live in the memory of the API process that accepted them, for ``result_ttl`` seconds
after they end; only the key that created a job can see it (any other key gets 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from screenshots.api import metrics
from screenshots.api.auth import Principal
from screenshots.api.backends.base import Backend
from screenshots.api.callbacks import Delivery, deliver
from screenshots.api.config import ApiConfig
from screenshots.api.errors import ApiError, Busy, not_found
from screenshots.api.payloads import JobRequest
from screenshots.core.result import OK, Result, error_result
from screenshots.core.settings import Secret
from screenshots.core.shot import Shot

log = logging.getLogger(__name__)

#: ``state`` of a job still capturing.
RUNNING = "running"
#: ``state`` of a job whose every item has a row.
DONE = "done"
#: Seconds between two looks at a job's captures in flight.
DEFAULT_POLL_INTERVAL = 0.2
#: Captures of one job in flight at most.
DEFAULT_WINDOW = 100
#: Finished jobs kept at most (oldest dropped first), whatever their age.
MAX_KEPT_JOBS = 1000
#: Pause after the back end failed to take a capture (not busy: an error), in seconds.
MAX_PAUSE = 5.0
#: Rows per chunk of a streamed ``results.jsonl``.
STREAM_CHUNK = 200


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """One batch: its items, its rows so far, and its callback."""

    id: str
    owner: str
    engine: str
    total: int
    pending: deque[Shot | Result]
    key: Secret = field(repr=False)
    callback: Delivery | None = None
    rows: list[Result] = field(default_factory=list)
    ok: int = 0
    error: int = 0
    state: str = RUNNING
    created_at: str = field(default_factory=_now)
    finished_at: str | None = None
    ended: float | None = None
    by_line: dict[int, Result] = field(default_factory=dict)
    updated: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, row: Result) -> None:
        self.rows.append(row)
        self.by_line[row.line] = row
        if row.status == OK:
            self.ok += 1
        else:
            self.error += 1
        self._signal()

    def finish(self) -> None:
        self.state, self.finished_at, self.ended = DONE, _now(), time.monotonic()
        self._signal()

    def _signal(self) -> None:
        self.updated.set()
        self.updated = asyncio.Event()

    def summary(self) -> dict[str, Any]:
        """The job's progress, as ``GET /v1/jobs/{id}`` shows it and the callback sends it."""
        return {
            "id": self.id,
            "state": self.state,
            "total": self.total,
            "done": len(self.rows),
            "ok": self.ok,
            "error": self.error,
            "engine": self.engine,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "results_url": f"/v1/jobs/{self.id}/results.jsonl",
            "callback": self.callback.to_dict() if self.callback else None,
        }

    async def stream(self, follow: bool) -> AsyncIterator[bytes]:
        """The rows as JSON Lines: those finished so far, then (``follow``) the rest."""
        sent = 0
        while True:
            finished = self.state != RUNNING
            updated = self.updated
            while sent < len(self.rows):
                chunk = self.rows[sent : sent + STREAM_CHUNK]
                sent += len(chunk)
                yield "".join(json.dumps(row.to_dict()) + "\n" for row in chunk).encode("utf-8")
            if finished or not follow:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(updated.wait(), 15)


class JobManager:
    """Creates jobs, runs their feeders, finds them for their owner."""

    def __init__(
        self,
        backend: Backend,
        config: ApiConfig,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.backend = backend
        self.config = config
        self.poll_interval = poll_interval
        self.window = window
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def create(self, principal: Principal, request: JobRequest) -> Job:
        """Start a job for ``principal``; 429 if that key has too many unfinished jobs."""
        self._evict()
        active = sum(
            1 for job in self._jobs.values() if job.owner == principal.name and job.state == RUNNING
        )
        if active >= self.config.max_active_jobs:
            metrics.REJECTIONS.labels(reason="jobs").inc()
            raise Busy(
                f"API key {principal.name!r} already has {active} unfinished jobs "
                f"(SCREENSHOT_API_MAX_ACTIVE_JOBS={self.config.max_active_jobs}): "
                "wait for one to end",
                retry_after=5,
                reason="jobs",
            )
        job = Job(
            id=str(uuid.uuid4()),
            owner=principal.name,
            engine=request.engine,
            total=len(request.items),
            pending=deque(request.items),
            key=principal.key,
            callback=Delivery(request.callback_url) if request.callback_url else None,
        )
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str, owner: str) -> Job:
        """The job ``job_id`` if ``owner`` created it; else 404 (the same for both cases)."""
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise not_found("job", job_id)
        return job

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _evict(self) -> None:
        now = time.monotonic()
        for job_id in [
            job.id
            for job in self._jobs.values()
            if job.ended is not None and now - job.ended > self.config.result_ttl
        ]:
            del self._jobs[job_id]
        finished = [job.id for job in self._jobs.values() if job.ended is not None]
        for job_id in finished[: max(0, len(finished) - MAX_KEPT_JOBS)]:
            del self._jobs[job_id]

    # -- the feeder ----------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        try:
            await self._feed(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # the job must still end with a row per item
            log.exception("job %s failed", job.id)
            while job.pending:
                item = job.pending.popleft()
                if isinstance(item, Shot):
                    item = error_result(item.line, item.url, "internal error in the job runner")
                job.add(item)
        job.finish()
        if job.callback is not None:
            await deliver(
                job.callback,
                {"event": "job.finished", "job": job.summary()},
                str(job.key),
                attempts=self.config.callback_attempts,
                backoff=self.config.callback_backoff,
                allow_private=self.config.callback_allow_private,
            )

    async def _feed(self, job: Job) -> None:
        in_flight: dict[str, Shot] = {}  # in the order they were submitted
        resume_at = 0.0
        refused = False
        while job.pending or in_flight:
            if job.pending and time.monotonic() >= resume_at:
                resume_at, refused = await self._submit_some(job, in_flight)
            if in_flight:
                await self._collect(job, in_flight)
            if job.pending and not refused and len(in_flight) < self.window:
                continue  # captures finished and the back end takes more: at once
            if job.pending or in_flight:
                await self._progress(job, in_flight)

    async def _progress(self, job: Job, in_flight: dict[str, Shot]) -> None:
        """Wait until the oldest capture in flight is done, or ``poll_interval`` at most."""
        if not in_flight:
            await asyncio.sleep(self.poll_interval)
            return
        try:
            await self.backend.wait(next(iter(in_flight)), self.poll_interval)
        except Exception as exc:  # noqa: BLE001 - Redis hiccup: look again next time
            log.warning("job %s: cannot wait for a result now (%s)", job.id, exc)
            await asyncio.sleep(self.poll_interval)

    async def _submit_some(self, job: Job, in_flight: dict[str, Shot]) -> tuple[float, bool]:
        """Submit pending items until the window or the back end is full: when to try again,
        and whether the back end refused one (then the feeder waits for progress first)."""
        while job.pending and len(in_flight) < self.window:
            item = job.pending[0]
            if isinstance(item, Result):
                job.pending.popleft()
                job.add(item)
                continue
            try:
                ident = await self.backend.submit(
                    item, owner=job.owner, engine=job.engine, background=True
                )
            except Busy:  # full: room comes back as captures finish, ours or others'
                return 0.0, True
            except ApiError as exc:
                if exc.status < 500:  # will never work: say so in the row
                    job.pending.popleft()
                    job.add(error_result(item.line, item.url, exc.detail))
                    continue
                log.warning("job %s: cannot submit now (%s); retrying", job.id, exc.detail)
                return time.monotonic() + MAX_PAUSE, True
            job.pending.popleft()
            in_flight[ident] = item
        return 0.0, False

    async def _collect(self, job: Job, in_flight: dict[str, Shot]) -> None:
        ids = list(in_flight)
        try:
            statuses = await self.backend.lookup(ids)
        except Exception as exc:  # noqa: BLE001 - Redis hiccup: look again next time
            log.warning("job %s: cannot read results now (%s)", job.id, exc)
            return
        for ident, status in zip(ids, statuses, strict=True):
            shot = in_flight[ident]
            if status is None:
                message = "the capture's result expired or was lost"
                job.add(error_result(shot.line, shot.url, message))
            elif status.done and status.result is not None:
                job.add(status.result)
            else:
                continue
            del in_flight[ident]
