"""The screenshot service over HTTP: ``uvicorn api:app``.

- :mod:`api.app`: the application (``create_app``), its start-up and error handling;
- :mod:`api.config`: the API's settings (``SCREENSHOT_API_*``);
- :mod:`api.auth`, :mod:`api.ratelimit`: bearer keys and per-key rate limits;
- :mod:`api.routes`: ``/v1/screenshots``, ``/v1/jobs``, ``/healthz``, ``/readyz``, ``/metrics``;
- :mod:`api.backends`: who captures — a pool of browsers here, or Celery workers;
- :mod:`api.jobs`, :mod:`api.callbacks`: batch jobs and their signed callbacks;
- :mod:`api.web`: the page at ``/``; :mod:`api.metrics`: Prometheus metrics;
- :mod:`api.worker_metrics`: a Prometheus exporter for Celery workers (a separate process);
- :mod:`api.loadtest`: the load benchmark (``python -m api.loadtest``).

``app`` and ``create_app`` are imported on first use, so ``python -m api.worker_metrics`` or
``api.metrics`` do not load the web framework. See ``docs/api.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from api.app import create_app as create_app

    app: FastAPI

__all__ = ["app", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.app import create_app

        return create_app
    if name == "app":
        from api.app import create_app

        built = globals()["app"] = create_app()
        return built
    raise AttributeError(f"module 'api' has no attribute {name!r}")
