"""Request bodies: parsed by hand into shots, with a message for every mistake.

Capture options are whatever :class:`screenshots.core.options.CaptureOptions` accepts, checked by
:meth:`~screenshots.core.options.CaptureOptions.from_dict`, so a new option works in the API the
day it is declared there; the request schemas of the OpenAPI document are built from the same
declaration (types, defaults, bounds, help), with the limits the server enforces. Bad input in
a single request is a 422 naming the field; in a batch job, a bad URL or row becomes an
``error`` row of the job, as a bad line does in the dispatcher.

Everything here is untrusted: text that is not valid Unicode (JSON's lone ``\\ud800``) is a
422 before any option sees it, an uploaded file's name only selects its format by extension
(it is never a path), and a file that cannot be read as records is a 422 naming the line.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from screenshots.api.errors import ApiError
from screenshots.batch.inputs import (
    InputError,
    format_for_name,
    make_shot,
    read_shots,
    shown,
    text_problem,
)
from screenshots.core.errors import InvalidOption, InvalidURL
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result, error_result
from screenshots.core.shot import Shot
from screenshots.core.urls import MAX_URL_LENGTH, normalize_url

#: Top-level fields of ``POST /v1/screenshots`` that are not capture options.
SCREENSHOT_FIELDS = ("url", "wait", "engine")
#: Top-level fields of a JSON ``POST /v1/jobs``.
#: A job id as the API makes them (a UUID).
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JOB_FIELDS = ("urls", "options", "engine", "callback_url", "compare")
#: The header names an option may not set (``Host`` and ``Content-Length`` are the browser's,
#: cookies go in ``cookies``), as a JSON Schema regular expression (ECMA-262: no ``(?i)``).
_RESERVED_HEADERS = "^([Hh][Oo][Ss][Tt]|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]|" \
    "[Cc][Oo][Oo][Kk][Ii][Ee])$"
#: The text form of the options that also take a list: ``"x,y,width,height"``.
_TEXT_FORMS = {"clip": r"^\s*\d{1,6}\s*,\s*\d{1,6}\s*,\s*\d{1,6}\s*,\s*\d{1,6}\s*$"}
#: An HTTP token: a header or cookie name.
_TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"


@dataclass(frozen=True)
class ScreenshotRequest:
    """A parsed ``POST /v1/screenshots``."""

    shot: Shot
    wait: float
    engine: str


@dataclass(frozen=True)
class JobRequest:
    """A parsed ``POST /v1/jobs``: a shot or an error row per input item, in order."""

    items: list[Shot | Result]
    engine: str
    callback_url: str | None
    #: An earlier job of the same key to compare each URL's new image with.
    compare: str | None = None


def parse_screenshot(
    body: Any, *, max_wait: float, engines: Sequence[str], default_engine: str
) -> ScreenshotRequest:
    """``{"url": ..., "wait": s, "engine": name, <options>}`` → :class:`ScreenshotRequest`."""
    if not isinstance(body, dict):
        raise ApiError(422, 'the body must be a JSON object such as {"url": "https://example.com/"}')
    check_text(body, "the body")
    values = dict(body)
    if "url" not in values:
        raise ApiError(422, "url is required")
    url = parse_url(values.pop("url"), "url")
    wait = parse_wait(values.pop("wait", 0), max_wait)
    engine = parse_engine(values.pop("engine", None), engines, default_engine)
    options = parse_options(values, "")
    shot = Shot(line=1, url=url, options=options, queued_at=time.time())
    return ScreenshotRequest(shot, wait, engine)


def parse_job(
    body: Any, *, max_urls: int, engines: Sequence[str], default_engine: str
) -> JobRequest:
    """``{"urls": [...], "options": {...}, "engine": ..., "callback_url": ...}``."""
    if not isinstance(body, dict):
        raise ApiError(422, 'the body must be a JSON object such as {"urls": ["https://a.example/"]}')
    check_text(body, "the body")
    unknown = sorted(set(body) - set(JOB_FIELDS))
    if unknown:
        raise ApiError(422, f"unknown field {unknown[0]!r}: expected {', '.join(JOB_FIELDS)}")
    urls = body.get("urls")
    if not isinstance(urls, list) or not urls:
        raise ApiError(422, "urls must be a non-empty list of URLs or {\"url\": ...} objects")
    if len(urls) > max_urls:
        raise ApiError(
            422,
            f"a job holds at most {max_urls} URLs (SCREENSHOT_API_MAX_JOB_URLS), not {len(urls)}",
        )
    defaults = parse_common_options(body.get("options"))
    items = [_item(line, entry, defaults) for line, entry in enumerate(urls, start=1)]
    return JobRequest(
        items=items,
        engine=parse_engine(body.get("engine"), engines, default_engine),
        callback_url=parse_callback_url(body.get("callback_url")),
        compare=parse_compare(body.get("compare")),
    )


def parse_compare(value: Any) -> str | None:
    """``compare``: the id of an earlier job (whether it exists is checked by the job store)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _JOB_ID.fullmatch(value):
        raise ApiError(422, "compare must be the id of an earlier job of this key")
    return value


