"""What a worker stopped before it was ready was waiting for, said in its last line.

A worker that never becomes ready and is stopped (a process manager's or a check's timeout)
ends its output with Celery's ``worker: Warm shutdown (MainProcess)``, whatever it was waiting
for: a report that shows the last line shows nothing else. So while the worker is starting, a
daemon thread notes once a second where its main thread is (the innermost frames of Celery,
Kombu, py-amqp, redis-py and this project), and a worker stopped before ``ready`` prints, after
Celery's line, how long it had been starting, the last thing its log said and where it was
waiting. Nothing runs once the worker is ready. A worker stopped after it was ready says when it
became ready and under which node name: a check that stops a worker it never *saw* ready (it
looked for another name, or in another stream) can then tell that from a worker that never was.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from types import FrameType

__all__ = ["StartupWatch"]

#: Seconds between two looks at the main thread while the worker starts.
LOOK_EVERY = 1.0
#: Frames named in the last line, innermost last.
FRAMES_SHOWN = 3
#: Packages whose frames say where a starting worker waits.
_OURS = ("celery", "kombu", "amqp", "redis", "screenshots", "tasks", "celeryconfig")


class _LastWords(logging.Handler):
    """Keeps the last message logged at INFO or above."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last = (record.getMessage().splitlines() or [""])[0][:200]
        except Exception:  # noqa: BLE001 - a log record must never break the worker
            self.last = ""


def where(frame: FrameType | None) -> str:
    """The innermost frames of ``frame``'s stack that belong to :data:`_OURS`, outermost first,
    as ``package/module.py:function:line``; empty if none."""
    found: list[str] = []
    for summary in traceback.extract_stack(frame):
        parts = summary.filename.replace("\\", "/").split("/")
        package = next((p for p in reversed(parts[:-1]) if p in _OURS), None)
        if package is None and parts[-1].removesuffix(".py") not in _OURS:
            continue
        module = f"{package}/{parts[-1]}" if package else parts[-1]
        found.append(f"{module}:{summary.name}:{summary.lineno}")
    return " < ".join(reversed(found[-FRAMES_SHOWN:]))


class StartupWatch:
    """Started in ``worker_init`` (main thread); :meth:`ready` at ``worker_ready``;
    :meth:`report` at ``worker_shutting_down`` (Celery's signal handler, right after its "Warm
    shutdown" line): the line to print, whether it was ready or not."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.main = threading.main_thread().ident
        self.words = _LastWords()
        self.waiting = ""
        #: Seconds from start to ``worker_ready``, and the node name it was ready as.
        self.ready_after: float | None = None
        self.node = ""
        self._ready = threading.Event()
        self._logger: logging.Logger | None = None

    def start(self) -> None:
        threading.Thread(target=self._watch, name="startup-watch", daemon=True).start()

    def listen(self, logger: logging.Logger) -> None:
        """Keep the last message of ``logger``: Celery's logger, once set up (``worker_init``
        comes first, and Celery then replaces the root logger's handlers)."""
        if not self._ready.is_set():
            self._logger = logger
            logger.addHandler(self.words)

    def _watch(self) -> None:
        while not self._ready.wait(LOOK_EVERY):
            self.waiting = where(sys._current_frames().get(self.main or 0))

    def ready(self, node: str = "") -> None:
        self.ready_after = time.monotonic() - self.started
        self.node = node
        self._ready.set()
        if self._logger is not None:
            self._logger.removeHandler(self.words)

    def report(self) -> str:
        """The line to print at shutdown."""
        seconds = time.monotonic() - self.started
        if self.ready_after is not None:
            return (
                f"worker: stopped {seconds:.0f} s after it started; it was ready after "
                f"{self.ready_after:.1f} s, as {self.node or 'this node'}"
            )
        line = f"worker: stopped {seconds:.0f} s after it started, before it was ready"
        if self.words.last:
            line += f"; the last it logged: {self.words.last!r}"
        if self.waiting:
            line += f"; it was waiting in {self.waiting}"
        return line
