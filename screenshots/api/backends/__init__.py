"""Capture back ends of the API, picked from the settings by :func:`create_backend`.

- :mod:`screenshots.api.backends.pool`: broker-less, a bounded pool of browsers in the API process
  (when ``CELERY_BROKER_URL`` is unset);
- :mod:`screenshots.api.backends.celery`: Celery tasks on the workers' queue, with a high-water mark
  (when ``CELERY_BROKER_URL`` is set).
"""

from __future__ import annotations

import dataclasses
import os

from engines import Engine, create_engine, engine_names
from screenshots.api.backends.base import Backend, Check, Status
from screenshots.api.config import ApiConfig
from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import Settings
from screenshots.storage import create_storage

__all__ = ["Backend", "Check", "Status", "browser_problem", "create_backend"]


def create_backend(config: ApiConfig, settings: Settings) -> Backend:
    """The back end the settings ask for. Raises
    :class:`~screenshots.core.errors.ConfigurationError`."""
    if settings.distributed:
        missing = settings.missing_result_backend()
        if missing:
            raise ConfigurationError(missing)
        if not settings.bucket:
            raise ConfigurationError(
                "SCREENSHOT_BUCKET is required with CELERY_BROKER_URL: workers store "
                "screenshots in S3 and the API reads them from there"
            )
        from screenshots.api.backends.celery import CeleryBackend

        return CeleryBackend(
            settings,
            create_storage(settings, None),
            high_water=config.high_water,
            result_ttl=config.result_ttl,
        )
    from screenshots.api.backends.pool import PoolBackend

    name = settings.engine
    if name not in engine_names():
        choices = ", ".join(engine_names())
        raise ConfigurationError(f"SCREENSHOT_ENGINE {name!r} is unknown: choose one of {choices}")

    # The pool's tab threads share one engine when it takes several captures at once
    # (screenshots.pipeline.threadengines): give it as many tabs as the pool has.
    engine_settings = dataclasses.replace(settings, tabs=config.tabs)

    def engine_factory() -> Engine:
        return create_engine(name, engine_settings)

    return PoolBackend(
        engine_factory,
        name,
        create_storage(settings, config.storage_dir),
        tabs=config.tabs,
        wait_queue=config.wait_queue,
        uploads=config.uploads,
        key_prefix=settings.key_prefix,
        max_attempts=settings.max_attempts,
        result_ttl=config.result_ttl,
        browser_probe=None if name == "stub" else lambda: browser_problem(settings),
    )


def browser_problem(settings: Settings) -> str | None:
    """Why no browser can start here (missing binary), or ``None``."""
    path = settings.chromium_path
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return f"chromium not found at {path} (SCREENSHOT_CHROMIUM)"
    return None
