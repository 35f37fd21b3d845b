"""``screenshots-worker-metrics``: Prometheus metrics of the Celery workers, from their events.

Workers send task events (``worker_send_task_events``, ``task_send_sent_event`` in
:mod:`celeryconfig`); this process listens to them and serves the same metric names as the
API's ``/metrics`` (see :mod:`screenshots.api.metrics`), on
``WORKER_METRICS_ADDRESS:WORKER_METRICS_PORT``
(default ``127.0.0.1:9808``):

- ``screenshots_captures_total{status,engine}``: per row of each finished task (the status
  is read from the task's result as the event carries it; the engine from its arguments);
- ``screenshots_capture_duration_seconds{engine}``: the task's run time divided by its rows;
- ``screenshots_queue_wait_seconds``: from ``task-sent`` (or ``task-received``) to
  ``task-started``;
- ``screenshots_captures_in_flight``: tasks started and not finished;
- ``screenshots_queue_depth``: the work queue's ``message_count``, every
  ``WORKER_METRICS_INTERVAL`` seconds (default 5);
- ``screenshots_blocked_requests_total``: from the rows, when the event's copy of the result
  (cut by Celery at about 1 KiB) still shows them.

Browser restarts happen inside the worker processes and are not in Celery's events; the
broker-less API counts them. Flower stays the live dashboard; this exporter adds the
screenshot-specific numbers.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from screenshots.api import metrics

log = logging.getLogger("api.worker_metrics")

#: Default port of the exporter.
DEFAULT_PORT = 9808
#: Default address: loopback (put a reverse proxy or Prometheus' network in front of it).
DEFAULT_ADDRESS = "127.0.0.1"
#: Seconds between two measurements of the queue depth.
DEFAULT_INTERVAL = 5.0
#: Tasks remembered between their events, at most (oldest forgotten first).
MAX_TRACKED = 100_000

_STATUS = re.compile(r"'status': '(ok|error)'")
_ENGINE = re.compile(r"'engine': '([A-Za-z0-9_.-]+)'")
_BLOCKED = re.compile(r"'blocked_requests': (\d+)")


class EventCollector:
    """Turns Celery task events into metrics. :meth:`handle` takes one event dict."""

    def __init__(self) -> None:
        self._queued: OrderedDict[str, float] = OrderedDict()  # uuid -> sent/received time
        self._engines: OrderedDict[str, str] = OrderedDict()  # uuid -> engine name
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        ident = str(event.get("uuid", ""))
        stamp = float(event.get("timestamp") or time.time())
        with self._lock:
            if kind in ("task-sent", "task-received"):
                if kind == "task-sent" or ident not in self._queued:
                    _remember(self._queued, ident, stamp)
                engine = _engine_of(event)
                if engine:
                    _remember(self._engines, ident, engine)
            elif kind == "task-started":
                queued = self._queued.pop(ident, None)
                if queued is not None:
                    metrics.QUEUE_WAIT.observe(max(0.0, stamp - queued))
                if ident not in self._running:
                    self._running.add(ident)
                    metrics.IN_FLIGHT.inc()
            elif kind in ("task-succeeded", "task-failed", "task-rejected", "task-revoked"):
                self._queued.pop(ident, None)
                engine = self._engines.pop(ident, "unknown")
                if ident in self._running:
                    self._running.discard(ident)
                    metrics.IN_FLIGHT.dec()
                if kind == "task-succeeded":
                    _count_rows(str(event.get("result", "")), engine, event.get("runtime"))
                elif kind == "task-failed":
                    metrics.CAPTURES.labels(status="error", engine=engine).inc()


def _remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    while len(store) > MAX_TRACKED:
        store.popitem(last=False)


def _engine_of(event: Mapping[str, Any]) -> str | None:
    """The ``engine`` keyword argument of a task, from the event's ``kwargs`` (a repr)."""
    raw = event.get("kwargs")
    if isinstance(raw, dict):
        value = raw.get("engine")
        return str(value) if value else None
    if isinstance(raw, str):
        try:
            parsed = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            found = _ENGINE.search(raw)
            return found.group(1) if found else None
        if isinstance(parsed, dict) and parsed.get("engine"):
            return str(parsed["engine"])
    return None


def _count_rows(result: str, engine: str, runtime: Any) -> None:
    """Count the rows of a finished task from the repr of its result (possibly cut short)."""
    statuses = _STATUS.findall(result)
    if engine == "unknown":
        found = _ENGINE.search(result)
        engine = found.group(1) if found else engine
    for status in statuses:
        metrics.CAPTURES.labels(status=status, engine=engine).inc()
    if statuses and isinstance(runtime, int | float) and runtime >= 0:
        share = runtime / len(statuses)
        for _ in statuses:
            metrics.CAPTURE_DURATION.labels(engine=engine).observe(share)
    blocked = sum(int(n) for n in _BLOCKED.findall(result))
    if blocked:
        metrics.BLOCKED_REQUESTS.inc(blocked)


def watch_queue_depth(app: Any, queue: str, interval: float, stop: threading.Event) -> None:
    """Set ``screenshots_queue_depth`` from a passive ``queue_declare`` every ``interval`` s."""
    while not stop.is_set():
        try:
            with app.connection_for_write() as connection, connection.channel() as channel:
                declared = channel.queue_declare(queue, passive=True)
            metrics.QUEUE_DEPTH.set(declared.message_count)
        except Exception as exc:  # noqa: BLE001 - the broker may be restarting
            log.warning("cannot measure the queue depth: %s", exc)
        stop.wait(interval)


def listen(app: Any, collector: EventCollector) -> None:
    """Consume task events forever, reconnecting after broker failures."""
    while True:
        try:
            with app.connection() as connection:
                receiver = app.events.Receiver(connection, handlers={"*": collector.handle})
                receiver.capture(limit=None, timeout=None, wakeup=True)
        except Exception as exc:  # noqa: BLE001 - reconnect whatever went wrong
            log.warning("event stream interrupted (%s); reconnecting", exc)
            time.sleep(2.0)


def main() -> None:
    """Serve the exporter until interrupted."""
    from prometheus_client import start_http_server

    from screenshots.core.errors import ConfigurationError
    from screenshots.core.settings import EnvReader, load_settings
    from screenshots.delivery.distributed import dispatcher_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        reader = EnvReader(os.environ)
        port = reader.integer("WORKER_METRICS_PORT", DEFAULT_PORT)
        address = os.environ.get("WORKER_METRICS_ADDRESS", "").strip() or DEFAULT_ADDRESS
        interval = reader.number("WORKER_METRICS_INTERVAL", DEFAULT_INTERVAL, low=0.1)
        settings = load_settings()
    except ConfigurationError as exc:
        raise SystemExit(f"error: {exc}") from None
    app = dispatcher_app()
    start_http_server(port, addr=address)
    log.info("worker metrics on http://%s:%d/metrics", address, port)
    stop = threading.Event()
    threading.Thread(
        target=watch_queue_depth, args=(app, settings.queue, interval, stop), daemon=True
    ).start()
    try:
        listen(app, EventCollector())
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


if __name__ == "__main__":
    main()
