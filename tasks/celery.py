"""The Celery application, configured from :mod:`celeryconfig`."""

import logging
from typing import Any

import celery.app.trace
from celery import Celery
from celery.signals import worker_init, worker_ready

#: Name under which tasks are published; the dispatcher sends by this name.
CAPTURE_TASK = "screenshots.capture"

app = Celery("screenshots")
app.config_from_object("celeryconfig")

log = logging.getLogger(__name__)

# Celery logs every task's return value at INFO ("succeeded in 1.2s: [...]"); ours are rows
# holding presigned links, which are bearer secrets: log the timing only.
celery.app.trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


@worker_init.connect
def _refuse_without_result_backend(**_: object) -> None:
    """A worker given a broker but no result backend stops at once and says why (its rows
    would go to its own host's Redis); raised as SystemExit, which Celery's signal dispatch
    does not swallow."""
    from screenshots.core.settings import load_settings

    missing = load_settings().missing_result_backend()
    if missing:
        raise SystemExit(f"worker: {missing}")


@worker_ready.connect
def _declare_dead_letters(sender: Any = None, **_: object) -> None:
    """Make sure the dead-letter exchange and queue exist before work is dead-lettered."""
    from screenshots.delivery.topology import declare_dead_letter_topology

    try:
        with app.connection_for_write() as connection:
            declare_dead_letter_topology(connection, app.conf.task_default_queue)
    except Exception as exc:  # noqa: BLE001 - the worker can serve without it
        log.warning("could not declare the dead-letter queue: %s", exc)
