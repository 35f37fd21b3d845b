"""``/v1/jobs``: a batch of URLs (a JSON list or an uploaded file), its progress and its rows."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from engines import engine_names
from screenshots.api.callbacks import CallbackRefused, check_destination
from screenshots.api.config import DEFAULT_MAX_JOB_URLS
from screenshots.api.deps import Caller, Services, json_body, services
from screenshots.api.errors import ApiError
from screenshots.api.openapi import IMAGE, SIGNED_LINK, errors
from screenshots.api.payloads import (
    JobRequest,
    job_request_schema,
    job_upload_schema,
    parse_callback_url,
    parse_common_options,
    parse_compare,
    parse_engine,
    parse_job,
    parse_upload,
)
from screenshots.api.routes.screenshots import image_or_link

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_SUMMARY = {
    "description": "The job's progress: `state` (`running`, `done`), `total`, `done`, `ok`, "
    "`error`, `results_url`, and the callback's delivery.",
}


def _link(path: str, **parameters: object) -> dict[str, object]:
    """An OpenAPI link from a new job's answer to a ``GET`` of ``path`` (a JSON pointer, so
    clients and fuzzers can follow a job from its creation)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/get",
        "parameters": {"job_id": "$response.body#/id", **parameters},
    }


_CREATED = {
    **_SUMMARY,
    "links": {
        "GetJob": _link("/v1/jobs/{job_id}"),
        "GetJobResults": _link("/v1/jobs/{job_id}/results.jsonl"),
        "GetFirstImage": _link("/v1/jobs/{job_id}/images/{line}", line=1),
    },
}


@router.post(
    "",
    summary="Start a batch job",
    status_code=202,
    responses={202: _CREATED, **errors(413, 415, 422)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    # the limit of the default settings; the served document states the
                    # server's own (screenshots.api.openapi.add_components)
                    "schema": job_request_schema(engine_names(), DEFAULT_MAX_JOB_URLS)
                },
                "multipart/form-data": {"schema": job_upload_schema(engine_names())},
            },
        }
    },
)
async def create_job(request: Request, principal: Caller) -> Response:
    """Capture many URLs: a JSON list, or a file of URLs (one per line) uploaded as `file`.
    Bad URLs become `error` rows of the job. With `callback_url`, the summary is POSTed there
    when the job ends, signed in the `X-Screenshots-Signature` header."""
    current = services(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        parsed = await _from_upload(request, current)
    else:
        parsed = parse_job(
            await json_body(request),
            max_urls=current.config.max_job_urls,
            engines=current.backend.engines(),
            default_engine=current.backend.default_engine,
        )
    if parsed.callback_url is not None:
        try:
            await check_destination(parsed.callback_url, current.config.callback_allow_private)
        except CallbackRefused as exc:
            raise ApiError(422, f"callback_url: {exc}") from None
    job = await current.jobs.create(principal, parsed)
    return JSONResponse(
        job.summary(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


#: Form fields of an upload at most (``file``, ``options``, ``engine``, ``callback_url``...).
MAX_FORM_FIELDS = 8


async def _from_upload(request: Request, current: Services) -> JobRequest:
    try:
        form = await request.form(
            max_files=1, max_fields=MAX_FORM_FIELDS, max_part_size=current.config.max_upload
        )
    except HTTPException as exc:  # Starlette's 400 for a form it cannot decode or that has
        # too many fields or files: a malformed body is a 422, as for JSON (docs/api.md)
        raise ApiError(422, f"the form cannot be read: {exc.detail}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "upload the URL file in a form field named `file`")
        data = await upload.read()
        raw_options = form.get("options")
        try:
            options: Any = json.loads(raw_options) if isinstance(raw_options, str) else {}
        except ValueError as exc:
            raise ApiError(422, f"options must be a JSON object: {exc}") from None
        defaults = parse_common_options(options)
        items = await asyncio.to_thread(
            parse_upload, data, upload.filename or "", defaults,
            max_urls=current.config.max_job_urls,
        )
        engine = form.get("engine")
        callback = form.get("callback_url")
        compare = form.get("compare")
        return JobRequest(
            items=items,
            engine=parse_engine(
                engine if isinstance(engine, str) and engine else None,
                current.backend.engines(),
                current.backend.default_engine,
            ),
            callback_url=parse_callback_url(callback if isinstance(callback, str) else None),
            compare=parse_compare(compare if isinstance(compare, str) else None),
        )
    finally:  # the upload's spooled temporary file, now rather than whenever it is collected
        await form.close()


@router.get("/{job_id}", summary="A job's progress", responses={200: _SUMMARY, **errors(404)})
async def get_job(request: Request, job_id: str, principal: Caller) -> Response:
    job = await services(request).jobs.get(job_id, principal.name)
    return JSONResponse(job.summary())


@router.get(
    "/{job_id}/results.jsonl",
    summary="A job's rows as JSON Lines",
    responses={200: {"content": {"application/x-ndjson": {}}}, **errors(404, 422)},
)
async def get_job_results(
    request: Request,
    job_id: str,
    principal: Caller,
    follow: Annotated[bool, Query(description="Keep streaming rows until the job ends.")] = False,
) -> Response:
    """One manifest row per finished item, in the order they finished."""
    jobs = services(request).jobs
    job = await jobs.get(job_id, principal.name)
    return StreamingResponse(jobs.stream(job, follow), media_type="application/x-ndjson")


@router.get(
    "/{job_id}/images/{line}",
    summary="The image of one row of a job",
    # 422: line is not a number, or its row has no image; 503: storage cannot be read now
    responses={
        200: {"description": "The image.", "content": IMAGE},
        307: SIGNED_LINK,
        **errors(404, 422, 503),
    },
)
async def get_job_image(
    request: Request, job_id: str, line: int, principal: Caller
) -> Response:
    current = services(request)
    job = await current.jobs.get(job_id, principal.name)
    row = await current.jobs.row(job.id, line)
    if row is None:
        raise ApiError(404, f"line {line} of job {job_id} has no row yet")
    if not row.ok or not row.key:
        raise ApiError(422, f"line {line} has no image: {row.error}")
    return await image_or_link(current.backend, row.key, row.format)
