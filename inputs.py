"""Read a URL file as a stream of work: one :class:`~shots.Shot` or error row per URL line.

One URL per line; blank lines and lines starting with ``#`` are skipped. A line that is not an
acceptable URL becomes an ``error`` row, never an exception. The file is read line by line,
so memory does not grow with its length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from errors import InvalidURL
from options import CaptureOptions
from results import Result, error_result
from shots import Shot
from urls import normalize_url

#: Longest line read whole; anything longer is an error row (and is not kept in memory).
MAX_LINE_BYTES = 64 * 1024


def read_shots(path: Path, options: CaptureOptions) -> Iterator[Shot | Result]:
    """Yield a :class:`Shot` for each URL line of ``path`` and an error row for each bad one."""
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            item = parse_line(number, raw, options)
            if item is not None:
                yield item


def parse_line(number: int, raw: bytes | None, options: CaptureOptions) -> Shot | Result | None:
    """Turn line ``number`` into a shot, an error row, or ``None`` for blanks and comments.

    ``raw`` is ``None`` for a line that was too long to read.
    """
    if raw is None:
        return error_result(number, "", f"line is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8").strip().lstrip("\ufeff")
    except UnicodeDecodeError:
        shown = raw[:200].decode("utf-8", "replace").strip()
        return error_result(number, shown, "line is not valid UTF-8")
    if not text or text.startswith("#"):
        return None
    try:
        url = normalize_url(text)
    except InvalidURL as exc:
        return error_result(number, text[:2100], exc.message)
    return Shot(line=number, url=url, options=options)


def count_lines(path: Path) -> int:
    """Number of URL lines (not blank, not comments) in ``path``, read in a streaming pass."""
    total = 0
    with path.open("rb") as handle:
        for raw in _lines(handle):
            if raw is None:
                total += 1
                continue
            stripped = raw.strip()
            if stripped and not stripped.startswith(b"#") and stripped != b"\xef\xbb\xbf":
                total += 1
    return total


def _lines(handle: object) -> Iterator[bytes | None]:
    """Lines of a binary file without their end; ``None`` in place of an over-long line."""
    readline = handle.readline  # type: ignore[attr-defined]
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
