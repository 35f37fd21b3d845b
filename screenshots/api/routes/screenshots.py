"""``/v1/screenshots``: one URL, answered at once if it is captured within ``wait``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from engines import engine_names
from screenshots.api.auth import Principal
from screenshots.api.backends.base import Backend, Status
from screenshots.api.config import DEFAULT_MAX_WAIT
from screenshots.api.deps import Caller, json_body, services, wants_image
from screenshots.api.errors import ApiError, not_found
from screenshots.api.openapi import (
    FAILED_CAPTURE,
    IMAGE,
    NOT_DONE,
    SIGNED_LINK,
    errors,
    result_schema,
)
from screenshots.api.payloads import parse_screenshot, parse_wait, screenshot_request_schema
from screenshots.core.errors import StorageUnavailable
from screenshots.core.options import CONTENT_TYPES

router = APIRouter(prefix="/v1/screenshots", tags=["screenshots"])

_DONE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Done: the manifest row (status `ok` or `error`) with its `id`; "
        "with `Accept: image/*`, the image itself.",
        "content": {"application/json": {"schema": result_schema()}, **IMAGE},
    },
    202: NOT_DONE,
}


@router.post(
    "",
    summary="Take a screenshot",
    # 503: shutting down, or (Accept: image/*) the image cannot be read now
    responses={**_DONE, **errors(413, 415, 422, 503), 422: FAILED_CAPTURE},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": screenshot_request_schema(engine_names(), DEFAULT_MAX_WAIT)
                }
            },
        }
    },
)
async def create_screenshot(
    request: Request, principal: Caller
) -> Response:
    """Capture `url` with the given options. Answers 200 with the row when the capture
    finishes within `wait` seconds (default 0), else 202 with its id. 429 with `Retry-After`
    when there is no capacity now."""
    current = services(request)
    backend = current.backend
    parsed = parse_screenshot(
        await json_body(request),
        max_wait=current.config.max_wait,
        engines=backend.engines(),
        default_engine=backend.default_engine,
    )
    ident = await backend.submit(parsed.shot, owner=principal.name, engine=parsed.engine)
    status = await backend.wait(ident, parsed.wait)
    if status is None:  # pragma: no cover - expired between submit and wait
        raise not_found("screenshot", ident)
    return await answer(backend, status, wants_image(request))


@router.get(
    "/{ident}",
    summary="A screenshot's result or state",
    responses={**_DONE, **errors(404, 422, 503), 422: FAILED_CAPTURE},
)
async def get_screenshot(
    request: Request,
    ident: str,
    principal: Caller,
    wait: Annotated[
        float,
        Query(
            description="Seconds to wait for the result (at most SCREENSHOT_API_MAX_WAIT).",
            json_schema_extra={"minimum": 0, "maximum": DEFAULT_MAX_WAIT},
        ),
    ] = 0,
) -> Response:
    """200 with the row once there is one, 202 with the state (`queued`, `running`) before."""
    current = services(request)
    wait = parse_wait(wait, current.config.max_wait)
    status = await _owned(current.backend, ident, principal, wait)
    return await answer(current.backend, status, wants_image(request))


@router.get(
    "/{ident}/image",
    summary="A screenshot's image",
    responses={
        200: {"description": "The image.", "content": IMAGE},
        202: NOT_DONE,
        307: SIGNED_LINK,
        **errors(404, 422, 503),
        422: FAILED_CAPTURE,
    },
)
async def get_screenshot_image(
    request: Request, ident: str, principal: Caller
) -> Response:
    """The image: a redirect (307) to a link signed now when it is in a bucket, else its
    bytes; 202 while not done, 422 if the capture failed."""
    status = await _owned(services(request).backend, ident, principal, 0)
    return await answer(services(request).backend, status, image=True, redirect=True)


async def _owned(backend: Backend, ident: str, principal: Principal, wait: float) -> Status:
    (status,) = await backend.lookup([ident])
    if status is None or status.owner != principal.name:
        raise not_found("screenshot", ident)
    if wait > 0 and not status.done:
        status = await backend.wait(ident, wait) or status
    return status


async def answer(
    backend: Backend, status: Status, image: bool, *, redirect: bool = False
) -> Response:
    """The HTTP answer for a capture's status: 202, 200 JSON, 200 image, or 422."""
    if not status.done or status.result is None:
        return JSONResponse(
            {"id": status.id, "state": status.state},
            status_code=202,
            headers={"Location": f"/v1/screenshots/{status.id}", "Retry-After": "1"},
        )
    row = status.result
    if not image:
        return JSONResponse({"id": status.id, **row.to_dict()})
    if not row.ok or not row.key:
        return JSONResponse(
            {"detail": f"the capture failed: {row.error}", "result": row.to_dict()},
            status_code=422,
        )
    if redirect:
        return await image_or_link(backend, row.key, row.format)
    return await image_response(backend, row.key, row.format)


async def image_or_link(backend: Backend, key: str, image_format: str | None) -> Response:
    """307 to a link of the image signed now, when storage gives web links; else the bytes."""
    try:
        link = await backend.image_link(key)
    except KeyError:
        raise ApiError(404, "the image is no longer stored") from None
    except StorageUnavailable as exc:
        raise ApiError(503, f"the image cannot be read now: {exc.message}") from None
    if link is None:
        return await image_response(backend, key, image_format)
    return RedirectResponse(link, status_code=307, headers={"Cache-Control": "no-store"})


async def image_response(backend: Backend, key: str, image_format: str | None) -> Response:
    try:
        data = await backend.read_image(key)
    except KeyError:
        raise ApiError(404, "the image is no longer stored") from None
    except StorageUnavailable as exc:
        raise ApiError(503, f"the image cannot be read now: {exc.message}") from None
    media = CONTENT_TYPES.get(image_format or "png", "application/octet-stream")
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
