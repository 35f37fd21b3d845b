"""The manifest of a run: ``results.jsonl`` (written as results arrive) and ``results.csv``.

Every input line gets exactly one row. Rows are appended and flushed one by one, so a run
that is killed leaves a valid manifest of what it finished. Opening an existing output
directory *resumes* it: ``ok`` rows are kept (and their URLs are not shot again), ``error``
rows are dropped so those lines are tried again, and a torn last line is discarded.

Memory is a few bytes per input line (an array indexed by line number), never a row.
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from screenshots.core.result import COLUMNS, Result

JSONL_NAME = "results.jsonl"
CSV_NAME = "results.csv"


def _fingerprint(url: str) -> int:
    """A non-zero 33-bit number identifying ``url`` (0 means "no row yet")."""
    return zlib.crc32(url.encode("utf-8")) + 1


class LineMarks:
    """One number per input line, growing as needed: 8 bytes a line."""

    def __init__(self) -> None:
        self._marks = array("Q")

    def get(self, line: int) -> int:
        return self._marks[line] if line < len(self._marks) else 0

    def set(self, line: int, value: int) -> None:
        if line >= len(self._marks):
            self._marks.extend([0] * (line + 1 - len(self._marks) + 1024))
        self._marks[line] = value


class Manifest:
    """Append-only manifest in ``out_dir``; see the module docstring."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.jsonl_path = out_dir / JSONL_NAME
        self.csv_path = out_dir / CSV_NAME
        self._done = LineMarks()  # lines with a row in the file, by URL fingerprint
        self._kept_ok = 0
        self._stale = 0
        self._file: IO[str] | None = None

    # -- opening and resuming --------------------------------------------------------------

    def open(self) -> int:
        """Open for appending, keeping the ``ok`` rows of a previous run. Returns their count."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.jsonl_path.exists():
            self._kept_ok = self._compact()
        self._file = self.jsonl_path.open("a", encoding="utf-8")
        return self._kept_ok

    def _compact(self) -> int:
        """Rewrite the file with only its ``ok`` rows (first one per line); return their count."""

        def keep(row: dict[str, object]) -> bool:
            line = row.get("line")
            if row.get("status") != "ok" or not isinstance(line, int) or self._done.get(line):
                return False
            self._done.set(line, _fingerprint(str(row.get("url", ""))))
            return True

        return self._rewrite(keep)

    def _rewrite(self, keep: Callable[[dict[str, object]], bool]) -> int:
        """Atomically rewrite the file with the rows ``keep`` accepts; return their count."""
        tmp = self.jsonl_path.with_suffix(".jsonl.tmp")
        kept = 0
        with tmp.open("w", encoding="utf-8") as out:
            for row in read_rows(self.jsonl_path):
                if keep(row):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    kept += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.jsonl_path)
        return kept

    @property
    def kept_ok(self) -> int:
        """How many ``ok`` rows were carried over from a previous run."""
        return self._kept_ok

    def is_done(self, line: int, url: str) -> bool:
        """Whether ``line`` already has a row for this ``url``."""
        return self._done.get(line) == _fingerprint(url)

    def has_row(self, line: int) -> bool:
        return self._done.get(line) != 0

    # -- writing ---------------------------------------------------------------------------

    def write(self, result: Result) -> bool:
        """Append ``result`` unless its line already has a row; return whether it was written."""
        if self._file is None:
            raise RuntimeError("Manifest.open() was not called")
        fingerprint = _fingerprint(result.url)
        existing = self._done.get(result.line)
        if existing == fingerprint:
            return False
        if existing:  # a row of an earlier run, for what this line said then
            self._stale += 1
        self._done.set(result.line, fingerprint)
        self._file.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()
        return True

    def close(self) -> None:
        """Flush and close; drop rows that a changed input line made stale."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        if self._stale:
            self._rewrite(self._is_current)
            self._stale = 0

    def _is_current(self, row: dict[str, object]) -> bool:
        line = row.get("line")
        if not isinstance(line, int):
            return False
        return self._done.get(line) == _fingerprint(str(row.get("url", "")))

    def write_csv(self) -> None:
        """Write ``results.csv`` from ``results.jsonl``, same columns, streaming."""
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
            writer.writeheader()
            for row in read_rows(self.jsonl_path):
                writer.writerow({k: _csv_value(row.get(k)) for k in COLUMNS})
        os.replace(tmp, self.csv_path)


#: First characters that make a spreadsheet read a cell as a formula (CSV injection): a page
#: title or an error row's input line such as ``=HYPERLINK(...)`` would run when the CSV is
#: opened. Such text cells get a leading ``'``, as OWASP's CSV-injection advice says.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: object) -> object:
    """A CSV cell: empty for None, JSON for lists and objects, text that a spreadsheet would take
    for a formula quoted with ``'``, the value otherwise (numbers stay numbers)."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def read_rows(path: Path) -> Iterator[dict[str, object]]:
    """The rows of a JSONL manifest, skipping lines that do not parse (a torn last write)."""
    if not path.exists():
        return
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for text in handle:
            try:
                row = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                yield row


def read_results(path: Path) -> Iterator[Result]:
    """The rows of a JSONL manifest as :class:`Result` objects."""
    for row in read_rows(path):
        try:
            yield Result.from_dict(dict(row))
        except TypeError:
            continue
