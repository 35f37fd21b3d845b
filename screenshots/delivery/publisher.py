"""Publish capture tasks fast, with publisher confirms.

With ``confirm_publish`` every publish waits for RabbitMQ's confirm, and a quorum queue
confirms only once the message is replicated and on disk: a few milliseconds, so one
publisher alone manages ~150 messages/s. RabbitMQ writes concurrent publishes together, so
several publishers on their own connections multiply that. :class:`Publisher` spreads a
window's messages over ``threads`` publishers, each with its own producer (and connection)
from Celery's producer pool, and returns once every message is confirmed.

Each window is published as one Celery group: every message carries the window's
``group_id`` and its ``group_index``, as ``group.apply_async`` would set them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import redact_url

#: Publishing threads (each with its own broker connection).
DEFAULT_PUBLISH_THREADS = 8
#: Seconds publishing keeps retrying while the broker is unreachable before the run stops.
BROKER_OUTAGE_LIMIT = 600.0


@dataclass(frozen=True)
class Message:
    """One task message to publish."""

    task_id: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    #: Shown by Flower and in logs instead of the (long) arguments.
    argsrepr: str


class Publisher:
    """Publishes messages of one task name, ``threads`` at a time."""

    def __init__(
        self,
        app: Celery,
        task_name: str,
        threads: int = DEFAULT_PUBLISH_THREADS,
        outage_limit: float = BROKER_OUTAGE_LIMIT,
    ) -> None:
        self.app = app
        self.task_name = task_name
        self.threads = max(1, threads)
        self.outage_limit = outage_limit
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="publish")
        self._local = threading.local()
        if (app.conf.broker_pool_limit or 0) < self.threads + 2:
            app.conf.broker_pool_limit = self.threads + 2

    def publish(self, messages: Sequence[Message]) -> str:
        """Publish ``messages`` as one group; return the group id once all are confirmed."""
        group_id = str(uuid.uuid4())
        futures = [
            self._pool.submit(self._publish_one, message, group_id, index)
            for index, message in enumerate(messages)
        ]
        for future in futures:
            future.result()
        return group_id

    def _publish_one(self, message: Message, group_id: str, index: int) -> None:
        give_up = time.monotonic() + self.outage_limit
        while True:
            try:
                with self.app.producer_or_acquire() as producer:
                    self.app.send_task(
                        self.task_name,
                        args=message.args,
                        kwargs=message.kwargs,
                        task_id=message.task_id,
                        group_id=group_id,
                        group_index=index,
                        producer=producer,
                        argsrepr=message.argsrepr,
                        kwargsrepr="",
                    )
                return
            except (OperationalError, OSError) as exc:
                if time.monotonic() > give_up:
                    broker = redact_url(str(self.app.conf.broker_url))
                    raise ConfigurationError(
                        f"the broker at {broker} has been unreachable for "
                        f"{self.outage_limit:g} s: {exc}"
                    ) from None
                time.sleep(2.0)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
