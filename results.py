"""A result: one row of the manifest, the outcome of one input line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: ``status`` of a row whose screenshot is stored.
OK = "ok"
#: ``status`` of a row that has no screenshot; ``error`` says why.
ERROR = "error"


@dataclass(frozen=True)
class Result:
    """The outcome of one input line: the columns, in order, of the manifest files."""

    #: Line number in the input file (1-based); identifies the row across reruns.
    line: int
    #: The URL as captured (normalised), or the raw text of a line that is not a URL.
    url: str
    #: ``ok`` or ``error``.
    status: str
    #: Where the image is stored (``s3://bucket/key``, ``file:///...``); empty on error.
    storage_uri: str | None = None
    #: A URL a person can open (presigned, public or ``file://``); empty on error.
    link: str | None = None
    #: What went wrong, for ``error`` rows.
    error: str | None = None
    #: Image size in pixels.
    width: int | None = None
    height: int | None = None
    #: Image size in bytes.
    bytes: int | None = None
    #: Wall time of the capture and upload, in milliseconds (all attempts).
    duration_ms: int | None = None
    #: HTTP status of the main document.
    http_status: int | None = None
    #: URL the page ended on, after redirects.
    final_url: str | None = None
    #: Page title.
    title: str | None = None
    #: Image format (png, jpeg, webp).
    format: str | None = None
    #: Engine that took the shot.
    engine: str | None = None
    #: Attempts it took (1 unless transient failures were retried).
    attempts: int = 1
    #: When the row was produced (UTC, ISO 8601).
    finished_at: str | None = None
    #: The storage key (deterministic from URL and options).
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Result:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


#: Manifest columns, in order.
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Result))


def error_result(line: int, url: str, message: str, **fields: Any) -> Result:
    """An ``error`` row."""
    return Result(line=line, url=url, status=ERROR, error=message, **fields)
