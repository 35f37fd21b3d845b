"""Batch jobs: many URLs submitted at once, fed to the back end as capacity allows.

A job is fed by a task of an API process: it submits its shots as *background* work (the
back end keeps part of its capacity for interactive requests), at most ``window`` at a time,
collects the rows as they finish, and at the end POSTs the summary to the job's
``callback_url`` (see :mod:`screenshots.api.callbacks`). Between two rounds it waits for its
oldest capture in flight to finish (the back end's own wait), at most ``poll_interval``; when
the back end is busy it tries again after that, not after ``Retry-After``: that header is
whole seconds, and sleeping whole seconds while the pool drains in milliseconds made stub
jobs crawl at a dozen captures a second.

Where jobs live is the job store's business (:mod:`screenshots.api.jobstore`): Redis in broker
mode, so any replica answers for any job, and this process in broker-less mode. In broker mode
the replica that feeds a job holds a lease on it, renewed every third of
``SCREENSHOT_API_JOB_LEASE``; every replica looks for jobs whose lease lapsed (their replica
was killed or restarted) and takes them over. Captures have deterministic ids
(``<job>.<line>``): the new feeder waits for those already running and publishes again those
that never started, and a row is recorded only for a line that has none, so each URL ends
with exactly one row. Only the key that created a job can see it (any other key gets 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from screenshots.api import metrics
from screenshots.api.auth import Principal
from screenshots.api.backends.base import QUEUED, Backend
from screenshots.api.callbacks import Delivery, deliver
from screenshots.api.changes import JobComparison, changes_of
from screenshots.api.config import ApiConfig
from screenshots.api.errors import ApiError, Busy, not_found
from screenshots.api.jobstore import RUNNING, JobRecord, JobStore, MemoryJobStore
from screenshots.api.payloads import JobRequest
from screenshots.core.result import Result, error_result
from screenshots.core.shot import Shot

log = logging.getLogger(__name__)

#: Seconds between two looks at a job's captures in flight.
DEFAULT_POLL_INTERVAL = 0.2
#: Captures of one job in flight at most.
DEFAULT_WINDOW = 100
#: Pause after the back end failed to take a capture (not busy: an error), in seconds.
MAX_PAUSE = 5.0
#: Rows per chunk of a streamed ``results.jsonl``.
STREAM_CHUNK = 200
#: Captures looked up at once when a job is taken over.
LOOKUP_CHUNK = 500


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """A job store that does not answer (broker mode: Redis) is a 503, not a 500."""
    try:
        yield
    except RedisError as exc:
        log.warning("the job store cannot be reached: %s", exc)
        raise ApiError(
            503, f"jobs cannot be read or written now ({type(exc).__name__}): retry later",
            headers={"Retry-After": "5"},
        ) from None


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them to end. A cancellation that arrives during a Redis
    command can be lost (redis-py's asyncio client swallows it), so it is repeated."""
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)


class _Feed:
    """A job being fed by this process: what is left to submit and what is in flight."""

    def __init__(self, record: JobRecord, pending: deque[Shot | Result]) -> None:
        self.record = record
        self.pending = pending
        self.in_flight: dict[str, Shot] = {}  # in the order they were submitted
        self.comparison: JobComparison | None = None


