"""The worker's message consumer, changed in one way: undecodable messages are dead-lettered.

Celery acks a message it cannot decode (a corrupt body, an unknown content type), which
drops it silently. Rejecting it without requeue instead sends it through the work queue's
dead-letter exchange to ``<queue>.dlq``, where ``screenshots-deadletters list`` shows it.
Selected by ``worker_consumer`` in :mod:`celeryconfig`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

log = logging.getLogger(__name__)


class DeadLetteringConsumer(Consumer):
    def on_decode_error(self, message: Any, exc: Exception) -> None:
        log.error(
            "dead-lettering an undecodable message (content type %r): %s",
            message.content_type,
            exc,
        )
        message.reject(requeue=False)
