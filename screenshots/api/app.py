"""The ASGI application: ``create_app()`` builds it, ``api.app`` (``uvicorn api:app``) is one.

Configuration is read when the server starts (the ASGI lifespan), not at import: importing
``api`` needs no environment. At start-up the settings (:mod:`screenshots.core.settings`,
:mod:`screenshots.api.config`)
pick the back end — Celery workers when ``CELERY_BROKER_URL`` is set, a pool of browsers in
this process otherwise — and a bad setting stops the server with one line naming it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Scope

from screenshots.api import metrics
from screenshots.api.auth import KeyRing
from screenshots.api.backends import create_backend
from screenshots.api.backends.base import Backend
from screenshots.api.config import ApiConfig, load_api_config
from screenshots.api.deps import Services
from screenshots.api.errors import ApiError, Busy
from screenshots.api.jobs import JobManager
from screenshots.api.jobstore import JobStore, MemoryJobStore, RedisJobStore
from screenshots.api.middleware import (
    AuthFailureMiddleware,
    BodyLimitMiddleware,
    ResponseCountMiddleware,
    StartupErrorMiddleware,
)
from screenshots.api.openapi import add_components, add_docs
from screenshots.api.ratelimit import RateLimiter, limit_storage_uri, open_storage
from screenshots.api.routes import jobs, screenshots, system
from screenshots.api.web import add_web_page
from screenshots.core.settings import Settings, load_settings

log = logging.getLogger("api")

DESCRIPTION = """Screenshots of web pages over HTTP.

Authenticate with `Authorization: Bearer <key>`. `POST /v1/screenshots` takes one URL
(200 with the result within `wait` seconds, else 202 and `GET /v1/screenshots/{id}`);
`POST /v1/jobs` takes many. When there is no capacity the answer is 429 with `Retry-After`.
See docs/api.md in the repository for the details.
"""


def create_app(
    config: ApiConfig | None = None,
    backend: Backend | None = None,
    settings: Settings | None = None,
    *,
    job_poll_interval: float = 0.2,
) -> FastAPI:
    """The API. Whatever is not given is built from the environment at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current_config = config or load_api_config()
        current_settings = settings or load_settings()
        current_backend = backend or create_backend(current_config, current_settings)
        await current_backend.start()
        # Broker mode: counted in Redis, one limit for every replica; else in this process.
        counters = open_storage(limit_storage_uri(current_settings))
        app.state.auth_failures = RateLimiter(
            current_config.auth_failure_rate,
            current_config.auth_failure_burst,
            counters,
            kind="address",
            reason="auth_failures",
        )
        app.state.services = Services(
            config=current_config,
            backend=current_backend,
            keys=KeyRing(current_config.keys),
            limiter=RateLimiter(current_config.rate, current_config.burst, counters),
            jobs=JobManager(
                current_backend,
                current_config,
                store=job_store(current_backend, current_config),
                poll_interval=job_poll_interval,
            ),
        )
        await app.state.services.jobs.start()
        log.info("screenshots API ready: %r", current_backend)
        try:
            yield
        finally:
            await app.state.services.jobs.close()
            await current_backend.close()

    app = FastAPI(
        title="Screenshots API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(AuthFailureMiddleware, limiter_for=auth_failure_limiter)
    app.add_middleware(ResponseCountMiddleware)
    app.add_middleware(StartupErrorMiddleware)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.include_router(screenshots.router)
    app.include_router(jobs.router)
    app.include_router(system.router)
    add_web_page(app)
    add_docs(app)
    add_components(app)
    return app


def job_store(backend: Backend, config: ApiConfig) -> JobStore:
    """Broker mode: jobs in the result backend's Redis, shared by every replica; else here."""
    if backend.mode == "celery":
        from screenshots.api.backends.celery import CeleryBackend

        assert isinstance(backend, CeleryBackend)
        return RedisJobStore(backend.redis, config.result_ttl)
    return MemoryJobStore(config.result_ttl)


def body_limit(scope: Scope) -> tuple[int, str] | None:
    """The body limit of a request: the upload limit for jobs, the body limit otherwise."""
    state = getattr(scope.get("app"), "state", None)
    current: Services | None = getattr(state, "services", None)
    if current is None:
        return None
    if scope["path"].startswith("/v1/jobs"):
        return current.config.max_upload, "SCREENSHOT_API_MAX_UPLOAD"
    return current.config.max_body, "SCREENSHOT_API_MAX_BODY"


def auth_failure_limiter(scope: Scope) -> RateLimiter | None:
    """The limiter of failed authentications, once the server has started."""
    state = getattr(scope.get("app"), "state", None)
    found: RateLimiter | None = getattr(state, "auth_failures", None)
    return found


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if isinstance(exc, Busy):
        metrics.REJECTIONS.labels(reason=exc.reason).inc()
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    """422 for a request nested deeper than Python's parsers go (``[[[[…`` in a JSON body):
    the only recursion a request drives is the parsing and checking of what it sent."""
    return JSONResponse({"detail": "the request is nested too deeply"}, status_code=422)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    ]
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)
