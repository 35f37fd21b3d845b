"""``screenshots-resign OUT/``: fresh links for the manifest and report of an existing run.

Presigned links expire (``SCREENSHOT_LINK_EXPIRY``, 7 days by default), and with them an old
``results.jsonl``, ``results.csv`` and ``report.html``. This command shoots nothing: for every
``ok`` row stored in S3 it checks that the object is still there and asks the storage for a new
link (:meth:`~screenshots.storage.base.Storage.link`, with the same ``AWS_*`` and
``SCREENSHOT_*`` settings as the dispatcher), then rewrites the manifest atomically (a new
file renamed over the old one, so a reader never sees half of it), the CSV and the report.

- A row whose object is gone becomes an ``error`` row saying so, so running the dispatcher
  again on the same ``--out`` shoots that line again (a resumed run keeps only ``ok`` rows).
- Rows of local storage (``file://``) are left as they are: they need no signing, and the
  report links them by relative path.
- The bucket is the one each row's ``storage_uri`` names (``s3://bucket/key``): that is where
  the object is, whatever ``SCREENSHOT_BUCKET`` says today.

Do not run it while a dispatcher writes to the same directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from screenshots.batch.manifest import JSONL_NAME, Manifest, read_rows
from screenshots.batch.report import write_report
from screenshots.core.errors import ConfigurationError, StorageUnavailable
from screenshots.core.keys import diff_key, thumbnail_key
from screenshots.core.result import ERROR, OK
from screenshots.core.settings import Settings, load_settings
from screenshots.storage import Storage, create_storage

#: Rows checked and signed at once (S3 ``HEAD`` requests in flight).
WORKERS = 16
#: Rows read ahead of the writer: memory stays bounded whatever the manifest's size.
CHUNK = 512

Row = dict[str, object]


@dataclass
class Outcome:
    """What a re-signing did, row by row."""

    resigned: int = 0
    gone: int = 0
    local: int = 0
    #: Error rows and rows without a stored image: nothing to sign.
    untouched: int = 0


class Resigner:
    """Signs rows of the buckets they name, with one storage per bucket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._storages: dict[str, Storage] = {}

    def storage(self, bucket: str) -> Storage:
        if bucket not in self._storages:
            self._storages[bucket] = create_storage(
                dataclasses.replace(self.settings, bucket=bucket), None
            )
        return self._storages[bucket]

    def kind(self, row: Row) -> str:
        """``s3``, ``local`` or ``none`` (nothing to sign) for ``row``."""
        uri = row.get("storage_uri")
        if row.get("status") != OK or not isinstance(uri, str):
            return "none"
        if uri.startswith("s3://"):
            return "s3"
        if uri.startswith("file://"):
            return "local"
        return "none"

    def resign(self, row: Row) -> tuple[Row, bool]:
        """``row`` with a fresh link, or turned into an error row if its object is gone;
        and whether the object is still there."""
        uri = str(row["storage_uri"])
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        storage = self.storage(bucket)
        if not storage.exists(key):
            return {
                **row,
                "status": ERROR,
                "storage_uri": None,
                "link": None,
                "error": f"the image is no longer in storage ({uri}): run the dispatcher "
                "again on this output directory to shoot it again",
            }, False
        fresh: Row = {**row, "link": storage.link(key)}
        # The thumbnail and the diff image beside it: their links expire the same way.
        if row.get("thumbnail_link"):
            fresh["thumbnail_link"] = storage.link(thumbnail_key(key))
        version = row.get("version_key")
        if row.get("diff_link"):
            image = version if isinstance(version, str) else key
            fresh["diff_link"] = storage.link(diff_key(image))
        return fresh, True


def resign_run(out_dir: Path, settings: Settings) -> Outcome:
    """Re-sign the links of the run in ``out_dir``; rewrite its manifest, CSV and report.

    Raises :class:`~screenshots.core.errors.StorageUnavailable` or
    :class:`~screenshots.core.errors.ConfigurationError` (the manifest is then left as it was).
    """
    jsonl = out_dir / JSONL_NAME
    outcome = Outcome()
    resigner = Resigner(settings)
    if not any(resigner.kind(row) == "s3" for row in read_rows(jsonl)):
        for row in read_rows(jsonl):
            if resigner.kind(row) == "local":
                outcome.local += 1
            else:
                outcome.untouched += 1
        return outcome
    tmp = jsonl.with_suffix(".jsonl.resign.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out, ThreadPoolExecutor(WORKERS) as pool:
            for row in _signed(read_rows(jsonl), resigner, pool, outcome):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, jsonl)
    finally:
        tmp.unlink(missing_ok=True)
    Manifest(out_dir).write_csv()
    write_report(out_dir, jsonl)
    return outcome


def _signed(
    rows: Iterator[Row], resigner: Resigner, pool: ThreadPoolExecutor, outcome: Outcome
) -> Iterator[Row]:
    """``rows`` in order, the S3 ones re-signed ``CHUNK`` at a time on ``pool``."""
    while chunk := list(islice(rows, CHUNK)):
        kinds = [resigner.kind(row) for row in chunk]
        stored = [row for row, kind in zip(chunk, kinds, strict=True) if kind == "s3"]
        signed = iter(pool.map(resigner.resign, stored))
        for row, kind in zip(chunk, kinds, strict=True):
            if kind == "s3":
                row, present = next(signed)
                if present:
                    outcome.resigned += 1
                else:
                    outcome.gone += 1
            elif kind == "local":
                outcome.local += 1
            else:
                outcome.untouched += 1
            yield row


def describe(out_dir: Path, outcome: Outcome, settings: Settings) -> str:
    """The one line that says what :func:`resign_run` did."""
    if settings.public_base_url:
        validity = "public links, no expiry"
    else:
        validity = f"valid for {_duration(settings.link_expiry)}"
    parts = [f"re-signed {outcome.resigned} links in {out_dir} ({validity})"]
    if outcome.gone:
        parts.append(
            f"{outcome.gone} images are gone from storage: their rows are now errors "
            "(run the dispatcher again on this directory to shoot them)"
        )
    if outcome.local:
        parts.append(f"{outcome.local} local files left as they are (they need no signing)")
    if outcome.resigned or outcome.gone:
        parts.append(f"manifest, CSV and {out_dir / 'report.html'} rewritten")
    else:
        parts.append("nothing rewritten")
    return "; ".join(parts)


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="screenshots-resign",
        description="Give a finished run fresh links: re-sign every S3 link of OUT/results.jsonl "
        "(and results.csv, report.html) with the storage settings of the environment "
        "(AWS_*, SCREENSHOT_LINK_EXPIRY, SCREENSHOT_PUBLIC_BASE_URL...). Shoots nothing.",
    )
    parser.add_argument("out", type=Path, help="the --out directory of a dispatcher run")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """The command; returns its exit status (1 when images are gone, 2 for a usage error)."""
    args = build_parser().parse_args(argv)
    out_dir: Path = args.out
    if not (out_dir / JSONL_NAME).is_file():
        print(
            f"error: {out_dir / JSONL_NAME} not found: give the --out directory of a run",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings()
        outcome = resign_run(out_dir, settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (StorageUnavailable, OSError) as exc:
        print(f"error: {exc} (the manifest is unchanged)", file=sys.stderr)
        return 1
    print(describe(out_dir, outcome, settings))
    return 1 if outcome.gone else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
