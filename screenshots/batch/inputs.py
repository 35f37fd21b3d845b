"""Read a URL file as a stream of work: one :class:`~screenshots.core.shot.Shot` or error row per
URL record.

Three formats, told apart by the file's extension (``.jsonl``/``.ndjson``, ``.csv``) or, for
any other name, by its first line that is not blank or a comment:

- **text**: one URL per line;
- **JSON Lines**: one object per line, ``{"url": "...", "width": 800, "block": ["ads"]}``
  (a first line starting with ``{``);
- **CSV**: a header naming a ``url`` column and any option columns, then one row per URL
  (a first line whose first cell is ``url``). Cells hold loose values (``true``,
  ``400-599``, ``0,0,300,200`` quoted, JSON lists and objects); an empty cell means "not
  given".

A row's options are laid over the defaults given to :func:`read_shots` (the command line's) by
:meth:`~screenshots.core.options.CaptureOptions.merged`: which names a row may hold, how each
loose value is read and what it must be all come from the options' one declaration
(:mod:`screenshots.core.options.model`), as for the flags and the API.
In every format blank lines and lines starting with ``#`` are skipped, and the row id is the
line number where the record starts. A record that is not an acceptable URL, or that names an
unknown option or a bad value, becomes an ``error`` row naming the problem, never an
exception; the text an error row shows of a bad record is always valid Unicode (a lone
surrogate from a JSON ``\\ud800`` is shown escaped). A file that cannot be read as records at
all (a CSV the ``csv`` module cannot parse, such as one with bare CR line ends) is an
:class:`InputError` naming the line: the dispatcher's one-line error, the API's 422. The file is
read line by line, so memory does not grow with its length.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from screenshots.core.errors import InvalidOption, InvalidURL
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result, error_result
from screenshots.core.shot import Shot
from screenshots.core.urls import normalize_url

#: Longest line read whole; anything longer is an error row (and is not kept in memory).
MAX_LINE_BYTES = 64 * 1024
#: The input formats.
FORMATS = ("text", "jsonl", "csv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: Longest text of a bad record shown in its error row.
MAX_SHOWN = 2100


class InputError(ValueError):
    """The file cannot be read as URL records at all (not one bad record: those are rows)."""


def format_for_name(name: str) -> str | None:
    """The format a file name's extension selects (``.jsonl``, ``.ndjson``, ``.csv``), if any.

    Only the extension is looked at: the name may come from an upload and is never used as a
    path.
    """
    _stem, dot, extension = name.rpartition(".")
    return _EXTENSIONS.get(f".{extension.lower()}") if dot else None


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, with what is not valid Unicode (lone surrogates)
    escaped, so an error row can always be written as UTF-8 and JSON."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def text_problem(value: Any) -> str | None:
    """Why ``value`` (parsed JSON: text, lists, objects) is not valid Unicode text, or ``None``.

    JSON's ``\\ud800`` escapes decode to lone surrogates, which no UTF-8 writer, browser or
    JSON answer takes: they are refused with the other bad values, before any option sees them.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = item[exc.start]
                return f"{shown(item, 80)!r} contains {bad!r}, a lone surrogate: not text"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return None


def detect_format(path: Path, kind: str | None = None) -> str:
    """``text``, ``jsonl`` or ``csv``: ``kind`` if given, by extension, else by the first
    meaningful line."""
    by_name = kind or _EXTENSIONS.get(path.suffix.lower())
    if by_name:
        return by_name
    with path.open("rb") as handle:
        for raw in _lines(handle):
            if raw is None:
                return "text"
            text = raw.decode("utf-8", "replace").strip().lstrip("\ufeff").strip()
            if not text or text.startswith("#"):
                continue
            if text.startswith("{"):
                return "jsonl"
            try:
                first = next(csv.reader([text]), [""])
            except csv.Error:  # a bare CR, for instance: not a CSV header
                return "text"
            if first and first[0].strip().lower() == "url" and (len(first) > 1 or "," in text):
                return "csv"
            return "text"
    return "text"


def read_shots(
    path: Path, options: CaptureOptions, kind: str | None = None
) -> Iterator[Shot | Result]:
    """Yield a :class:`Shot` for each URL record of ``path`` and an error row for each bad one.

    ``options`` are the defaults; a JSON Lines or CSV row overrides them. ``kind`` (one of
    :data:`FORMATS`) overrides the format's detection. :class:`InputError` if the file cannot
    be read as records.
    """
    kind = detect_format(path, kind)
    with path.open("rb") as handle:
        if kind == "csv":
            yield from _read_csv(handle, options)
            return
        for number, raw in enumerate(_lines(handle), start=1):
            item = parse_line(number, raw, options, kind)
            if item is not None:
                yield item


