"""Each URL's history: what the page looked like on every run.

The store phase keeps every shot under its version key (:func:`screenshots.core.keys.
version_key`: ``<key stem>/<UTC stamp>.<ext>``) beside the deterministic key, which holds the
latest; so the history of a URL and options is one listing of :func:`~screenshots.core.keys.
history_prefix` — :func:`history`, or the command ``screenshots-history URL [capture flags]
[--out DIR]`` (JSON Lines: one version a line, oldest first, with a link and the diff image
a ``--compare`` made of it, if any).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from screenshots.core.keys import (
    DEFAULT_KEY_PREFIX,
    diff_key,
    history_prefix,
    storage_key,
)
from screenshots.core.options import CaptureOptions
from screenshots.storage.base import Storage

_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class Version:
    """One shot of a URL."""

    key: str
    #: When it was stored (UTC).
    taken_at: datetime
    link: str
    #: The diff image against the run it was compared with, if a comparison made one.
    diff_link: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "taken_at": self.taken_at.isoformat(timespec="milliseconds"),
            "key": self.key,
            "link": self.link,
            "diff_link": self.diff_link,
        }


def _stamp(key: str) -> datetime | None:
    name = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    try:
        return datetime.strptime(name, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def history(
    storage: Storage, url: str, options: CaptureOptions, key_prefix: str = DEFAULT_KEY_PREFIX
) -> list[Version]:
    """Every stored shot of ``url`` with ``options``, oldest first."""
    key = storage_key(url, options, key_prefix)
    listed = storage.keys(history_prefix(key))
    present = set(listed)
    versions = []
    for found in listed:
        taken_at = _stamp(found)
        if taken_at is None:
            continue  # a diff image beside a version
        diff = diff_key(found)
        diff_link = storage.link(diff) if diff in present else None
        versions.append(Version(found, taken_at, storage.link(found), diff_link))
    return sorted(versions, key=lambda version: version.taken_at)


def run(argv: Sequence[str] | None = None) -> int:
    from screenshots.batch.dispatcher import UsageError, add_capture_arguments, options_from_args
    from screenshots.core.errors import ConfigurationError, InvalidURL
    from screenshots.core.settings import load_settings
    from screenshots.core.urls import normalize_url
    from screenshots.storage import create_storage

    parser = argparse.ArgumentParser(
        prog="screenshots-history",
        description="Every stored screenshot of one URL (and capture options), oldest first.",
    )
    parser.add_argument("url")
    parser.add_argument(
        "--out", type=Path, default=Path("out"),
        help="the run's output directory (local storage; ignored with SCREENSHOT_BUCKET)",
    )
    add_capture_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        options = options_from_args(args)
        url = normalize_url(args.url)
        storage = create_storage(settings, args.out)
    except (ConfigurationError, UsageError, InvalidURL) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for version in history(storage, url, options, settings.key_prefix):
        print(json.dumps(version.to_dict()))
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
