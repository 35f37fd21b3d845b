"""What a worker process keeps between tasks: its engines and its storage client.

A browser is expensive to start (~1.4 s) and cheap to reuse (~0.25 s a shot), so each pool
process keeps one engine per engine name, started lazily on its first task — never at import
or in ``worker_process_init``, which has a 4 s budget — and closed when the process shuts
down. An engine that takes several captures at once (:attr:`engines.base.Engine.concurrent`:
the Selenium engine's ``SCREENSHOT_TABS`` tabs) is shared by every thread of the process: the
task's capturing threads (:func:`tasks.capture.capture_batch`), or the pool's threads with
``-P threads``. Others stay one per thread, kept by
:class:`~screenshots.pipeline.threadengines.ThreadEngines`, as in the embedded runner and the
API's pool.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os

from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from engines import chromium, create_engine
from engines.base import Engine
from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import Settings, load_settings
from screenshots.pipeline.threadengines import ThreadEngines
from screenshots.storage import create_storage
from screenshots.storage.base import Storage

_engines = ThreadEngines(lambda name: create_engine(name, settings()))
_settings: Settings | None = None
_storage: Storage | None = None


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def engine(name: str | None = None) -> Engine:
    """The engine called ``name`` (default: ``SCREENSHOT_ENGINE``), made on first use: the
    process's one if it takes several captures at once, else this thread's."""
    return _engines.get(name or settings().engine)  # ThreadEngines shares the tabbed ones


def storage() -> Storage:
    """The process's storage back end: S3 when ``SCREENSHOT_BUCKET`` is set."""
    global _storage
    if _storage is None:
        current = settings()
        if not current.bucket:
            raise ConfigurationError(
                "this worker has no SCREENSHOT_BUCKET: set it (and the AWS_* variables) "
                "so screenshots can be stored"
            )
        _storage = create_storage(current, None)
    return _storage


def close_all() -> None:
    """Close every engine this process started (and so every browser process)."""
    _engines.close()


@worker_process_init.connect
def _leave_the_process_group(**_: object) -> None:
    """Put each pool process in a process group of its own.

    Process managers stop a program by signalling its whole process group (honcho's
    ``killpg``, dumb-init's default setsid mode, supervisord's ``stopasgroup``). A pool
    process that gets SIGTERM dies mid-task (``WorkerLostError``). In their own groups, only
    the main process gets it, and it shuts down warm: running captures finish first.
    """
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


@worker_process_shutdown.connect
def _on_process_shutdown(**_: object) -> None:
    close_all()


@worker_shutdown.connect
def _on_worker_shutdown(**_: object) -> None:
    close_all()
    # The pool processes are gone by now. One that died abruptly (SIGKILL, the OOM killer)
    # could not close its browser: ChromeDriver dies with it, its Chromium does not. Kill
    # such orphans (browsers whose owner process is dead) rather than leave them running.
    with contextlib.suppress(Exception):
        killed = chromium.reap_orphans()
        if killed:
            logging.getLogger(__name__).warning(
                "killed %d browser processes left by dead pool processes", killed
            )


atexit.register(close_all)
