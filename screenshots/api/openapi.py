"""Pieces of the OpenAPI document that the routes share, and the interactive docs page.

The request schemas are built from the capture options' declaration at import time, with the
default limits; the served document states the running server's own (``wait``, the URLs of a
job), read from its configuration when the document is first asked for.

The docs page is Swagger UI served from the ``swagger-ui-py`` package's files, so it works
without reaching a CDN; without that package, FastAPI's CDN-based page is used.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from screenshots.core.options import CONTENT_TYPES
from screenshots.core.result import Result

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

#: An image answer: one of the capture formats' media types.
IMAGE: dict[str, Any] = {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in sorted(set(CONTENT_TYPES.values()))
}

#: 202 from a screenshot's endpoints: not done yet.
NOT_DONE: dict[str, Any] = {
    "description": "Accepted, not done yet: `{id, state}` (`queued` or `running`); "
    "`Location` is where to look again.",
    "headers": {
        "Location": {"schema": {"type": "string"}},
        "Retry-After": {"schema": {"type": "integer"}},
    },
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["id", "state"],
                "properties": {
                    "id": {"type": "string"},
                    "state": {"type": "string", "enum": ["queued", "running"]},
                },
            }
        }
    },
}

#: 307 from the image endpoints when the image is in a bucket: a freshly signed link to it.
SIGNED_LINK: dict[str, Any] = {
    "description": "The image is in the bucket: `Location` is a link to it, signed now for "
    "the caller (valid for the bucket's link expiry), so a link never goes stale.",
    "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
}

#: 422 for an image asked of a capture that failed: the detail and the error row.
FAILED_CAPTURE: dict[str, Any] = {
    "description": "The body is wrong (`detail` says how); or, when the image is asked for, "
    "the capture failed: `{detail, result}` with the error row.",
    "content": _ERROR,
}

#: The error answers of the authenticated routes; each route documents those it gives
#: (:func:`errors`), and tests/test_api_statuses.py makes the server give each of them.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid `Authorization: Bearer <key>`.", "content": _ERROR},
    404: {"description": "No such id for this key.", "content": _ERROR},
    413: {"description": "The body is too large.", "content": _ERROR},
    415: {"description": "The body is not JSON (or a form upload for jobs).", "content": _ERROR},
    422: {"description": "The request is wrong: `detail` says how.", "content": _ERROR},
    503: {
        "description": "The server is shutting down, or the image cannot be read from "
        "storage now: retry later.",
        "content": _ERROR,
    },
    429: {
        "description": (
            "Rate limit, too many failed authentications from this address, full pool or "
            "full queue: retry after `Retry-After` seconds."
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": _ERROR,
    },
}


#: What every authenticated route may answer: no key, or too many requests.
_ALWAYS = (401, 429)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route: 401 and 429, and ``statuses``."""
    return {status: ERRORS[status] for status in sorted({*_ALWAYS, *statuses})}


@cache
def result_schema() -> dict[str, Any]:
    """JSON Schema of a manifest row (:class:`screenshots.core.result.Result`) plus its ``id``."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Result).json_schema()
    schema.setdefault("properties", {})["id"] = {"type": "string"}
    schema["title"] = "Result"
    return schema


def add_components(app: FastAPI) -> None:
    """Register the shared ``Error`` schema in the generated document, and state the limits
    of the running server's configuration in the request schemas."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            drop_generated_422(schema)
            services = getattr(app.state, "services", None)
            if services is not None:
                state_limits(schema, services.config.max_wait, services.config.max_job_urls)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Error"] = {
                "type": "object",
                "required": ["detail"],
                "properties": {"detail": {"type": "string"}},
            }
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def drop_generated_422(schema: dict[str, Any]) -> None:
    """Remove the 422 FastAPI adds to every route with parameters (its ``HTTPValidationError``
    body, which this API never sends: its 422 is ``{"detail": "<text>"}``). A route that can
    answer 422 documents it itself."""
    generated = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            body = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if body.get("$ref") == generated:
                del operation["responses"]["422"]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def state_limits(schema: dict[str, Any], max_wait: float, max_job_urls: int) -> None:
    """Set the longest ``wait`` and the most URLs of a job in the document's request bodies,
    and the longest ``wait`` of the long polls' query."""
    paths = schema.get("paths", {})
    for operations in paths.values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and parameter.get("name") == "wait":
                    parameter["schema"] = {**parameter.get("schema", {}), "maximum": max_wait}
    for path, field, limit, value in (
        ("/v1/screenshots", "wait", "maximum", max_wait),
        ("/v1/jobs", "urls", "maxItems", max_job_urls),
    ):
        body = paths.get(path, {}).get("post", {}).get("requestBody", {})
        json_schema = body.get("content", {}).get("application/json", {}).get("schema", {})
        properties = json_schema.get("properties", {})
        if field in properties:
            properties[field] = {**properties[field], limit: value}


def swagger_assets() -> Path | None:
    """The directory of Swagger UI's files, if the ``swagger-ui-py`` package is installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI over ``/openapi.json``, with local files when available."""
    assets = swagger_assets()
    if assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
        js, css = "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"
    else:  # pragma: no cover - FastAPI's defaults (a CDN)
        js = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
        css = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Screenshots API",
            swagger_js_url=js,
            swagger_css_url=css,
            swagger_favicon_url="/static/favicon.svg",
        )
