"""The broker back end: each request becomes a Celery task on the workers' queue.

Tasks are published by name (``screenshots.capture``, one shot per task, ``kwargs
{"engine": name}``) exactly as the dispatcher publishes them, so the same workers serve both.
Rows come back through the Redis result backend and are read by key, never through per-task
pub/sub (see :class:`screenshots.delivery.distributed.PollingRedisBackend`).

Backpressure: before publishing, the work queue's depth is read with a passive
``queue_declare`` (its ``message_count``), at most every ``depth_interval`` seconds, plus what
this process published since. At or above ``high_water`` messages, a request gets 429 with
``Retry-After`` instead of growing the queue; batch jobs stop at half of it, leaving room for
interactive requests.

Who asked for a capture is kept in Redis next to the result (``screenshots-api:shot:<id>``,
expiring after ``result_ttl``), so any API process can answer ``GET /v1/screenshots/{id}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from celery import Celery

from engines import engine_names
from screenshots.api import metrics
from screenshots.api.backends.base import DONE, QUEUED, RUNNING, Backend, Check, Status
from screenshots.api.errors import ApiError, Busy
from screenshots.core.result import Result, error_result
from screenshots.core.settings import Settings, redact_url
from screenshots.core.shot import Shot
from screenshots.delivery.distributed import REQUEUED_FAILURES, dispatcher_app
from screenshots.storage.base import Storage
from tasks.celery import CAPTURE_TASK

log = logging.getLogger(__name__)

#: Seconds a measured queue depth is reused before the broker is asked again.
DEFAULT_DEPTH_INTERVAL = 0.5
#: Prefix of the Redis keys recording who asked for each capture.
META_PREFIX = "screenshots-api:shot:"
#: Seconds assumed per capture and worker process, to estimate ``Retry-After``.
ASSUMED_CAPTURE_SECONDS = 1.0
#: Seconds a readiness probe may take.
PROBE_TIMEOUT = 5.0


class CeleryBackend(Backend):
    """Publish captures to Celery workers; read their rows from Redis."""

    mode = "celery"

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        high_water: int,
        result_ttl: int,
        depth_interval: float = DEFAULT_DEPTH_INTERVAL,
        app: Celery | None = None,
    ) -> None:
        if settings.result_backend is None:
            raise ValueError("the broker mode needs CELERY_RESULT_BACKEND")
        self.settings = settings
        self.storage = storage
        self.high_water = high_water
        self.result_ttl = result_ttl
        self.depth_interval = depth_interval
        self.queue = settings.queue
        self.default_engine = settings.engine
        self._app = app
        self._redis: aioredis.Redis | None = None
        self._probe_lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        self._depth = 0
        self._consumers = 0
        self._published_since_probe = 0
        self._probed_at = float("-inf")
        self._probe_guard = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"CeleryBackend(queue={self.queue!r}, high_water={self.high_water}, "
            f"storage={self.storage!r})"
        )

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = dispatcher_app()
        return self._app

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                str(self.settings.result_backend), socket_timeout=10, socket_connect_timeout=5
            )
        return self._redis

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._declare_queue)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz; requests get 503
            log.warning("cannot declare the work queue %r yet: %s", self.queue, exc)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        await asyncio.to_thread(self._close_probe)
        if self._app is not None:
            self._app.close()

    def engines(self) -> Sequence[str]:
        return engine_names()

    # -- publishing ----------------------------------------------------------------------

    async def submit(
        self,
        shot: Shot,
        *,
        owner: str,
        engine: str,
        background: bool = False,
        ident: str | None = None,
    ) -> str:
        depth, consumers = await self._queue_depth()
        limit = self.high_water // 2 if background else self.high_water
        if depth >= limit:
            excess = depth - limit + 1
            metrics.QUEUE_DEPTH.set(depth)
            raise Busy(
                f"the work queue holds {depth} captures (high-water mark {self.high_water}): "
                "retry later",
                retry_after=excess * ASSUMED_CAPTURE_SECONDS / max(1, consumers),
                reason="busy",
            )
        ident = ident or str(uuid.uuid4())
        meta = {"owner": owner, "url": shot.url, "line": shot.line, "engine": engine}
        self._published_since_probe += 1
        try:
            await self.redis.set(_meta_key(ident), json.dumps(meta), ex=self.result_ttl)
            await asyncio.to_thread(self._publish, shot, engine, ident)
        except ApiError:
            raise
        except Exception as exc:  # the broker or Redis is down: not "busy"
            log.warning("cannot publish a capture: %s", exc)
            raise ApiError(
                503, f"the capture could not be queued: {type(exc).__name__}: {exc}"
            ) from exc
        return ident

    def _publish(self, shot: Shot, engine: str, ident: str) -> None:
        self.app.send_task(
            CAPTURE_TASK, args=([shot.to_message()],), kwargs={"engine": engine}, task_id=ident
        )

    # -- reading results -----------------------------------------------------------------

    async def lookup(self, ids: Sequence[str]) -> list[Status | None]:
        if not ids:
            return []
        backend = self.app.backend
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.mget([_meta_key(ident) for ident in ids])
            pipe.mget([backend.get_key_for_task(ident) for ident in ids])
            metas, values = await pipe.execute()
        statuses: list[Status | None] = []
        for ident, meta_raw, value in zip(ids, metas, values, strict=True):
            if meta_raw is None:
                statuses.append(None)
                continue
            meta = json.loads(meta_raw)
            statuses.append(_status(ident, meta, backend.decode_result(value) if value else None))
        return statuses

    async def wait(self, ident: str, timeout: float) -> Status | None:
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            (status,) = await self.lookup([ident])
            left = deadline - time.monotonic()
            if status is None or status.done or left <= 0:
                return status
            await asyncio.sleep(min(pause, left))
            pause = min(0.5, pause * 1.5)

    # -- health --------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Check]:
        checks: dict[str, Check] = {}
        broker = redact_url(str(self.app.conf.broker_url))
        try:
            depth, consumers = await asyncio.wait_for(self._queue_depth(fresh=True), PROBE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            checks["broker"] = Check(False, f"{broker}: {exc}")
            checks["workers"] = Check(False, "unknown: the broker cannot be reached")
        else:
            checks["broker"] = Check(
                True,
                f"queue {self.queue!r} holds {depth} (high-water mark {self.high_water})",
                {"queue_depth": depth},
            )
            checks["workers"] = Check(
                consumers > 0, f"{consumers} worker processes consume {self.queue!r}"
            )
        try:
            await asyncio.wait_for(self.redis.ping(), PROBE_TIMEOUT)
            checks["results"] = Check(True, "Redis answers")
        except Exception as exc:  # noqa: BLE001
            checks["results"] = Check(False, f"Redis: {type(exc).__name__}: {exc}")
        try:
            await asyncio.wait_for(asyncio.to_thread(self.storage.check), PROBE_TIMEOUT)
            checks["storage"] = Check(True, repr(self.storage))
        except Exception as exc:  # noqa: BLE001
            checks["storage"] = Check(False, str(exc) or type(exc).__name__)
        return checks

    def capacity(self) -> dict[str, Any]:
        return {
            "high_water": self.high_water,
            "queue_depth": self._depth + self._published_since_probe,
            "consumers": self._consumers,
        }

    # -- the queue probe -----------------------------------------------------------------

    async def _queue_depth(self, fresh: bool = False) -> tuple[int, int]:
        """``(messages waiting, consumers)`` of the work queue, measured at most every
        ``depth_interval`` seconds (plus what this process published since)."""
        if fresh or time.monotonic() - self._probed_at >= self.depth_interval:
            async with self._probe_guard:
                if fresh or time.monotonic() - self._probed_at >= self.depth_interval:
                    try:
                        depth, consumers = await asyncio.to_thread(self._probe)
                    except Exception as exc:  # the broker is down: not "busy"
                        broker = redact_url(str(self.app.conf.broker_url))
                        raise ApiError(
                            503, f"the broker at {broker} cannot be reached: {exc}"
                        ) from exc
                    self._depth, self._consumers = depth, consumers
                    self._published_since_probe = 0
                    self._probed_at = time.monotonic()
                    metrics.QUEUE_DEPTH.set(depth)
        return self._depth + self._published_since_probe, self._consumers

    def _probe(self) -> tuple[int, int]:
        with self._probe_lock:
            for attempt in (1, 2):
                try:
                    if self._channel is None:
                        self._connection = self.app.connection_for_write()
                        self._connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)
                        self._channel = self._connection.channel()
                    _, count, consumers = self._channel.queue_declare(
                        queue=self.queue, passive=True
                    )
                    return int(count), int(consumers)
                except Exception:
                    self._close_probe_locked()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _declare_queue(self) -> None:
        """Declare the work queue as the workers do, so publishing never drops a message."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)
            self.app.amqp.queues[self.queue](connection.default_channel).declare()

    def _close_probe(self) -> None:
        with self._probe_lock:
            self._close_probe_locked()

    def _close_probe_locked(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a broken connection
                log.debug("closing the probe connection failed", exc_info=True)


def _meta_key(ident: str) -> str:
    return META_PREFIX + ident


def _status(ident: str, meta: dict[str, Any], task: dict[str, Any] | None) -> Status:
    owner = str(meta.get("owner", ""))
    state = (task or {}).get("status")
    if state == "SUCCESS":
        rows = (task or {}).get("result") or []
        try:
            row = Result.from_dict(rows[0])
        except (IndexError, KeyError, TypeError):
            row = _error(meta, "the worker returned no row for this URL")
        return Status(ident, owner, DONE, row)
    if state in ("FAILURE", "REVOKED"):
        failure = (task or {}).get("result")
        if isinstance(failure, dict) and failure.get("exc_type") in REQUEUED_FAILURES:
            return Status(ident, owner, QUEUED)  # back in the queue: it will run again
        if isinstance(failure, dict):
            detail = failure.get("exc_message", "")
            if isinstance(detail, list | tuple):
                detail = detail[0] if detail else ""
            if failure.get("exc_type") == "Reject":  # poisoned, dead-lettered on purpose
                message = str(detail)
            else:
                message = f"capture task failed on the worker: {failure.get('exc_type')}: {detail}"
        else:
            message = f"capture task failed on the worker: {failure}"
        return Status(ident, owner, DONE, _error(meta, message))
    if state in ("STARTED", "RETRY"):
        return Status(ident, owner, RUNNING)
    return Status(ident, owner, QUEUED)


def _error(meta: dict[str, Any], message: str) -> Result:
    return error_result(int(meta.get("line", 1)), str(meta.get("url", "")), message)
