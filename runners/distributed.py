"""Run captures on Celery workers: publish batches to RabbitMQ, collect rows from Redis.

Fan-out is a sliding window: at most ``max_in_flight`` shots are published and not yet
collected. Each refill is published as one Celery ``group`` of batch tasks over a single
producer with publisher confirms. There is no chord: results are collected by polling the
result keys of the tasks in flight (one ``MGET`` per poll), recorded, then deleted from
Redis. The dispatcher never subscribes to per-task pub/sub channels (celery#3808), so
neither Redis nor the dispatcher hold anything per URL beyond the window.

Task ids are derived from the job id and the batch's first line, so a rerun of the same job
publishes the same ids and finds results that finished while it was away.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from celery import Celery, group, signature
from celery.backends.redis import RedisBackend
from kombu.exceptions import OperationalError

from errors import ConfigurationError
from results import Result, error_result
from runners.base import Runner
from settings import Settings, redact_url
from shots import Shot
from tasks.celery import CAPTURE_TASK

log = logging.getLogger(__name__)

#: Shots published and not yet collected, at most. Bounds dispatcher memory and queue depth.
DEFAULT_MAX_IN_FLIGHT = 1000
#: Shots per task message. 1 balances load best for real browsers; larger batches cut
#: per-message overhead for fast engines.
DEFAULT_BATCH_SIZE = 1
#: Seconds between two polls of the result keys.
POLL_INTERVAL = 0.1
#: Seconds after which a batch with no result is given up as an error row (it may have been
#: dead-lettered). Generous: it covers queueing behind a whole window of slow pages.
DEFAULT_RESULT_TIMEOUT = 6 * 3600


class PollingRedisBackend(RedisBackend):
    """The Redis result backend, minus the per-task pub/sub subscription on publish.

    Celery's Redis backend subscribes to a channel for every task it publishes so that
    ``AsyncResult.get()`` can wait without polling. The dispatcher never calls ``get()``; it
    polls keys in bulk, so the subscriptions would only pile up unread messages.
    """

    def __init__(self, app: Celery, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app=app, url=url or app.conf.result_backend, **kwargs)

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def dispatcher_app() -> Celery:
    """A Celery app configured like the workers, publishing by task name."""
    app = Celery("screenshots-dispatcher", backend=PollingRedisBackend)
    app.config_from_object("celeryconfig")
    return app


@dataclass
class _Batch:
    task_id: str
    shots: list[Shot]
    published_at: float


class DistributedRunner(Runner):
    """Publish shots to the work queue and yield rows as workers finish them."""

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        engine_name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        result_timeout: float = DEFAULT_RESULT_TIMEOUT,
        app: Celery | None = None,
    ) -> None:
        self.settings = settings
        self.job_id = job_id
        self.engine_name = engine_name
        self.batch_size = max(1, batch_size)
        self.max_in_flight = max(self.batch_size, max_in_flight)
        self.result_timeout = result_timeout
        self.app = app or dispatcher_app()
        self._namespace = uuid.UUID(job_id) if _is_uuid(job_id) else uuid.uuid5(
            uuid.NAMESPACE_URL, job_id
        )

    # -- checks ----------------------------------------------------------------------------

    def check(self) -> None:
        """Fail with one clear line if the broker or the result backend is unreachable."""
        broker = redact_url(str(self.app.conf.broker_url))
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0.2, timeout=5)
        except (OperationalError, OSError) as exc:
            raise ConfigurationError(f"cannot reach the broker at {broker}: {exc}") from None
        backend = redact_url(str(self.app.conf.result_backend))
        try:
            self.app.backend.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure here means "unreachable"
            raise ConfigurationError(
                f"cannot reach the result backend at {backend}: {exc}"
            ) from None

    # -- running ---------------------------------------------------------------------------

    def task_id(self, first_line: int) -> str:
        return str(uuid.uuid5(self._namespace, f"batch:{first_line}"))

    def run(self, shots: Iterable[Shot]) -> Iterator[Result]:
        in_flight: dict[str, _Batch] = {}
        shot_iter = iter(shots)
        exhausted = False
        backend = self.app.backend
        with self.app.producer_or_acquire() as producer:
            while True:
                count = sum(len(b.shots) for b in in_flight.values())
                if not exhausted and count <= self.max_in_flight - self.batch_size:
                    exhausted = self._publish(shot_iter, in_flight, count, producer)
                if not in_flight:
                    if exhausted:
                        return
                    continue
                finished = list(self._poll(backend, in_flight))
                for batch, rows in finished:
                    del in_flight[batch.task_id]
                    yield from rows
                    backend.forget(batch.task_id)
                if not finished:
                    time.sleep(POLL_INTERVAL)

    def _publish(
        self,
        shot_iter: Iterator[Shot],
        in_flight: dict[str, _Batch],
        count: int,
        producer: Any,
    ) -> bool:
        """Publish shots until the window is full; return whether the input is exhausted."""
        room = self.max_in_flight - count
        batches: list[_Batch] = []
        exhausted = False
        now = time.monotonic()
        while room >= self.batch_size or (room > 0 and not batches):
            chunk = list(itertools.islice(shot_iter, min(self.batch_size, room)))
            if not chunk:
                exhausted = True
                break
            batches.append(_Batch(self.task_id(chunk[0].line), chunk, now))
            room -= len(chunk)
        if batches:
            signatures = [
                signature(
                    CAPTURE_TASK,
                    args=([s.to_message() for s in b.shots],),
                    kwargs={"engine": self.engine_name},
                    app=self.app,
                ).set(task_id=b.task_id)
                for b in batches
            ]
            group(signatures, app=self.app).apply_async(producer=producer)
            for b in batches:
                in_flight[b.task_id] = b
        return exhausted

    def _poll(
        self, backend: Any, in_flight: dict[str, _Batch]
    ) -> Iterator[tuple[_Batch, list[Result]]]:
        ids = list(in_flight)
        values = backend.client.mget([backend.get_key_for_task(i) for i in ids])
        now = time.monotonic()
        for task_id, value in zip(ids, values, strict=True):
            batch = in_flight[task_id]
            if value is None:
                if now - batch.published_at > self.result_timeout:
                    message = f"no result from any worker within {self.result_timeout:g} s"
                    yield batch, [error_result(s.line, s.url, message) for s in batch.shots]
                continue
            meta = backend.decode_result(value)
            rows = _rows_from_meta(batch, meta)
            if rows is not None:
                yield batch, rows

    def close(self) -> None:
        self.app.close()


def _rows_from_meta(batch: _Batch, meta: dict[str, Any]) -> list[Result] | None:
    """The rows of a finished batch, or ``None`` if it is not finished yet."""
    state = meta.get("status")
    if state == "SUCCESS":
        by_line = {}
        for row in meta.get("result") or []:
            try:
                result = Result.from_dict(row)
            except TypeError:
                continue
            by_line[result.line] = result
        rows = []
        for shot in batch.shots:
            rows.append(
                by_line.get(shot.line)
                or error_result(shot.line, shot.url, "worker returned no row for this URL")
            )
        return rows
    if state in {"FAILURE", "REVOKED"}:
        exc = meta.get("result")
        if isinstance(exc, dict):
            text = f"{exc.get('exc_type', 'error')}: {exc.get('exc_message', '')}"
        else:
            text = str(exc)
        message = f"capture task failed on the worker: {text}"
        return [error_result(s.line, s.url, message) for s in batch.shots]
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
