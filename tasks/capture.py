"""The capture task: a batch of shots in, one manifest row per shot out.

At-least-once delivery means a batch can arrive more than once (a worker died, the broker
restarted, the dispatcher was restarted and published it again). The task is idempotent:

- a batch whose result is already stored (same deterministic task id) is not shot again;
- a shot of the same URL and options younger than ``max_age`` is reused
(:mod:`screenshots.pipeline.reuse`);
- objects are written under deterministic keys, so a second capture overwrites the first.

A batch that keeps killing its worker (out of memory, hard time limit) is not redelivered
forever: from the ``poison_deliveries``-th delivery on, its rows are stored as errors and the
message is rejected to the dead-letter queue. A storage outage longer than the in-process
retries re-queues the unfinished shots with a growing countdown instead of failing them.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Task
from celery.exceptions import Reject

from screenshots.core.errors import ConfigurationError, InvalidOption, StorageUnavailable
from screenshots.core.result import Result, error_result
from screenshots.core.shot import OptionsMemo, Shot
from screenshots.delivery.rowstore import RowStore
from screenshots.pipeline.screenshot import Pipeline
from tasks import resources
from tasks.celery import CAPTURE_TASK, app

log = logging.getLogger(__name__)

#: First countdown (s) before a batch is retried after a storage outage; doubles each time.
STORAGE_RETRY_COUNTDOWN = 5
#: Longest countdown between two storage retries, in seconds.
STORAGE_RETRY_COUNTDOWN_MAX = 60
#: Storage retries of one batch before its remaining shots become error rows (~10 minutes).
STORAGE_MAX_RETRIES = 12
#: Seconds finished rows may wait before they are recorded in the job's row store.
RECORD_INTERVAL = 0.25
#: The error of every URL of a batch that kept killing its worker.
POISON_MESSAGE = (
    "the worker died or hit its time limit on each of {deliveries} deliveries of this URL's "
    "batch; sent to the dead-letter queue"
)


@app.task(
    name=CAPTURE_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=STORAGE_MAX_RETRIES,
)
def capture(
    self: Task,
    shots: list[dict[str, Any]],
    engine: str | None = None,
    max_age: float | None = None,
    done: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    job: str | None = None,
) -> list[dict[str, Any]]:
    """Capture each shot of the batch and return its manifest rows (a dict per shot).

    ``options`` are the capture options of every shot that does not carry its own; ``done``
    carries the rows finished by earlier attempts of this batch (storage retries); ``job``
    names the dispatcher job, whose finished rows are kept per URL in a :class:`RowStore`.
    """
    if options is not None:
        shots = [
            {**m, "options": options} if isinstance(m, dict) and "options" not in m else m
            for m in shots
        ]
    stored = _stored_rows(self)
    if stored is not None:
        log.info("batch %s already has a result; not shooting it again", self.request.id)
        return stored
    deliveries = delivery_count(self.request)
    if deliveries >= resources.settings().poison_deliveries:
        # Rejected without requeue: dead-lettered, and recorded as a FAILURE whose message
        # the dispatcher puts in each URL's error row.
        raise Reject(POISON_MESSAGE.format(deliveries=deliveries), requeue=False)
    store = RowStore(self.backend.client, job) if job else None
    rows, pending = capture_batch(shots, engine, max_age, store, redelivered=deliveries)
    finished = (done or []) + [row.to_dict() for row in rows]
    if pending:
        if self.request.retries < STORAGE_MAX_RETRIES:
            countdown = min(STORAGE_RETRY_COUNTDOWN * 2**self.request.retries,
                            STORAGE_RETRY_COUNTDOWN_MAX)
            log.warning("storage unavailable; retrying %d shots in %ss", len(pending), countdown)
            try:
                raise self.retry(
                    args=(pending,),
                    kwargs={"engine": engine, "max_age": max_age, "done": finished,
                            "job": job},
                    countdown=countdown,
                )
            except Reject as exc:
                if exc.requeue:
                    raise
                # Celery turns a retry it cannot publish (the broker is unreachable too: a
                # network partition) into a reject *without* requeue, which dead-letters the
                # batch and ends its URLs as error rows. The outage is transient: give the
                # message back to the queue instead. Rows this attempt finished are in the
                # job's row store, so the redelivery does not shoot them again.
                log.warning("could not publish the storage retry (%s); requeueing", exc.reason)
                raise Reject(f"retry not published: {exc.reason!r}", requeue=True) from None
        message = f"storage unavailable (gave up after {STORAGE_MAX_RETRIES} retries)"
        finished += [
            error_result(int(m.get("line", 0)), str(m.get("url", "")), message).to_dict()
            for m in pending
        ]
    return finished


def capture_batch(
    shots: list[dict[str, Any]],
    engine_name: str | None,
    max_age: float | None = None,
    store: RowStore | None = None,
    redelivered: int = 0,
) -> tuple[list[Result], list[dict[str, Any]]]:
    """The body of :func:`capture`, callable without a worker.

    Returns the rows made (in the order of ``shots``), and the shot messages left for later
    because storage was down (in that order too). Rows already in ``store`` are reused; new
    ones are recorded there as they are made. The shots are captured concurrently on the
    process's one engine, as many at once as it takes (``SCREENSHOT_TABS`` tabs of one
    browser for the Selenium engine; one for engines that are not thread-safe).

    A batch delivered again (``redelivered`` times before: its worker died or hit its time
    limit, perhaps because of one of its pages) is captured one shot at a time, starting at a
    different shot each delivery: each shot that can finish is recorded before the one that
    kills the worker comes round again, so the batch's poison takes only its own URL.
    """
    current = resources.settings()
    recorded = _recorded(store, shots)
    unsaved = _Unsaved(store, at_once=redelivered > 0)
    parsed: OptionsMemo = {}
    rows: list[Result | None] = []
    work: list[tuple[int, dict[str, Any], Shot]] = []  # (place in rows, message, shot)
    for message in shots:
        try:
            shot = Shot.from_message(message, parsed)
        except (InvalidOption, KeyError, TypeError, ValueError, AttributeError) as exc:
            line = message.get("line", 0) if isinstance(message, dict) else 0
            url = message.get("url", "") if isinstance(message, dict) else ""
            text = exc.message if isinstance(exc, InvalidOption) else f"bad shot: {exc!r}"
            rows.append(error_result(int(line), str(url), text))
            continue
        previous = recorded.get(shot.line)
        if previous is not None and previous.get("url") == shot.url:
            rows.append(Result.from_dict(previous))
            continue
        work.append((len(rows), message, shot))
        rows.append(None)
    pending: dict[int, dict[str, Any]] = {}

    def take(place: int, message: dict[str, Any], shot: Shot) -> None:
        try:
            pipeline = Pipeline.from_settings(
                current, resources.storage(), max_age=max_age, raise_storage_outage=True
            )
            row = pipeline.take(shot, lambda: resources.engine(engine_name))
            rows[place] = row
            unsaved.add(row)
        except StorageUnavailable:
            pending[place] = message
        except ConfigurationError as exc:
            log.error("cannot capture line %d: %s", shot.line, exc)
            rows[place] = error_result(shot.line, shot.url, f"worker misconfigured: {exc}")

    threads = min(len(work), _threads(_concurrency(engine_name)))
    if redelivered and work:
        turn = (redelivered - 1) % len(work)
        work = work[turn:] + work[:turn]
        threads = 1
    if threads <= 1:
        for item in work:
            take(*item)
    else:
        pool = ThreadPoolExecutor(threads, thread_name_prefix="capture")
        try:
            for future in [pool.submit(take, *item) for item in work]:
                future.result()
        finally:
            # A soft time limit (raised here, in the task's thread) must not wait for the
            # captures not started yet; those running end within their own timeouts.
            pool.shutdown(wait=True, cancel_futures=True)
    unsaved.flush()
    done = [row for row in rows if row is not None]
    return done, [pending[place] for place in sorted(pending)]


def _threads(concurrency: int) -> int:
    """Threads for a batch on an engine taking ``concurrency`` captures at once: one per tab,
    plus half as many again, so that a tab whose thread is storing its image (hash, thumbnail,
    three uploads: ~25 ms) starts its next capture at once instead of idling (the engine's
    own limit keeps the captures at ``concurrency``)."""
    return concurrency + concurrency // 2 if concurrency > 1 else 1


def _concurrency(engine_name: str | None) -> int:
    """How many captures the process's engine takes at once (1 if it cannot be made: the
    shots then get its error one by one, as before)."""
    try:
        return max(1, resources.engine(engine_name).concurrent)
    except Exception:  # noqa: BLE001 - the pipeline reports it per shot
        return 1


def delivery_count(request: Any) -> int:
    """How many times RabbitMQ delivered this message before (quorum queues count them)."""
    value = getattr(request, "x-delivery-count", None)
    if value is None and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get("x-delivery-count")
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _recorded(store: RowStore | None, shots: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    if store is None:
        return {}
    lines = [m["line"] for m in shots if isinstance(m, dict) and isinstance(m.get("line"), int)]
    try:
        return store.get_many(lines)
    except Exception as exc:  # noqa: BLE001 - Redis down: shoot again rather than fail
        log.warning("cannot read finished rows: %s", exc)
        return {}


class _Unsaved:
    """Rows waiting to be recorded: written together, at least every ``RECORD_INTERVAL``.

    A slow capture (a browser) is recorded at once; fast ones (the stub, cache hits) share a
    round trip to Redis.
    """

    def __init__(self, store: RowStore | None, at_once: bool = False) -> None:
        self.store = store
        #: Record every row as soon as it is made (a redelivered batch: the next shot may
        #: kill the worker).
        self.interval = 0.0 if at_once else RECORD_INTERVAL
        self.rows: dict[int, dict[str, Any]] = {}
        self.since = time.monotonic()
        self._lock = threading.Lock()  # rows come from the batch's capturing threads

    def add(self, row: Result) -> None:
        if self.store is None:
            return
        with self._lock:
            self.rows[row.line] = row.to_dict()
            if time.monotonic() - self.since < self.interval:
                return
            rows, self.rows, self.since = self.rows, {}, time.monotonic()
        self._put(rows)

    def flush(self) -> None:
        with self._lock:
            rows, self.rows, self.since = self.rows, {}, time.monotonic()
        self._put(rows)

    def _put(self, rows: dict[int, dict[str, Any]]) -> None:
        if self.store is not None and rows:
            try:
                self.store.put_many(rows)
            except Exception as exc:  # noqa: BLE001 - the batch result still carries them
                log.warning("cannot record %d finished rows: %s", len(rows), exc)


def _stored_rows(task: Task) -> list[dict[str, Any]] | None:
    try:
        meta = task.backend.get_task_meta(task.request.id)
    except Exception:  # noqa: BLE001 - no dedupe is better than no capture
        return None
    if meta.get("status") == "SUCCESS" and isinstance(meta.get("result"), list):
        return list(meta["result"])
    return None
