"""``/healthz``, ``/readyz`` and ``/metrics``: for orchestrators and Prometheus, no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from screenshots.api import metrics
from screenshots.api.deps import services

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="The service can take work")
async def readyz(request: Request) -> Response:
    """200 when every check passes (broker or pool, storage, browser or workers), else 503.

    A busy service is still ready: it answers 429 to what it cannot take."""
    backend = services(request).backend
    checks = await backend.readiness()
    ready = all(check.ok for check in checks.values())
    body = {
        "ready": ready,
        "mode": backend.mode,
        "checks": {
            name: {"ok": check.ok, "detail": check.detail, **check.extra}
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
