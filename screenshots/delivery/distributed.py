"""Run captures on Celery workers: publish batches to RabbitMQ, collect rows from Redis.

Fan-out is a sliding window: at most ``max_in_flight`` shots are published and not yet
collected. Each refill is published as one Celery group of batch tasks, with publisher
confirms, over several connections at once (:mod:`screenshots.delivery.publisher`). There is no
chord:
results are collected by polling the result keys of the tasks in flight (one ``MGET`` per
poll), recorded, then deleted from Redis. The dispatcher never subscribes to per-task
pub/sub channels (celery#3808), so neither Redis nor the dispatcher hold anything per URL
beyond the window.

Task ids are derived from the job id and the batch's first line, so a rerun of the same job
publishes the same ids and finds results that finished while it was away.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from kombu.exceptions import OperationalError

from screenshots.core.errors import ConfigurationError
from screenshots.core.result import Result, error_result
from screenshots.core.settings import Settings, redact_url
from screenshots.core.shot import Shot
from screenshots.delivery.publisher import DEFAULT_PUBLISH_THREADS, Message, Publisher
from screenshots.delivery.rowstore import RowStore
from screenshots.delivery.runner import Runner
from tasks.celery import CAPTURE_TASK

log = logging.getLogger(__name__)

#: Shots published and not yet collected, at most. Bounds dispatcher memory and queue depth.
DEFAULT_MAX_IN_FLIGHT = 1000
#: Shots per task message for one-tab browsers (see :func:`default_batch_size`): 1 balances
#: load best; larger batches cut per-message overhead for fast engines.
DEFAULT_BATCH_SIZE = 1
#: Task messages' shots per tab of the workers' browsers, by default.
BATCH_PER_TAB = 2


def default_batch_size(settings: Settings) -> int:
    """Shots per task message by default: twice the workers' ``SCREENSHOT_TABS`` (the fleet
    shares its settings). :func:`tasks.capture.capture_batch` runs a batch's shots on all the
    tabs of its process's browser at once, and a task ends with its slowest capture: with one
    shot per tab, the tabs that finished first would wait idle for it; with two, they take
    the batch's next shots meanwhile."""
    return BATCH_PER_TAB * settings.tabs if settings.tabs > 1 else DEFAULT_BATCH_SIZE


