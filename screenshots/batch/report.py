"""``report.html``: a gallery of a run that a person can open from disk.

One self-contained page (no network, no framework): a card per row with its thumbnail, URL,
status and the main facts; a status filter, a filter on the comparison with an earlier run
(new, gone, unchanged, changed: :mod:`screenshots.batch.compare`), a search box over URLs and
titles, sorting by input line, capture time, image size, change or look-alike group size; a
click on a card opens a dialog with the full image, the diff image if any, and every column of
the row (page metadata and timings included). Thumbnails load lazily from the thumbnails' links
(relative paths for local storage, so the output directory can be moved).

Look-alike groups (:mod:`screenshots.visual.groups`, hashes at most :data:`GROUP_DISTANCE`
bits apart) are computed when the report is written: each row carries its group's
representative and size, and the page can show one card per group with its size, and hide
the biggest groups (the way a person triages 10,000 hosts: parked domains and default pages
first out of the way).

Every row is in the page (no cut at 5,000 any more): they are written as one JSON block,
streamed row by row so writing a 1M-row report holds one row at a time (plus a hash per row
for the groups), in blocks of :data:`BLOCK_ROWS`; the script renders one page of
:data:`PAGE_SIZE` cards at a time over them, so opening the file costs a ``JSON.parse`` per
block, not a million elements.

The page is rendered from Jinja2 templates in ``templates/`` (``report.html.j2`` inlines
``report.css`` and ``report.js``) with autoescaping on, so every value of a row is text; the
rows reach the script as one JSON block (escaped like Jinja's ``tojson``: no ``<``, ``>``,
``&`` or ``'`` in it). A row's URL becomes a link only if it is an http(s) URL the service
would capture (an error row keeps its raw input line, which may be anything:
``javascript:alert(1)`` is shown, never linked).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from screenshots.batch.manifest import read_results, read_rows
from screenshots.core.errors import InvalidURL
from screenshots.core.result import OK, Result
from screenshots.core.urls import normalize_url
from screenshots.visual.groups import DEFAULT_DISTANCE, Groups, group_rows

REPORT_NAME = "report.html"
#: Cards the page shows at a time.
PAGE_SIZE = 200
#: Rows per JSON block of the page.
BLOCK_ROWS = 50_000
#: Bits two perceptual hashes may differ by in one look-alike group of the report.
GROUP_DISTANCE = DEFAULT_DISTANCE

#: Columns shown in the dialog, in order, with their labels.
DETAILS = (
    ("url", "URL"),
    ("status", "Status"),
    ("error", "Error"),
    ("change", "Change"),
    ("changed_pct", "Changed pixels (%)"),
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
    ("phash", "Perceptual hash"),
    ("group_size", "Look-alikes"),
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
#: Where the rows go in the rendered page (replaced by the streamed rows).
_ROWS_MARK = "\"@@rows@@\""
#: What Jinja's ``tojson`` escapes, so no value can close the script element.
_JSON_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027"))


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


def _src(link: str | None, out_dir: Path) -> str | None:
    """An image link as the page loads it: relative for a file of the output directory."""
    if not link:
        return None
    inside = _file_prefix(out_dir)
    if link.startswith(inside) and "/../" not in link:  # the common case, without parsing
        return "./" + link[len(inside):]
    if link.startswith("file://"):
        path = Path(unquote(urlsplit(link).path))
        try:
            relative = Path(os.path.relpath(path, out_dir)).as_posix()
        except ValueError:
            return link
        # "./" keeps a first path segment with a colon from reading as a scheme
        return relative if relative.startswith("../") else f"./{relative}"
    if urlsplit(link).scheme.lower() not in _IMAGE_SCHEMES:
        return None
    return link


@functools.lru_cache(maxsize=8)
def _file_prefix(out_dir: Path) -> str:
    """The ``file://`` URI prefix of the files of ``out_dir`` (as local storage writes them)."""
    return out_dir.expanduser().resolve().as_uri().rstrip("/") + "/"


def _href(result: Result) -> str | None:
    """:func:`link_target` of the row's URL; an ``ok`` row's URL is already the normalised
    http(s) URL that was captured, so only its scheme is checked."""
    if result.ok and result.url.startswith(("http://", "https://")):
        return result.url
    return link_target(result.url)


def _image_src(result: Result, out_dir: Path) -> str | None:
    return _src(result.link, out_dir) if result.ok else None


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