class JobManager:
    """Creates jobs, runs their feeders, takes over orphans, finds jobs for their owner."""

    def __init__(
        self,
        backend: Backend,
        config: ApiConfig,
        *,
        store: JobStore | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        self.backend = backend
        self.config = config
        self.store = store or MemoryJobStore(config.result_ttl)
        self.poll_interval = poll_interval
        self.window = window
        self._signing = {key.name: str(key.secret) for key in config.keys}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._lost: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def lease(self) -> float:
        return self.config.job_lease

    async def start(self) -> None:
        """Broker mode: start looking for jobs whose replica is gone."""
        if self.store.shared:
            self._watcher = asyncio.create_task(self._watch(), name="job-takeover")

    async def close(self) -> None:
        """Stop feeding; the leases are released so another replica takes over at once."""
        tasks = [task for task in (self._watcher, *self._running.values()) if task is not None]
        await cancel(tasks)
        await self.store.close()

    async def create(self, principal: Principal, request: JobRequest) -> JobRecord:
        """Start a job for ``principal``; 429 if that key has too many unfinished jobs."""
        with _reachable():
            return await self._create(principal, request)

    async def _create(self, principal: Principal, request: JobRequest) -> JobRecord:
        active = await self.store.active(principal.name)
        if active >= self.config.max_active_jobs:
            metrics.REJECTIONS.labels(reason="jobs").inc()
            raise Busy(
                f"API key {principal.name!r} already has {active} unfinished jobs "
                f"(SCREENSHOT_API_MAX_ACTIVE_JOBS={self.config.max_active_jobs}): "
                "wait for one to end",
                retry_after=5,
                reason="jobs",
            )
        if request.compare is not None:
            earlier = await self.store.get(request.compare)
            if earlier is None or earlier.owner != principal.name:
                raise ApiError(422, f"compare: there is no job {request.compare} of this key")
        record = JobRecord(
            id=str(uuid.uuid4()),
            owner=principal.name,
            engine=request.engine,
            total=len(request.items),
            callback_url=request.callback_url,
            compare=request.compare,
            callback=Delivery(request.callback_url).to_dict() if request.callback_url else None,
        )
        self._signing.setdefault(principal.name, str(principal.key))
        await self.store.create(record, request.items)
        if await self.store.acquire(record.id, self.lease):
            self._spawn(record.id, resume=False)
        return record

    async def get(self, job_id: str, owner: str) -> JobRecord:
        """The job ``job_id`` if ``owner`` created it; else 404 (the same for both cases)."""
        with _reachable():
            record = await self.store.get(job_id)
        if record is None or record.owner != owner:
            raise not_found("job", job_id)
        return record

    async def row(self, job_id: str, line: int) -> Result | None:
        with _reachable():
            return await self.store.row(job_id, line)

    async def stream(self, record: JobRecord, follow: bool) -> AsyncIterator[bytes]:
        """The rows as JSON Lines: those finished so far, then (``follow``) the rest (the
        answer ends early if the job store stops answering: its status is sent already)."""
        try:
            async for chunk in self._stream(record, follow):
                yield chunk
        except RedisError as exc:
            log.warning("job %s: rows cannot be read now: %s", record.id, exc)

    async def _stream(self, record: JobRecord, follow: bool) -> AsyncIterator[bytes]:
        sent = 0
        current: JobRecord | None = record
        while True:
            finished = current is None or current.state != RUNNING
            rows = await self.store.rows_from(record.id, sent)
            sent += len(rows)
            for start in range(0, len(rows), STREAM_CHUNK):
                chunk = rows[start : start + STREAM_CHUNK]
                yield "".join(json.dumps(row.to_dict()) + "\n" for row in chunk).encode("utf-8")
            if finished or not follow:
                return
            current = await self.store.get(record.id)
            if current is not None and current.state == RUNNING and current.done <= sent:
                await self.store.wait_update(record.id, 15)
                current = await self.store.get(record.id)

    # -- who feeds what ------------------------------------------------------------------

    def _spawn(self, job_id: str, *, resume: bool) -> None:
        task = asyncio.create_task(self._run(job_id, resume), name=f"job-{job_id}")
        self._running[job_id] = task
        task.add_done_callback(lambda _: self._running.pop(job_id, None))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 2)
            try:
                for job_id in await self.store.orphans():
                    if job_id not in self._running and await self.store.acquire(
                        job_id, self.lease
                    ):
                        log.warning("job %s: its replica is gone; taking it over", job_id)
                        self._spawn(job_id, resume=True)
            except Exception as exc:  # noqa: BLE001 - Redis hiccup: look again next time
                log.warning("cannot look for jobs to take over now (%s)", exc)

    async def _keep_lease(self, job_id: str, feeder: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                kept = await self.store.renew(job_id, self.lease)
            except Exception as exc:  # noqa: BLE001 - try again before it lapses
                log.warning("job %s: cannot renew its lease now (%s)", job_id, exc)
                continue
            if not kept:
                log.warning("job %s: lease lost to another replica; it feeds the job now", job_id)
                self._lost.add(job_id)
                await cancel([feeder])
                return

    async def _run(self, job_id: str, resume: bool) -> None:
        me = asyncio.current_task()
        assert me is not None
        keeper = asyncio.create_task(self._keep_lease(job_id, me)) if self.store.shared else None
        try:
            record = await self.store.get(job_id)
            if record is None:
                return
            if record.state == RUNNING:
                await self._feed_job(record, resume)
                await self.store.finish(job_id)
                record = await self.store.get(job_id) or record
            if record.callback is not None:
                await self._call_back(record)
            await self.store.retire(job_id, record.owner)
        except asyncio.CancelledError:
            if job_id not in self._lost:
                raise
        except Exception:
            log.exception("job %s: its feeder failed", job_id)
        finally:
            if keeper is not None:
                await cancel([keeper])
            if job_id in self._lost:
                self._lost.discard(job_id)
            else:
                try:
                    await asyncio.shield(self.store.release(job_id))
                except Exception:
                    log.debug("job %s: cannot release its lease", job_id, exc_info=True)

    # -- the feeder ----------------------------------------------------------------------

    async def _feed_job(self, record: JobRecord, resume: bool) -> None:
        items = await self.store.items(record.id)
        done: set[int] = set()
        if resume:
            done = await self.store.done_lines(record.id)
        feed = _Feed(record, deque(item for item in items if item.line not in done))
        if record.compare is not None:
            earlier = await self.store.rows_from(record.compare, 0)
            feed.comparison = JobComparison(self.backend.storage, earlier, items)
        try:
            if resume:
                await self._adopt(feed)
            await self._feed(feed)
        except asyncio.CancelledError:
            raise
        except Exception:  # the job must still end with a row per item
            log.exception("job %s failed", record.id)
            left = [*feed.pending, *feed.in_flight.values()]
            rows = [
                error_result(item.line, item.url, "internal error in the job runner")
                if isinstance(item, Shot) else item
                for item in left
            ]
            await self.store.add_rows(record.id, rows)

    def _ident(self, job_id: str, shot: Shot) -> str | None:
        """The capture id of a shot of a job: deterministic when jobs are shared."""
        return f"{job_id}.{shot.line}" if self.store.shared else None

    async def _adopt(self, feed: _Feed) -> None:
        """A job taken over: captures its old feeder started are waited for, not redone
        (those never started stay pending: publishing them again under the same id is safe)."""
        shots = [item for item in feed.pending if isinstance(item, Shot)]
        started: dict[int, str] = {}
        for start in range(0, len(shots), LOOKUP_CHUNK):
            chunk = shots[start : start + LOOKUP_CHUNK]
            idents = [self._ident(feed.record.id, shot) or "" for shot in chunk]
            statuses = await self.backend.lookup(idents)
            for shot, ident, status in zip(chunk, idents, statuses, strict=True):
                if status is not None and status.state != QUEUED:
                    started[shot.line] = ident
                    feed.in_flight[ident] = shot
        feed.pending = deque(item for item in feed.pending if item.line not in started)

    async def _feed(self, feed: _Feed) -> None:
        resume_at = 0.0
        refused = False
        while feed.pending or feed.in_flight:
            if feed.pending and time.monotonic() >= resume_at:
                resume_at, refused = await self._submit_some(feed)
            if feed.in_flight:
                await self._collect(feed)
            if feed.pending and not refused and len(feed.in_flight) < self.window:
                continue  # captures finished and the back end takes more: at once
            if feed.pending or feed.in_flight:
                await self._progress(feed)

    async def _progress(self, feed: _Feed) -> None:
        """Wait until the oldest capture in flight is done, or ``poll_interval`` at most."""
        if not feed.in_flight:
            await asyncio.sleep(self.poll_interval)
            return
        try:
            await self.backend.wait(next(iter(feed.in_flight)), self.poll_interval)
        except Exception as exc:  # noqa: BLE001 - Redis hiccup: look again next time
            log.warning("job %s: cannot wait for a result now (%s)", feed.record.id, exc)
            await asyncio.sleep(self.poll_interval)

    async def _add(self, feed: _Feed, rows: list[Result]) -> None:
        if feed.comparison is not None:
            comparison = feed.comparison
            rows = await asyncio.to_thread(lambda: [comparison.compare(row) for row in rows])
        await self.store.add_rows(feed.record.id, rows)

    async def _submit_some(self, feed: _Feed) -> tuple[float, bool]:
        """Submit pending items until the window or the back end is full: when to try again,
        and whether the back end refused one (then the feeder waits for progress first)."""
        ready: list[Result] = []
        try:
            while feed.pending and len(feed.in_flight) < self.window:
                item = feed.pending[0]
                if isinstance(item, Result):
                    feed.pending.popleft()
                    ready.append(item)
                    continue
                try:
                    ident = await self.backend.submit(
                        item, owner=feed.record.owner, engine=feed.record.engine,
                        background=True, ident=self._ident(feed.record.id, item),
                    )
                except Busy:  # full: room comes back as captures finish, ours or others'
                    return 0.0, True
                except ApiError as exc:
                    if exc.status < 500:  # will never work: say so in the row
                        feed.pending.popleft()
                        ready.append(error_result(item.line, item.url, exc.detail))
                        continue
                    log.warning(
                        "job %s: cannot submit now (%s); retrying", feed.record.id, exc.detail
                    )
                    return time.monotonic() + MAX_PAUSE, True
                feed.pending.popleft()
                feed.in_flight[ident] = item
            return 0.0, False
        finally:
            if ready:
                await self._add(feed, ready)

    async def _collect(self, feed: _Feed) -> None:
        ids = list(feed.in_flight)
        try:
            statuses = await self.backend.lookup(ids)
        except Exception as exc:  # noqa: BLE001 - Redis hiccup: look again next time
            log.warning("job %s: cannot read results now (%s)", feed.record.id, exc)
            return
        rows: list[Result] = []
        for ident, status in zip(ids, statuses, strict=True):
            shot = feed.in_flight[ident]
            if status is None:
                message = "the capture's result expired or was lost"
                rows.append(error_result(shot.line, shot.url, message))
            elif status.done and status.result is not None:
                rows.append(status.result)
            else:
                continue
            del feed.in_flight[ident]
        if rows:
            await self._add(feed, rows)

    # -- the callback --------------------------------------------------------------------

    async def _call_back(self, record: JobRecord) -> None:
        assert record.callback is not None
        delivery = Delivery.from_dict(record.callback)
        if delivery.state != "pending":
            return
        job_id = record.id
        ended = record.finished_at
        finished = datetime.fromisoformat(ended).timestamp() if ended else time.time()
        payload: dict[str, Any] = {"event": "job.finished", "job": record.summary()}
        if record.compare is not None:
            payload["changes"] = changes_of(await self.store.rows_from(job_id, 0))

        async def progress() -> None:
            await self.store.save_callback(job_id, delivery.to_dict())

        async def acknowledged() -> None:
            await self.store.mark_callback_sent(job_id)
            await progress()

        await deliver(
            delivery,
            payload,
            self._signing.get(record.owner, ""),
            attempts=self.config.callback_attempts,
            backoff=self.config.callback_backoff,
            allow_private=self.config.callback_allow_private,
            idempotency_key=job_id,
            expires_at=finished + self.config.callback_expiry,
            already_sent=lambda: self.store.callback_sent(job_id),
            acknowledged=acknowledged,
            progress=progress,
        )
        await progress()
