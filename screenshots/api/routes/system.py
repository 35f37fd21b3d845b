"""``/healthz``, ``/readyz`` and ``/metrics``: for orchestrators and Prometheus, no key needed.

``/readyz`` answers anyone who can reach it, so what it says is scrubbed of server paths (a
storage directory, a browser binary): the back ends' check details name them for the logs, and
the answer shows ``<path>`` instead.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from screenshots.api import metrics
from screenshots.api.deps import services

log = logging.getLogger("api")

router = APIRouter(tags=["operations"])

#: What ``/readyz`` says about the mode's scope, by back end.
SCOPES = {
    "pool": "one process by design",
    "celery": "replicas share the broker and the result backend",
}

#: A ``file://`` URI or an absolute POSIX path (``/x/y``, not a URL's path after a host).
_PATH = re.compile(r"file://\S*|(?<![\w.:/-])/[\w.-]+(?:/[\w.-]*)*")


def without_paths(text: str) -> str:
    """``text`` with every absolute server path or ``file://`` URI shown as ``<path>``."""
    return _PATH.sub("<path>", text)


#: These answer without a key: the document must not claim one (its default is the bearer key).
NO_KEY: dict[str, object] = {"security": []}


@router.get("/healthz", summary="The process is alive", openapi_extra=NO_KEY)
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The service can take work",
    openapi_extra=NO_KEY,
    responses={503: {"description": "Not ready: the same body, with the failing checks."}},
)
async def readyz(request: Request) -> Response:
    """200 when every check passes (broker or pool, storage, browser or workers), else 503.

    A busy service is still ready: it answers 429 to what it cannot take. ``scope`` says
    whether replicas of this process share work (broker mode) or not (broker-less mode: one
    process by design)."""
    backend = services(request).backend
    checks = await backend.readiness()
    ready = all(check.ok for check in checks.values())
    failing = {name: check.detail for name, check in checks.items() if not check.ok}
    if failing:
        log.warning("not ready: %s", failing)
    body = {
        "ready": ready,
        "mode": backend.mode,
        "scope": SCOPES.get(backend.mode, "unknown"),
        "checks": {
            name: {"ok": check.ok, "detail": without_paths(check.detail), **check.extra}
            for name, check in checks.items()
        },
        "capacity": backend.capacity(),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    capacity = services(request).backend.capacity()
    if "queued" in capacity:
        metrics.QUEUE_DEPTH.set(capacity["queued"])
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