def parse_upload(
    data: bytes, filename: str, defaults: CaptureOptions, *, max_urls: int
) -> list[Shot | Result]:
    """The items of an uploaded URL file, read as the dispatcher reads its input file: text
    (one URL per line), JSON Lines or CSV with option columns (see :mod:`screenshots.batch.inputs`).

    Runs in a worker thread: it writes the file to a temporary directory under a fixed name
    and reads it with :func:`screenshots.batch.inputs.read_shots`, in the format the upload's
    extension selects (the name is untrusted: it is never part of a path), else by content.
    """
    items: list[Shot | Result] = []
    with tempfile.TemporaryDirectory(prefix="screenshots-upload-") as directory:
        path = Path(directory) / "upload"
        path.write_bytes(data)
        try:
            for item in read_shots(path, defaults, format_for_name(filename)):
                items.append(item)
                if len(items) > max_urls:
                    raise ApiError(
                        422,
                        f"a job holds at most {max_urls} URLs (SCREENSHOT_API_MAX_JOB_URLS); "
                        "the file has more",
                    )
        except InputError as exc:
            raise ApiError(422, f"file: {exc}") from None
    if not items:
        raise ApiError(422, "the file holds no URL (one per line; # starts a comment)")
    return items


def check_text(value: Any, where: str) -> None:
    """422 if parsed JSON holds text that is not valid Unicode (a lone surrogate)."""
    problem = text_problem(value)
    if problem is not None:
        raise ApiError(422, f"{where}: {problem}")


