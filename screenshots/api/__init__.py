"""The screenshot service over HTTP: ``uvicorn api:app``.

- :mod:`screenshots.api.app`: the application (``create_app``), its start-up and error handling;
- :mod:`screenshots.api.config`: the API's settings (``SCREENSHOT_API_*``);
- :mod:`screenshots.api.auth`, :mod:`screenshots.api.ratelimit`: bearer keys and per-key rate
limits;
- :mod:`screenshots.api.routes`: ``/v1/screenshots``, ``/v1/jobs``, ``/healthz``, ``/readyz``,
``/metrics``;
- :mod:`screenshots.api.backends`: who captures — a pool of browsers here, or Celery workers;
- :mod:`screenshots.api.jobs`, :mod:`screenshots.api.callbacks`: batch jobs and their signed
callbacks;
- :mod:`screenshots.api.web`: the page at ``/``; :mod:`screenshots.api.metrics`: Prometheus metrics;
- :mod:`screenshots.api.worker_metrics`: a Prometheus exporter for Celery workers (a separate
process);
- :mod:`screenshots.dev.bench.apiload`: the load benchmark (``python -m
screenshots.dev.bench.apiload``).

``app`` and ``create_app`` are imported on first use, so ``screenshots-worker-metrics`` or
``api.metrics`` do not load the web framework. See ``docs/api.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from screenshots.api.app import create_app as create_app

    app: FastAPI

__all__ = ["app", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from screenshots.api.app import create_app

        return create_app
    if name == "app":
        from screenshots.api.app import create_app

        built = globals()["app"] = create_app()
        return built
    raise AttributeError(f"module 'api' has no attribute {name!r}")
