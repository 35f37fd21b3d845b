"""The Celery application, configured from :mod:`celeryconfig`."""

import logging
from typing import Any

import celery.app.trace
from celery import Celery
from celery.signals import worker_ready

#: Name under which tasks are published; the dispatcher sends by this name.
CAPTURE_TASK = "screenshots.capture"

app = Celery("screenshots")
app.config_from_object("celeryconfig")

log = logging.getLogger(__name__)

# Celery logs every task's return value at INFO ("succeeded in 1.2s: [...]"); ours are rows
# holding presigned links, which are bearer secrets: log the timing only.
celery.app.trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


@worker_ready.connect
def _declare_dead_letters(sender: Any = None, **_: object) -> None:
    """Make sure the dead-letter exchange and queue exist before work is dead-lettered."""
    from screenshots.delivery.topology import declare_dead_letter_topology

    try:
        with app.connection_for_write() as connection:
            declare_dead_letter_topology(connection, app.conf.task_default_queue)
    except Exception as exc:  # noqa: BLE001 - the worker can serve without it
        log.warning("could not declare the dead-letter queue: %s", exc)
