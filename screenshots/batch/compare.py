"""Run against run: each URL of a run is ``new``, ``gone``, ``unchanged`` or ``changed``
compared with an earlier run, with the changed share of pixels and a diff image.

``python dispatcher.py urls.txt --out run2/ --compare run1/`` does it at the end of a run;
``screenshots-compare run1/ run2/`` (:func:`main`) over two existing output directories. URLs
are matched by their (normalised) URL, not their line. The manifest of the newer run is
rewritten with the ``change``, ``changed_pct`` and ``diff_link`` columns filled, plus a row
for each ``gone`` URL (status ``error``, its line in the earlier run), so the report and
scripts see every URL of both runs. A URL whose change is above its ``changed_above``
threshold is an alert: a line of ``OUT/changes.jsonl``.

Each run's images are read through the storage of its own output directory (or the bucket):
the shot's version key first (:func:`screenshots.core.keys.version_key`, which a later run of
the same URL does not overwrite), its deterministic key otherwise. The diff image is stored
beside the newer image (:func:`screenshots.core.keys.diff_key`). Images are compared in a
thread pool, a bounded window of rows at a time, so memory does not grow with the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import UnidentifiedImageError

from screenshots.batch.manifest import JSONL_NAME, read_results
from screenshots.core.keys import diff_key
from screenshots.core.options import CaptureOptions
from screenshots.core.result import ERROR, Result
from screenshots.storage.base import Storage
from screenshots.visual import diff as pixel_diff
from screenshots.visual.hashing import open_image
from screenshots.visual.regions import scaled

CHANGES_NAME = "changes.jsonl"
NEW, GONE, UNCHANGED, CHANGED = "new", "gone", "unchanged", "changed"
#: ``changed_above`` when no option says otherwise (percent).
DEFAULT_CHANGED_ABOVE = 0.1
#: Rows compared at a time.
WINDOW = 256


@dataclass(frozen=True)
class Rules:
    """How one URL is compared: its ``ignore`` rectangles (CSS pixels), its threshold and the
    device scale of its images."""

    ignore: tuple[str, ...] = ()
    changed_above: float = DEFAULT_CHANGED_ABOVE
    scale: float = 1.0


@dataclass
class Summary:
    """What a comparison found."""

    counts: dict[str, int]
    #: URLs above their threshold (the lines of ``changes.jsonl``).
    alerts: int = 0


@dataclass(frozen=True)
class Earlier:
    """What the earlier run has of a URL: its line there, its image's key and link."""

    line: int
    key: str | None
    link: str | None
    #: The ``ignore`` selectors' rectangles measured when the earlier image was taken.
    ignored_regions: tuple[str, ...] = ()


def image_key(row: Result) -> str | None:
    """The key that holds this row's own image: its version, else its deterministic key."""
    return row.version_key or row.key


def earlier_rows(path: Path) -> dict[str, Earlier]:
    """URL → what the earlier run has of it (its ``ok`` rows; first row per URL)."""
    rows: dict[str, Earlier] = {}
    for row in read_results(path):
        if row.ok and row.url not in rows:
            rows[row.url] = Earlier(row.line, image_key(row), row.link, row.ignored_regions)
    return rows


class Comparer:
    """Compares rows of the newer run with the images of the earlier one."""

    def __init__(
        self, earlier: Storage, later: Storage, rules_for: Callable[[Result], Rules]
    ) -> None:
        self.earlier = earlier
        self.later = later
        self.rules_for = rules_for

    def compare(self, row: Result, before: Earlier | None) -> Result:
        """``row`` with its change columns filled (``before``: the earlier run's row)."""
        if before is None:
            return replace(row, change=NEW, changed_pct=None, diff_link=None)
        if not row.ok:
            return replace(row, change=None, changed_pct=None, diff_link=None)
        after_key = image_key(row)
        if after_key is None or before.key is None:
            return replace(row, change=NEW)
        rules = self.rules_for(row)
        if after_key == before.key:  # reused: the very same stored image
            return replace(row, change=UNCHANGED, changed_pct=0.0, diff_link=None)
        try:
            old_bytes = self.earlier.read(before.key)
            new_bytes = self.later.read(after_key)
        except KeyError:  # the earlier image was deleted (lifecycle rule): nothing to compare
            return replace(row, change=NEW, changed_pct=None, diff_link=None)
        if old_bytes == new_bytes:
            return replace(row, change=UNCHANGED, changed_pct=0.0, diff_link=None)
        try:
            old_image, new_image = open_image(old_bytes), open_image(new_bytes)
        except (UnidentifiedImageError, OSError, ValueError):
            return replace(row, change=CHANGED, changed_pct=100.0, diff_link=None)
        # The option's rectangles, and its selectors as measured in both runs' pages: an
        # element that moved is left out where it was and where it is.
        measured = (*row.ignored_regions, *before.ignored_regions)
        regions = scaled((*rules.ignore, *measured), rules.scale)
        found = pixel_diff.diff_images(old_image, new_image, regions)
        link = None
        if found.changed_pct > 0:
            key = diff_key(after_key)
            self.later.put(key, found.image_png(new_image, regions), pixel_diff.CONTENT_TYPE)
            link = self.later.link(key)
        state = CHANGED if found.changed_pct > rules.changed_above else UNCHANGED
        return replace(row, change=state, changed_pct=found.changed_pct, diff_link=link)


def gone_row(url: str, before: Earlier) -> Result:
    """The row of a URL the earlier run had and this one does not."""
    return Result(
        line=before.line, url=url, status=ERROR, error="gone: not in this run's input",
        change=GONE, key=before.key, link=before.link,
    )