def page_row(result: Result, out_dir: Path, group: int = -1, group_size: int = 0) -> dict[str, Any]:
    """One row as the page holds it: the dialog's columns, plus what its card shows and how
    it sorts (``href``: the URL as a link, only for http(s); ``src``, ``thumb``, ``diff``:
    image addresses; ``group``: the row number of its look-alike group's representative)."""
    row = _details(result)
    row["group_size"] = group_size or None
    row.update(
        href=_href(result),
        src=_image_src(result, out_dir),
        thumb=_src(result.thumbnail_link, out_dir) if result.ok else None,
        diff=_src(result.diff_link, out_dir),
        duration=result.duration_ms,
        bytes=result.bytes,
        group=group,
    )
    if result.ok:
        size = f"{result.width}×{result.height}, {(result.bytes or 0) / 1024:.0f} KB"
        status = f" · HTTP {result.http_status}" if result.http_status else ""
        row["facts"] = f"{size}{status} · {result.duration_ms} ms"
    elif not result.error:
        row["error"] = "error"
    # Empty columns are left out (a million rows carry only what they have); not the URL.
    kept = {k: v for k, v in row.items() if v is not None and v != "" and v != []}
    kept["url"] = result.url
    return kept


def _json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _JSON_ESCAPES:
        text = text.replace(char, escaped)
    return text


def render_page(
    total: int, ok: int, title: str = "Screenshots", *, changes: dict[str, int] | None = None
) -> tuple[str, str]:
    """The page around its rows: the text before them and after them."""
    data = {"labels": [list(pair) for pair in DETAILS], "pageSize": PAGE_SIZE, "rows": "@@rows@@"}
    page = _TEMPLATES.get_template("report.html.j2").render(
        title=title,
        total=total,
        ok=ok,
        changes=changes or {},
        distance=GROUP_DISTANCE,
        data=data,
    )
    before, after = page.split(_ROWS_MARK, 1)
    return before, after


def _write_rows(out: IO[str], rows: Iterable[dict[str, Any]], after: str) -> None:
    """The rows into the page: the first :data:`BLOCK_ROWS` in the data block, the others in
    more blocks of as many at the end of the body (one JSON text of a 1M-row run would pass
    the longest string a browser's JavaScript holds, about 512M characters)."""
    end = after.rindex("</body>")
    out.write("[")
    blocks = 0
    for n, row in enumerate(rows):
        if n and n % BLOCK_ROWS == 0:
            out.write("]" + after[:end] if blocks == 0 else "]</script>\n")
            out.write('<script type="application/json" class="report-rows">[')
            blocks += 1
        elif n % BLOCK_ROWS:
            out.write(",")
        out.write(_json(row) + "\n")
    out.write("]" + after if blocks == 0 else "]</script>\n" + after[end:])


def render_report(
    rows: list[Result], total: int, ok: int, out_dir: Path, title: str = "Screenshots"
) -> str:
    """The report page of ``rows`` (``total`` results, ``ok`` of them ok), as one string."""
    import io

    found = group_rows([r.phash if r.ok else None for r in rows], GROUP_DISTANCE)
    before, after = render_page(total, ok, title, changes=_changes(rows))
    out = io.StringIO()
    out.write(before)
    _write_rows(out, _page_rows(rows, out_dir, found), after)
    return out.getvalue()


def _page_rows(rows: Iterable[Result], out_dir: Path, found: Groups) -> Iterator[dict[str, Any]]:
    for n, result in enumerate(rows):
        yield page_row(result, out_dir, int(found.representative[n]), int(found.size[n]))


def _changes(rows: Iterable[Result]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if row.change:
            counts[row.change] = counts.get(row.change, 0) + 1
    return counts


def write_report(out_dir: Path, jsonl_path: Path) -> Path:
    """Write ``report.html`` next to the manifest and return its path.

    Two streaming passes over the manifest: the first counts and keeps each row's hash (for
    the groups), the second writes the rows.
    """
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    hashes: list[str | None] = []
    total = ok = 0
    changes: dict[str, int] = {}
    for row in read_rows(jsonl_path):  # plain rows: three columns are read
        total += 1
        is_ok = row.get("status") == OK
        ok += is_ok
        phash = row.get("phash")
        hashes.append(phash if is_ok and isinstance(phash, str) else None)
        change = row.get("change")
        if isinstance(change, str):
            changes[change] = changes.get(change, 0) + 1
    found = group_rows(hashes, GROUP_DISTANCE)
    del hashes
    before, after = render_page(total, ok, changes=changes)
    with tmp.open("w", encoding="utf-8") as out:
        out.write(before)
        _write_rows(out, _page_rows(read_results(jsonl_path), out_dir, found), after)
    os.replace(tmp, path)
    return path