def parse_line(
    number: int, raw: bytes | None, options: CaptureOptions, kind: str = "text"
) -> Shot | Result | None:
    """Turn line ``number`` into a shot, an error row, or ``None`` for blanks and comments.

    ``raw`` is ``None`` for a line that was too long to read; ``kind`` is ``text`` or
    ``jsonl``.
    """
    if raw is None:
        return error_result(number, "", f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError:
        return error_result(
            number, raw[:200].decode("utf-8", "replace").strip(), "line is not valid UTF-8"
        )
    if not text or text.startswith("#"):
        return None
    if kind == "jsonl":
        return _json_record(number, text, options)
    return make_shot(number, text, options, {})


def make_shot(
    number: int, text: str, defaults: CaptureOptions, overrides: dict[str, Any]
) -> Shot | Result:
    """A shot of URL ``text`` with ``overrides`` over ``defaults``, or the error row saying why."""
    try:
        url = normalize_url(text)
    except InvalidURL as exc:
        return error_result(number, shown(text), exc.message)
    try:
        options = defaults.merged(overrides) if overrides else defaults
    except InvalidOption as exc:
        return error_result(number, url, exc.message)
    return Shot(line=number, url=url, options=options, queued_at=time.time())


def _json_record(number: int, text: str, defaults: CaptureOptions) -> Shot | Result:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return error_result(number, shown(text, 200), f"line is not valid JSON ({exc.msg})")
    except ValueError:  # a number too long to convert, for instance
        return error_result(number, shown(text, 200), "line is not valid JSON")
    except RecursionError:  # [[[[… deeper than the parser's stack
        return error_result(number, shown(text, 200), "line is nested too deeply")
    if not isinstance(record, dict):
        return error_result(number, shown(text, 200), "line is not a JSON object")
    problem = text_problem(record)
    if problem is not None:
        return error_result(number, shown(text, 200), problem)
    url = record.pop("url", None)
    if not isinstance(url, str) or not url.strip():
        return error_result(number, shown(text, 200), 'the object has no "url" text')
    return make_shot(number, url.strip(), defaults, record)


def _read_csv(handle: BinaryIO, defaults: CaptureOptions) -> Iterator[Shot | Result]:
    header: list[str] | None = None
    url_index = -1
    for number, cells in _csv_records(handle):
        if cells is None:
            yield error_result(number, "", f"line is longer than {MAX_LINE_BYTES} bytes")
            continue
        if header is None:
            header = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
            lowered = [name.lower() for name in header]
            url_index = lowered.index("url") if "url" in lowered else -1
            continue
        if url_index < 0:
            yield error_result(number, cells[0][:200], "the CSV header has no 'url' column")
            continue
        if len(cells) > len(header):
            yield error_result(
                number, cells[0][:200], f"the row has {len(cells)} cells, the header {len(header)}"
            )
            continue
        url = cells[url_index].strip() if url_index < len(cells) else ""
        overrides = {
            header[i]: cells[i] for i in range(len(cells)) if i != url_index and header[i]
        }
        if not url:
            yield error_result(number, "", "the row has no url")
            continue
        yield make_shot(number, url, defaults, overrides)


def _csv_records(handle: BinaryIO) -> Iterator[tuple[int, list[str] | None]]:
    """``(first line number, cells)`` of each CSV record that is not blank or a comment.

    A quoted cell may span lines; the record's number is the line it starts on. ``cells``
    is ``None`` for an over-long line.
    """
    state = {"line": 0}
    long_lines: list[int] = []

    def decoded() -> Iterator[str]:
        for raw in _lines(handle):
            state["line"] += 1
            if raw is None:
                long_lines.append(state["line"])
                yield ""
                continue
            yield raw.decode("utf-8", "replace") + "\n"

    reader = csv.reader(decoded())
    start = 1
    for cells in _csv_rows(reader, state):
        if long_lines:
            for line in long_lines:
                yield line, None
            long_lines.clear()
            start = state["line"] + 1
            continue
        number, start = start, state["line"] + 1
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        yield number, cells


def _csv_rows(reader: Iterator[list[str]], state: dict[str, int]) -> Iterator[list[str]]:
    """The reader's rows; its :class:`csv.Error` (a bare CR outside quotes, an over-long
    field) is an :class:`InputError` naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _unreadable_csv(state["line"], exc)


def _unreadable_csv(line: int, exc: csv.Error) -> NoReturn:
    raise InputError(f"line {line}: not readable as CSV ({exc})") from None


def count_lines(path: Path) -> int:
    """Number of URL records (lines, or CSV rows) in ``path``, in a streaming pass.

    It is the number of items :func:`read_shots` yields.
    """
    kind = detect_format(path)
    total = 0
    with path.open("rb") as handle:
        if kind == "csv":
            header_seen = False
            for _number, cells in _csv_records(handle):
                if cells is not None and not header_seen:
                    header_seen = True
                    continue
                total += 1
            return total
        for raw in _lines(handle):
            if raw is None or _is_record(raw):
                total += 1
    return total


def _is_record(raw: bytes) -> bool:
    """Whether a line is a record, as :func:`parse_line` tells (not blank, not a comment)."""
    try:
        text = raw.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError:  # an error row
        return True
    return bool(text) and not text.startswith("#")


def _lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """Lines of a binary file without their end; ``None`` in place of an over-long line."""
    readline = handle.readline
    while True:
        raw: bytes = readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the long line
                raw = readline(MAX_LINE_BYTES)
            yield None
            continue
        yield raw.rstrip(b"\r\n")
