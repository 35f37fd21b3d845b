"""``report.html``: a gallery of a run that a person can open from disk.

One self-contained page (no network, no framework): a card per row with its thumbnail, URL,
status and the main facts; a status filter, a search box over URLs and titles, sorting by input
line, capture time or image size; a click on a card opens a dialog with the full image and
every column of the row (page metadata and timings included). Thumbnails load lazily from the
screenshots' links (relative paths for local storage, so the output directory can be moved).
Large runs show the first :data:`MAX_ROWS` rows, errors first.

The page is rendered from Jinja2 templates in ``templates/`` (``report.html.j2`` inlines
``report.css`` and ``report.js``) with autoescaping on, so every value of a row is text; the
rows reach the script as one JSON block. A row's URL becomes a link only if it is an http(s)
URL the service would capture (an error row keeps its raw input line, which may be anything:
``javascript:alert(1)`` is shown, never linked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from screenshots.batch.manifest import read_results
from screenshots.core.errors import InvalidURL
from screenshots.core.result import Result
from screenshots.core.urls import normalize_url

REPORT_NAME = "report.html"
#: Rows shown in the report at most; the manifest always has them all.
MAX_ROWS = 5000

#: Columns shown in the dialog, in order, with their labels.
DETAILS = (
    ("url", "URL"),
    ("status", "Status"),
    ("error", "Error"),
    ("http_status", "HTTP status"),
    ("final_url", "Final URL"),
    ("title", "Title"),
    ("content_type", "Content type"),
    ("size", "Image"),
    ("engine", "Engine"),
    ("attempts", "Attempts"),
    ("requests", "Requests"),
    ("failed_requests", "Failed requests"),
    ("blocked_requests", "Blocked requests"),
    ("console_errors", "Console errors"),
    ("console_messages", "Console messages"),
    ("timings", "Timings (ms)"),
    ("finished_at", "Finished"),
    ("line", "Input line"),
    ("key", "Storage key"),
)

#: The report's templates; autoescaping on for everything, so a value is never markup.
_TEMPLATES = Environment(
    loader=PackageLoader("screenshots.batch", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
#: Schemes an image link may have (links come from the storage, never from the input).
_IMAGE_SCHEMES = frozenset({"http", "https", "file"})


def link_target(url: str) -> str | None:
    """Where a row's URL may link to: the http(s) URL it names, or ``None`` (shown as text).

    The check is the one captures pass (:func:`~screenshots.core.urls.normalize_url`), so
    ``javascript:``, ``data:``, mixed-case, white-space-prefixed or entity-encoded lines never
    become links; the link is the normalised URL, the text stays what the row holds.
    """
    try:
        return normalize_url(url)
    except InvalidURL:
        return None


def _image_src(result: Result, out_dir: Path) -> str | None:
    if not result.ok or not result.link:
        return None
    if result.link.startswith("file://"):
        path = Path(unquote(urlsplit(result.link).path))
        try:
            relative = Path(os.path.relpath(path, out_dir)).as_posix()
        except ValueError:
            return result.link
        # "./" keeps a first path segment with a colon from reading as a scheme
        return relative if relative.startswith("../") else f"./{relative}"
    if urlsplit(result.link).scheme.lower() not in _IMAGE_SCHEMES:
        return None
    return result.link


def _timings(result: Result) -> str | None:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("queued", result.queued_ms),
            ("navigation", result.navigation_ms),
            ("wait", result.wait_ms),
            ("capture", result.capture_ms),
            ("upload", result.upload_ms),
            ("total", result.duration_ms),
        )
        if value is not None
    ]
    return ", ".join(parts) or None


def _details(result: Result) -> dict[str, object]:
    """The row as the dialog shows it."""
    row: dict[str, object] = dict(result.to_dict())
    row["console_messages"] = list(result.console_messages)
    if result.width and result.height:
        size = f"{result.width}×{result.height} {result.format or ''}"
        row["size"] = f"{size.strip()}, {(result.bytes or 0) / 1024:.0f} KB"
    row["timings"] = _timings(result)
    return {name: row.get(name) for name, _label in DETAILS}


def _card(result: Result, out_dir: Path) -> dict[str, Any]:
    """What the template shows of a row in its card (all of it text)."""
    facts = []
    if result.ok:
        size = f"{result.width}×{result.height}, {(result.bytes or 0) / 1024:.0f} KB"
        status = f" · HTTP {result.http_status}" if result.http_status else ""
        facts.append(f"{size}{status} · {result.duration_ms} ms")
    search = " ".join(filter(None, (result.url, result.final_url, result.title))).lower()
    return {
        "url": result.url,
        "href": link_target(result.url),
        "status": result.status,
        "line": result.line,
        "duration": "" if result.duration_ms is None else result.duration_ms,
        "bytes": "" if result.bytes is None else result.bytes,
        "search": search,
        "src": _image_src(result, out_dir) or "",
        "facts": facts,
        "title": result.title if result.ok else None,
        "error": None if result.ok else (result.error or "error"),
    }


def pick_rows(jsonl_path: Path, limit: int = MAX_ROWS) -> tuple[list[Result], int, int]:
    """Up to ``limit`` rows (errors first, then ``ok`` ones), the total and the ``ok`` count.

    Two streaming passes over the manifest, so memory is bounded by ``limit``.
    """
    errors: list[Result] = []
    total = ok = 0
    for result in read_results(jsonl_path):
        total += 1
        if result.ok:
            ok += 1
        elif len(errors) < limit:
            errors.append(result)
    oks: list[Result] = []
    room = limit - len(errors)
    if room > 0:
        for result in read_results(jsonl_path):
            if result.ok:
                oks.append(result)
                if len(oks) >= room:
                    break
    rows = sorted(errors, key=lambda r: r.line) + sorted(oks, key=lambda r: r.line)
    return rows, total, ok


def render_report(
    rows: list[Result], total: int, ok: int, out_dir: Path, title: str = "Screenshots"
) -> str:
    """The report page showing ``rows`` out of ``total`` results."""
    note = f" — showing {len(rows)}; see results.jsonl for all" if total > len(rows) else ""
    data = {
        "labels": [list(pair) for pair in DETAILS],
        "rows": [_details(r) for r in rows],
    }
    return _TEMPLATES.get_template("report.html.j2").render(
        title=title,
        total=total,
        ok=ok,
        note=note,
        cards=[_card(r, out_dir) for r in rows],
        data=data,
    )


def write_report(out_dir: Path, jsonl_path: Path) -> Path:
    """Write ``report.html`` next to the manifest and return its path."""
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    rows, total, ok = pick_rows(jsonl_path)
    tmp.write_text(render_report(rows, total, ok, out_dir), encoding="utf-8")
    os.replace(tmp, path)
    return path