#: Seconds between two polls of the result keys.
POLL_INTERVAL = 0.1
#: Seconds after which a batch with no result is given up as an error row. A last resort:
#: poisoned batches get error rows from the worker; this covers a fleet that vanished.
DEFAULT_RESULT_TIMEOUT = 6 * 3600
#: Messages in the work queue (all dispatchers together) above which publishing pauses.
DEFAULT_HIGH_WATER = 5000
#: Seconds between two checks of the work queue's depth.
DEPTH_CHECK_INTERVAL = 1.0
#: Longest wait, in seconds, between two depth checks while the queue stays above the
#: high-water mark: the interval doubles from :data:`DEPTH_CHECK_INTERVAL` up to this. A full
#: queue holds ``high_water`` messages, which keep the workers busy far longer than this, so
#: checking less often never starves them; it only spares the broker the declares.
MAX_DEPTH_CHECK_INTERVAL = 8.0
#: Task failures that are not final: the message is requeued and runs again (or is poisoned).
REQUEUED_FAILURES = frozenset({"WorkerLostError", "TimeLimitExceeded"})


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
        high_water: int = DEFAULT_HIGH_WATER,
        max_age: float | None = None,
        publish_threads: int = DEFAULT_PUBLISH_THREADS,
        app: Celery | None = None,
    ) -> None:
        self.settings = settings
        self.job_id = job_id
        self.engine_name = engine_name
        self.batch_size = max(1, batch_size)
        self.max_in_flight = max(self.batch_size, max_in_flight)
        self.result_timeout = result_timeout
        self.high_water = high_water
        self.max_age = max_age
        self.app = app or dispatcher_app()
        self.publisher = Publisher(self.app, CAPTURE_TASK, publish_threads)
        self.rows = RowStore(self.app.backend.client, job_id)
        self._depth_checked = 0.0
        self._depth_interval = DEPTH_CHECK_INTERVAL
        self._full = False
        self._sentinel_key = f"screenshots:job:{job_id}:alive"
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

    def task_id(self, lines: list[int]) -> str:
        """The same batch of lines of the same job always gets the same task id."""
        digest = hashlib.sha256(",".join(map(str, lines)).encode()).hexdigest()
        return str(uuid.uuid5(self._namespace, f"batch:{digest}"))

    def run(self, shots: Iterable[Shot]) -> Iterator[Result]:
        in_flight: dict[str, _Batch] = {}
        shot_iter = iter(shots)
        exhausted = False
        backend = self.app.backend
        self._mark_alive(backend)
        while True:
            count = sum(len(b.shots) for b in in_flight.values())
            room = count <= self.max_in_flight - self.batch_size
            held_back = False
            if not exhausted and room:
                held_back = self._queue_full()
                if not held_back:
                    batches, exhausted = self._take_batches(shot_iter, count)
                    batches, ready = self._already_done(batches)
                    yield from ready
                    self._publish(batches)
                    in_flight.update((b.task_id, b) for b in batches)
            if not in_flight:
                if exhausted:
                    self._end(backend)
                    return
                if held_back:
                    # Nothing to collect and nothing may be published: sleep until the next
                    # depth check instead of spinning on the cached answer.
                    self._wait_for_depth_check()
                continue
            finished = self._poll(backend, in_flight)
            for batch, rows in finished:
                del in_flight[batch.task_id]
                yield from rows
                self._forget(backend, batch.task_id, [s.line for s in batch.shots])
            if not finished:
                time.sleep(POLL_INTERVAL)

    def _take_batches(self, shot_iter: Iterator[Shot], count: int) -> tuple[list[_Batch], bool]:
        """Batches to fill the window; and whether the input is exhausted."""
        room = self.max_in_flight - count
        batches: list[_Batch] = []
        now = time.monotonic()
        while room >= self.batch_size or (room > 0 and not batches):
            chunk = list(itertools.islice(shot_iter, min(self.batch_size, room)))
            if not chunk:
                return batches, True
            batches.append(_Batch(self.task_id([s.line for s in chunk]), chunk, now))
            room -= len(chunk)
        return batches, False

    def _publish(self, batches: list[_Batch]) -> None:
        """Publish ``batches`` as one group of messages (confirmed, retried through outages)."""
        if batches:
            self.publisher.publish([self._message(b) for b in batches])

    def _message(self, batch: _Batch) -> Message:
        """The task message of a batch. Options shared by the whole batch are sent once."""
        options = batch.shots[0].options
        shared = all(s.options == options for s in batch.shots)
        shots = []
        for shot in batch.shots:
            message = shot.to_message()
            if shared:
                del message["options"]
            shots.append(message)
        kwargs: dict[str, Any] = {
            "engine": self.engine_name,
            "max_age": self.max_age,
            "job": self.job_id,
        }
        if shared:
            kwargs["options"] = options.to_dict()
        lines = f"{batch.shots[0].line}-{batch.shots[-1].line}"
        return Message(batch.task_id, (shots,), kwargs, f"[{len(shots)} URLs, lines {lines}]")

    def _queue_full(self) -> bool:
        """Whether the work queue holds more than ``high_water`` messages.

        Checked every :data:`DEPTH_CHECK_INTERVAL` seconds; while the queue stays full the
        interval backs off up to :data:`MAX_DEPTH_CHECK_INTERVAL`. In between, the last answer.
        """
        now = time.monotonic()
        if now - self._depth_checked < self._depth_interval:
            return self._full
        self._depth_checked = now
        try:
            with self.app.connection_for_write() as conn, conn.channel() as channel:
                declared = channel.queue_declare(self.settings.queue, passive=True)
            full = declared.message_count > self.high_water
        except Exception:  # noqa: BLE001 - the queue may not exist yet, or the broker blinked
            full = False
        if full and self._full:
            self._depth_interval = min(2 * self._depth_interval, MAX_DEPTH_CHECK_INTERVAL)
        elif not full:
            self._depth_interval = DEPTH_CHECK_INTERVAL
        self._full = full
        return full

    def _wait_for_depth_check(self) -> None:
        """Sleep until the next check of the work queue's depth is due."""
        due = self._depth_checked + self._depth_interval
        time.sleep(max(0.0, due - time.monotonic()))

    def _end(self, backend: Any) -> None:
        """Every row is collected: drop the job's sentinel key (else it lives its expiry)."""
        try:
            backend.client.delete(self._sentinel_key)
        except Exception as exc:  # noqa: BLE001 - it expires anyway
            log.debug("could not delete %s: %s", self._sentinel_key, exc)

    def _mark_alive(self, backend: Any) -> None:
        backend.client.set(self._sentinel_key, "1", ex=int(self.result_timeout))

    def _poll(
        self, backend: Any, in_flight: dict[str, _Batch]
    ) -> list[tuple[_Batch, list[Result]]]:
        ids = list(in_flight)
        keys = [backend.get_key_for_task(i) for i in ids] + [self._sentinel_key]
        try:
            values = backend.client.mget(keys)
        except Exception as exc:  # noqa: BLE001 - Redis restarting: try again shortly
            log.warning("cannot read results from Redis (%s); retrying", exc)
            time.sleep(1.0)
            return []
        if values[-1] is None:
            # Redis lost its data (restarted without persistence): results not yet collected
            # are gone. Publish the batches in flight again; workers redo only what is missing.
            log.warning("Redis lost its data; publishing %d batches again", len(ids))
            self._mark_alive(backend)
            now = time.monotonic()
            for batch in in_flight.values():
                batch.published_at = now
            self._publish(list(in_flight.values()))
            return []
        finished = []
        now = time.monotonic()
        for task_id, value in zip(ids, values[:-1], strict=True):
            batch = in_flight[task_id]
            if value is None:
                if now - batch.published_at > self.result_timeout:
                    message = f"no result from any worker within {self.result_timeout:g} s"
                    rows = [error_result(s.line, s.url, message) for s in batch.shots]
                    finished.append((batch, rows))
                continue
            rows_or_none = _rows_from_meta(batch, backend.decode_result(value))
            if rows_or_none is not None:
                if any(not row.ok for row in rows_or_none):
                    rows_or_none = self._with_recorded(rows_or_none)
                finished.append((batch, rows_or_none))
        return finished

    def _with_recorded(self, rows: list[Result]) -> list[Result]:
        """``rows`` of a failed batch (dead-lettered, timed out), each replaced by the row a
        worker recorded for its line before the failure, if any: a shot that finished beside
        one that kept killing the worker keeps its screenshot."""
        try:
            found = self.rows.get_many(row.line for row in rows if not row.ok)
        except Exception:  # noqa: BLE001 - Redis unreachable: the failure rows stand
            return rows
        kept = []
        for row in rows:
            recorded = found.get(row.line) if not row.ok else None
            if recorded is not None and recorded.get("url") == row.url:
                row = Result.from_dict(recorded)
            kept.append(row)
        return kept

    def _forget(self, backend: Any, task_id: str, lines: list[int]) -> None:
        """Delete what Redis holds for a batch now that its rows are in the manifest."""
        try:
            backend.forget(task_id)
            self.rows.delete(lines)
        except Exception as exc:  # noqa: BLE001 - it expires anyway (result_expires)
            log.debug("could not delete result %s: %s", task_id, exc)

    def _already_done(self, batches: list[_Batch]) -> tuple[list[_Batch], list[Result]]:
        """Split off the shots whose rows workers already recorded (a resumed job)."""
        try:
            found = self.rows.get_many(s.line for b in batches for s in b.shots)
        except Exception:  # noqa: BLE001 - then the workers will find them
            return batches, []
        if not found:
            return batches, []
        ready: list[Result] = []
        left: list[_Batch] = []
        for batch in batches:
            todo = []
            for shot in batch.shots:
                row = found.get(shot.line)
                if row is not None and row.get("url") == shot.url:
                    ready.append(Result.from_dict(row))
                else:
                    todo.append(shot)
            if todo:
                left.append(_Batch(self.task_id([s.line for s in todo]), todo, batch.published_at))
        self.rows.delete(r.line for r in ready)
        return left, ready

    def close(self) -> None:
        self.publisher.close()
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
        if isinstance(exc, dict) and exc.get("exc_type") in REQUEUED_FAILURES:
            return None  # the message went back to the queue and will run again
        if isinstance(exc, dict):
            detail = exc.get("exc_message", "")
            if isinstance(detail, list | tuple):
                detail = detail[0] if detail else ""
            if exc.get("exc_type") == "Reject":  # a poisoned batch, dead-lettered on purpose
                message = str(detail)
            else:
                message = f"capture task failed on the worker: {exc.get('exc_type')}: {detail}"
        else:
            message = f"capture task failed on the worker: {exc}"
        return [error_result(s.line, s.url, message) for s in batch.shots]
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