def parse_url(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise ApiError(422, f"{name} is longer than {MAX_URL_LENGTH} characters")
    try:
        return normalize_url(value)
    except InvalidURL as exc:
        raise ApiError(422, f"{name}: {exc.message}") from None


def parse_wait(value: Any, max_wait: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(422, "wait must be a number of seconds")
    if not 0 <= value <= max_wait:
        raise ApiError(
            422, f"wait must be between 0 and {max_wait:g} seconds (SCREENSHOT_API_MAX_WAIT)"
        )
    return float(value)


def parse_engine(value: Any, engines: Sequence[str], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in engines:
        raise ApiError(422, f"engine must be one of {', '.join(engines)}, not {value!r}")
    return value


def parse_options(values: Mapping[str, Any], prefix: str) -> CaptureOptions:
    """Capture options from a mapping; a 422 names the first bad one."""
    problem = shape_problem(values)
    if problem is not None:
        raise ApiError(422, f"{prefix}{problem}")
    try:
        return CaptureOptions.from_dict(values)
    except InvalidOption as exc:
        raise ApiError(422, f"{prefix}{exc.message}" if prefix else exc.message) from None
    except TypeError as exc:  # a constructor that rejects a value's type outright
        raise ApiError(422, f"invalid options: {exc}") from None


def parse_common_options(value: Any) -> CaptureOptions:
    """A job's ``options``: the defaults each row's own options are laid over."""
    if value is None:
        return CaptureOptions()
    if not isinstance(value, dict):
        raise ApiError(422, "options must be an object of capture options")
    check_text(value, "options")
    return parse_options(value, "options: ")


def parse_callback_url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return parse_url(value, "callback_url")


def _item(line: int, entry: Any, defaults: CaptureOptions) -> Shot | Result:
    """A job's item: a URL, or ``{"url": ..., <options>}`` laid over the job's options."""
    if isinstance(entry, str):
        return make_shot(line, entry.strip(), defaults, {})
    if isinstance(entry, dict) and isinstance(entry.get("url"), str):
        own = dict(entry)
        url = str(own.pop("url")).strip()
        problem = shape_problem(own)
        if problem is not None:
            return error_result(line, shown(url), problem)
        return make_shot(line, url, defaults, own)
    return error_result(
        line, shown(str(entry), 200), 'each item must be a URL or an object with a "url"'
    )


def shape_problem(values: Mapping[str, Any]) -> str | None:
    """Why an option's value is an object where the schema allows none, or ``None``.

    The options' own checks read lists loosely (any iterable), so ``{}`` would pass as an
    empty list; the API's JSON is held to the document's types here.
    """
    allowed = _json_types()
    for name, value in values.items():
        if isinstance(value, dict) and name in allowed and "object" not in allowed[name]:
            return f"{name} must be {' or '.join(sorted(allowed[name] - {'null'}))}, not an object"
    return None


@cache
def _json_types() -> dict[str, frozenset[str]]:
    """The JSON types each option's schema allows."""
    types: dict[str, frozenset[str]] = {}
    for name, schema in options_schema().items():
        found: set[str] = set()
        for part in (schema, *schema.get("anyOf", ())):
            kind = part.get("type")
            found.update(kind if isinstance(kind, list) else [kind] if kind else [])
        types[name] = frozenset(found)
    return types


# -- OpenAPI -----------------------------------------------------------------------------


def options_schema() -> dict[str, Any]:
    """JSON Schema properties of the capture options, from their declaration
    (:mod:`screenshots.core.options.model`): type, default, bounds and help of each."""
    properties = CaptureOptions.model_json_schema()["properties"]
    for name, schema in properties.items():
        schema.pop("title", None)
        if name in ("headers", "cookies"):
            _name_value_schema(schema, name)
        for part in schema.get("anyOf", ()):
            if name in _TEXT_FORMS and part.get("type") == "string":
                part["pattern"] = _TEXT_FORMS[name]
        _allow_not_given(schema)
    return dict(properties)


#: What a value may be to mean "not given" (the default applies), as JSON Schemas.
NOT_GIVEN = ({"type": "string", "maxLength": 0}, {"type": "null"})


def _allow_not_given(schema: dict[str, Any]) -> None:
    """Let ``schema`` take null and ``""``: they mean "not given" (the default applies), for
    every option, as an empty CSV cell does.

    A single type becomes a list with ``string`` and ``null`` and ``maxLength: 0`` (bounds
    such as ``minimum`` apply only to their own type, so they stay where they are); an enum
    gets ``""`` and ``null``; an ``anyOf`` gets both alternatives.
    """
    if "anyOf" in schema:
        schema["anyOf"].extend(part for part in NOT_GIVEN if part not in schema["anyOf"])
    elif "enum" in schema:
        schema["enum"] = [*schema["enum"], "", None]
        schema["type"] = [schema["type"], "null"]
    elif schema.get("type") != "string":
        schema["type"] = [schema["type"], "string", "null"]
        schema["maxLength"] = 0


def _name_value_schema(schema: dict[str, Any], name: str) -> None:
    """``headers``/``cookies``: an object of names (HTTP tokens) to one-line text, as
    docs/api.md describes them (the server also takes ``[[name, value], ...]``)."""
    schema["default"] = {}
    schema["propertyNames"] = {"pattern": _TOKEN}
    if name == "headers":
        schema["propertyNames"]["not"] = {"pattern": _RESERVED_HEADERS}
        schema["additionalProperties"] = {"type": "string", "pattern": "^[^\\r\\n]*$"}
    else:
        schema["additionalProperties"] = {"type": "string", "pattern": "^[^;\\r\\n]*$"}


def screenshot_request_schema(engines: Sequence[str], max_wait: float) -> dict[str, Any]:
    """``POST /v1/screenshots``: a URL, ``wait`` up to ``max_wait`` and the options."""
    return {
        "type": "object",
        "required": ["url"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH},
            "wait": {
                "type": "number",
                "minimum": 0,
                "maximum": max_wait,
                "default": 0,
                "description": "Seconds to wait for the result: 200 with it if done by then, "
                "else 202 with its id.",
            },
            "engine": {"type": "string", "enum": list(engines)},
            **options_schema(),
        },
        "example": {"url": "https://example.com/", "width": 1280, "height": 800, "wait": 30},
    }


def job_request_schema(engines: Sequence[str], max_urls: int) -> dict[str, Any]:
    """``POST /v1/jobs`` as JSON: up to ``max_urls`` URLs or rows, and the job's options."""
    row = {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string"}, **options_schema()},
    }
    # any other item, or a row with an unknown option, is not a refusal: it becomes an error
    # row of the job (as a bad line of a URL file does)
    other = {"description": "Anything else: an `error` row of the job, saying why."}
    return {
        "type": "object",
        "required": ["urls"],
        "additionalProperties": False,
        "properties": {
            "urls": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_urls,
                "items": {"anyOf": [{"type": "string"}, row, other]},
                "description": "URLs, or objects with a url and options overriding `options`; "
                "a bad item is an `error` row of the job.",
            },
            "options": {
                "type": "object",
                "additionalProperties": False,
                "properties": options_schema(),
            },
            "engine": {"type": "string", "enum": list(engines)},
            "callback_url": {
                "anyOf": [{"type": "string", "format": "uri"}, *NOT_GIVEN],
                "description": "Receives the job's summary when it ends, signed (see docs).",
            },
            "compare": {
                "anyOf": [{"type": "string", "pattern": _JOB_ID.pattern}, *NOT_GIVEN],
                "description": "The id of an earlier job of this key: each row gets `change`, "
                "`changed_pct` and `diff_link` against that job's row of the same URL, and the "
                "callback lists the URLs changed above their `changed_above`.",
            },
        },
        "example": {
            "urls": ["https://example.com/", {"url": "https://example.org/", "full_page": True}],
            "options": {"width": 1024, "height": 768},
        },
    }


def job_upload_schema(engines: Sequence[str]) -> dict[str, Any]:
    """``POST /v1/jobs`` as a form: the URL file and the job's fields as text (empty: not
    given)."""
    empty = {"type": "string", "maxLength": 0}
    return {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "One URL per line."},
            "options": {"type": "string", "description": "Capture options as a JSON object."},
            "engine": {"anyOf": [{"type": "string", "enum": list(engines)}, empty]},
            "callback_url": {"anyOf": [{"type": "string", "format": "uri"}, empty]},
            "compare": {"anyOf": [{"type": "string", "pattern": _JOB_ID.pattern}, empty]},
        },
    }