def compare_rows(
    rows: Iterable[Result],
    earlier: dict[str, Earlier],
    comparer: Comparer,
    *,
    workers: int = 4,
) -> Iterator[Result]:
    """The rows of the newer run compared (in order), then a row per ``gone`` URL.

    ``earlier`` is consumed: what is left of it at the end is gone.
    """
    seen: set[str] = set()

    def one(row: Result) -> Result:
        return comparer.compare(row, earlier.get(row.url))

    fresh = (row for row in rows if row.change != GONE)
    with ThreadPoolExecutor(workers) as pool:
        while window := list(itertools.islice(fresh, WINDOW)):
            for row in pool.map(one, window):
                seen.add(row.url)
                yield row
    for url, before in earlier.items():
        if url not in seen:
            yield gone_row(url, before)


def alert_of(row: Result, rules: Rules) -> dict[str, object]:
    """The ``changes.jsonl`` line of a changed row."""
    return {
        "url": row.url, "line": row.line, "changed_pct": row.changed_pct,
        "changed_above": rules.changed_above, "link": row.link, "diff_link": row.diff_link,
    }


def compare_runs(
    earlier_dir: Path,
    later_dir: Path,
    comparer: Comparer,
    *,
    workers: int = 4,
) -> Summary:
    """Compare ``later_dir``'s manifest with ``earlier_dir``'s: rewrite it with the change
    columns and the ``gone`` rows, and write ``later_dir/changes.jsonl``."""
    earlier = earlier_rows(earlier_dir / JSONL_NAME)
    manifest = later_dir / JSONL_NAME
    summary = Summary({NEW: 0, GONE: 0, UNCHANGED: 0, CHANGED: 0})
    tmp = manifest.with_suffix(".jsonl.tmp")
    changes_tmp = later_dir / (CHANGES_NAME + ".tmp")
    with tmp.open("w", encoding="utf-8") as out, changes_tmp.open("w", encoding="utf-8") as alerts:
        for row in compare_rows(read_results(manifest), earlier, comparer, workers=workers):
            if row.change is not None:
                summary.counts[row.change] += 1
            out.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
            if row.change == CHANGED:
                alerts.write(json.dumps(alert_of(row, comparer.rules_for(row))) + "\n")
                summary.alerts += 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, manifest)
    os.replace(changes_tmp, later_dir / CHANGES_NAME)
    return summary


def rules_by_line(lines: Mapping[int, Rules], default: Rules) -> Callable[[Result], Rules]:
    """The rules of a row: its input line's (per-URL options), else ``default``."""
    return lambda row: lines.get(row.line, default)


def rules_of(options: CaptureOptions) -> Rules:
    """The comparison rules that ``options`` give."""
    return Rules(options.ignore, options.changed_above, options.scale)


def rules_from_urls(urls: Path, options: CaptureOptions) -> Callable[[Result], Rules]:
    """The rules of each row of a run of the URL file ``urls`` (its rows' own ``ignore`` and
    ``changed_above``; ``options`` for the others). Only the lines that differ are kept."""
    from screenshots.batch.inputs import read_shots

    default = rules_of(options)
    lines: dict[int, Rules] = {}
    for item in read_shots(urls, options):
        if not isinstance(item, Result):
            rules = rules_of(item.options)
            if rules != default:
                lines[item.line] = rules
    return rules_by_line(lines, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="screenshots-compare",
        description="Compare two runs: each URL new, gone, unchanged or changed.",
        epilog="Settings (SCREENSHOT_BUCKET...) come from the environment; see README.md.",
    )
    parser.add_argument("earlier", type=Path, help="output directory of the earlier run")
    parser.add_argument("later", type=Path, help="output directory of the later run (rewritten)")
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="X,Y,W,H",
        help="a region to leave out, in CSS pixels (repeatable)",
    )
    parser.add_argument(
        "--changed-above", type=float, default=DEFAULT_CHANGED_ABOVE, metavar="PERCENT",
        help="changed pixels (percent) above which a URL is changed (default 0.1)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="device scale of the shots")
    parser.add_argument(
        "--urls", type=Path, default=None,
        help="the later run's URL file: its rows' own ignore and changed_above apply",
    )
    parser.add_argument("--quiet", action="store_true", help="no summary")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from screenshots.batch.report import write_report
    from screenshots.core.errors import InvalidOption
    from screenshots.core.settings import load_settings
    from screenshots.storage import create_storage

    args = build_parser().parse_args(argv)
    try:
        options = CaptureOptions.from_dict(
            {"ignore": args.ignore, "changed_above": args.changed_above, "scale": args.scale}
        )
    except InvalidOption as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    for directory in (args.earlier, args.later):
        if not (directory / JSONL_NAME).is_file():
            print(f"error: {directory} has no {JSONL_NAME}", file=sys.stderr)
            return 2
    settings = load_settings()
    if args.urls is not None:
        rules = rules_from_urls(args.urls, options)
    else:
        rules = rules_by_line({}, rules_of(options))
    comparer = Comparer(
        create_storage(settings, args.earlier), create_storage(settings, args.later), rules
    )
    summary = compare_runs(args.earlier, args.later, comparer)
    write_csv_and_report(args.later, write_report)
    if not args.quiet:
        print(summary_text(summary), file=sys.stderr)
    return 0


def write_csv_and_report(out_dir: Path, write_report: Callable[[Path, Path], Path]) -> None:
    """Rewrite ``results.csv`` and ``report.html`` of ``out_dir`` from its manifest."""
    from screenshots.batch.manifest import Manifest

    Manifest(out_dir).write_csv()
    write_report(out_dir, out_dir / JSONL_NAME)


def summary_text(summary: Summary) -> str:
    counts = ", ".join(f"{count} {state}" for state, count in summary.counts.items())
    return f"compared: {counts}; {summary.alerts} above their threshold ({CHANGES_NAME})"


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
