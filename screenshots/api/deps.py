"""What every route needs: the running services, the caller, and the request's JSON body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from screenshots.api.auth import KeyRing, Principal
from screenshots.api.backends.base import Backend
from screenshots.api.config import ApiConfig
from screenshots.api.errors import ApiError
from screenshots.api.jobs import JobManager
from screenshots.api.ratelimit import RateLimiter


@dataclass
class Services:
    """Everything the API runs on, built at start-up (see
    :func:`screenshots.api.app.create_app`)."""

    config: ApiConfig
    backend: Backend
    keys: KeyRing
    limiter: RateLimiter
    jobs: JobManager


def services(request: Request) -> Services:
    found: Services | None = getattr(request.app.state, "services", None)
    if found is None:  # pragma: no cover - a request before start-up finished
        raise ApiError(503, "the API is starting")
    return found


async def caller(request: Request) -> Principal:
    """The authenticated caller (401 otherwise), charged one token of its rate limit (429)."""
    current = services(request)
    principal = current.keys.authenticate(request.headers, request.query_params)
    current.limiter.take(principal.name)
    return principal


#: A route parameter for the authenticated, rate-limited caller.
Caller = Annotated[Principal, Depends(caller)]


async def json_body(request: Request) -> Any:
    """The request's JSON body: 415 if it is not JSON, 422 if it does not parse."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, f"send the body as application/json, not {kind or 'no content type'}")
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser goes: bad input, not a server fault
        raise ApiError(422, "the body is nested too deeply") from None


def wants_image(request: Request) -> bool:
    """Whether the client asked for the image itself (``Accept: image/*``, ``image/png``...)."""
    return "image/" in request.headers.get("accept", "")
