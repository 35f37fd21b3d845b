"""The Celery application, configured from :mod:`celeryconfig`."""

import logging
import sys
from typing import Any

import celery.app.trace
from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_ready,
    worker_shutting_down,
)
from celery.utils.log import get_multiprocessing_logger

#: Name under which tasks are published; the dispatcher sends by this name.
CAPTURE_TASK = "screenshots.capture"

app = Celery("screenshots")
app.config_from_object("celeryconfig")

log = logging.getLogger(__name__)

# Celery logs every task's return value at INFO ("succeeded in 1.2s: [...]"); ours are rows
# holding presigned links, which are bearer secrets: log the timing only.
celery.app.trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_to_stdout(logger: logging.Logger | None = None, **_: object) -> None:
    """The worker's log goes to standard output, not Celery's default standard error.

    A Procfile process writes its event stream to stdout (twelve-factor): a process manager or
    check that reads stdout, as Heroku-style runners may, saw the banner and "worker: Warm
    shutdown" there but never "celery@host ready.", and took a ready worker for a stuck one.
    Only the console handlers move; ``--logfile`` is left as given.
    """
    for each in (logger, get_multiprocessing_logger()):
        for handler in each.handlers if each is not None else ():
            if isinstance(handler, logging.StreamHandler) and handler.stream in (
                sys.stderr,
                sys.__stderr__,
            ):
                handler.setStream(sys.__stdout__)


#: Where a worker stopped before it was ready was waiting (see :mod:`tasks.startup`).
_startup: Any = None


@worker_init.connect
def _watch_startup(**_: object) -> None:
    from tasks.startup import StartupWatch

    global _startup
    _startup = StartupWatch()
    _startup.start()


@worker_init.connect
def _refuse_without_result_backend(**_: object) -> None:
    """A worker given a broker but no result backend stops at once and says why (its rows
    would go to its own host's Redis), as does one the broker refuses for good (a vhost it
    does not have, rejected credentials: see
    :func:`screenshots.delivery.topology.broker_refusal`); raised as SystemExit, which
    Celery's signal dispatch does not swallow."""
    from screenshots.core.settings import load_settings

    settings = load_settings()
    missing = settings.missing_result_backend()
    if missing:
        raise SystemExit(f"worker: {missing}")
    if settings.broker_url is not None and str(settings.broker_url).startswith("amqp"):
        from screenshots.delivery.topology import broker_refusal

        refused = broker_refusal(str(settings.broker_url))
        if refused:
            raise SystemExit(f"worker: {refused}")


@worker_ready.connect
def _declare_dead_letters(sender: Any = None, **_: object) -> None:
    """Make sure the dead-letter exchange and queue exist before work is dead-lettered."""
    from screenshots.delivery.topology import declare_dead_letter_topology

    try:
        with app.connection_for_write() as connection:
            declare_dead_letter_topology(connection, app.conf.task_default_queue)
    except Exception as exc:  # noqa: BLE001 - the worker can serve without it
        log.warning("could not declare the dead-letter queue: %s", exc)


@after_setup_logger.connect
def _startup_listens(logger: logging.Logger | None = None, **_: object) -> None:
    if _startup is not None and logger is not None:
        _startup.listen(logger)


@worker_ready.connect
def _started(sender: Any = None, **_: object) -> None:
    """Connected after the dead-letter declaration: a wait there is a wait before ``ready``."""
    if _startup is not None:
        _startup.ready(str(getattr(sender, "hostname", "") or ""))


@worker_shutting_down.connect
def _say_how_it_stopped(**_: object) -> None:
    """A worker stopped says right after Celery's "Warm shutdown" line whether it had been ready
    (when, as which node) or what it was waiting for.

    ``worker_shutting_down`` is sent by Celery's own SIGTERM/SIGINT/SIGQUIT handler, after it
    printed that line. A warm shutdown only sets a flag the worker reads once it is running, so
    a worker waiting where nothing reads it (a publish blocked by a broker's resource alarm)
    never reaches ``worker_shutdown``: it is killed after the check's grace period."""
    if _startup is not None:
        print(_startup.report(), file=sys.__stdout__, flush=True)
