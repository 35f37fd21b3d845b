"""Prometheus metrics, shared by the API (``GET /metrics``) and the worker exporter.

Names and labels are the same wherever a capture runs, so one dashboard covers both modes:
the broker-less API counts the captures it runs itself; in the broker mode the captures run on
Celery workers and :mod:`screenshots.api.worker_metrics` counts them from Celery events.

- ``screenshots_captures_total{status,engine}``: finished captures (``ok`` / ``error``);
- ``screenshots_capture_duration_seconds{engine}``: capture + upload, all attempts;
- ``screenshots_queue_wait_seconds``: from accepted to started;
- ``screenshots_captures_in_flight``: captures running now;
- ``screenshots_queue_depth``: waiting captures (the pool's wait queue, or the broker queue);
- ``screenshots_browser_restarts_total``: a browser replaced by a new one (crash, deadline,
  recycling);
- ``screenshots_blocked_requests_total``: requests the egress policy blocked, as reported in
  result rows (``blocked_requests``);
- ``screenshots_api_responses_total{code}`` and ``screenshots_api_rejections_total{reason}``:
  HTTP answers, and 429s by cause (``rate_limit``, ``busy``, ``jobs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from screenshots.core.result import Result

#: Histogram buckets of capture durations, in seconds.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
#: Histogram buckets of queue waits, in seconds.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

CAPTURES = Counter(
    "screenshots_captures", "Finished captures by result status and engine.", ["status", "engine"]
)
CAPTURE_DURATION = Histogram(
    "screenshots_capture_duration_seconds",
    "Wall time of one capture and its upload, all attempts included.",
    ["engine"],
    buckets=DURATION_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "screenshots_queue_wait_seconds",
    "Time from a capture being accepted to its start.",
    buckets=WAIT_BUCKETS,
)
IN_FLIGHT = Gauge("screenshots_captures_in_flight", "Captures running now.")
QUEUE_DEPTH = Gauge("screenshots_queue_depth", "Captures accepted and waiting to start.")
BROWSER_RESTARTS = Counter(
    "screenshots_browser_restarts", "Browsers replaced by a new one (crash, deadline, recycling)."
)
BLOCKED_REQUESTS = Counter(
    "screenshots_blocked_requests", "Requests of pages blocked by the egress policy."
)
RESPONSES = Counter(
    "screenshots_api_responses", "HTTP responses of the API by status code.", ["code"]
)
REJECTIONS = Counter(
    "screenshots_api_rejections", "Requests answered 429, by cause.", ["reason"]
)


def observe_row(row: Result | Mapping[str, Any]) -> None:
    """Count one finished capture from its manifest row (a :class:`screenshots.core.result.Result`
    or dict)."""
    get = row.get if isinstance(row, Mapping) else partial(getattr, row)
    engine = str(get("engine", None) or "unknown")
    CAPTURES.labels(status=str(get("status", None) or "unknown"), engine=engine).inc()
    duration = get("duration_ms", None)
    if isinstance(duration, int | float) and duration >= 0:
        CAPTURE_DURATION.labels(engine=engine).observe(duration / 1000)
    blocked = get("blocked_requests", None)
    if isinstance(blocked, int) and not isinstance(blocked, bool) and blocked > 0:
        BLOCKED_REQUESTS.inc(blocked)


def render() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
