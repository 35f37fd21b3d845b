"""A result: one row of the manifest, the outcome of one input line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: ``status`` of a row whose screenshot is stored.
OK = "ok"
#: ``status`` of a row that has no screenshot; ``error`` says why.
ERROR = "error"
#: Console messages kept per row, at most.
MAX_CONSOLE_MESSAGES = 5


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
    # -- added with per-URL options and page metadata: appended, so older columns keep
    # their places --------------------------------------------------------------------------
    #: The main document's MIME type (``text/html``).
    content_type: str | None = None
    #: Requests the page made (main document and redirects included).
    requests: int | None = None
    #: Requests that failed: no answer (refused, reset, DNS...) or an HTTP status >= 400.
    #: Blocked requests are not counted here.
    failed_requests: int | None = None
    #: Requests not made because the ``block`` option (or the egress policy) refused them.
    blocked_requests: int | None = None
    #: Errors the page reported: ``console.error`` calls and uncaught exceptions.
    console_errors: int | None = None
    #: The first :data:`MAX_CONSOLE_MESSAGES` of them, each cut to 300 characters.
    console_messages: tuple[str, ...] = ()
    #: Milliseconds from reading the URL to the start of its capture (waiting for a slot).
    queued_ms: int | None = None
    #: Milliseconds of navigation: until the ``wait_until`` event (last attempt).
    navigation_ms: int | None = None
    #: Milliseconds of waiting after it: ``wait_for``, ``wait_for_js``, ``scroll``,
    #: ``css``/``js``, ``delay_ms`` (last attempt).
    wait_ms: int | None = None
    #: Milliseconds taking and encoding the image (last attempt).
    capture_ms: int | None = None
    #: Milliseconds storing the image and making its link (last attempt).
    upload_ms: int | None = None
    # -- added with look-alike groups and run comparison (issue #12) --------------------------
    #: Perceptual hash of the image (``imagehash.phash``, 16 hex digits): look-alike pages
    #: have hashes a few bits apart (:mod:`screenshots.visual.hashing`).
    phash: str | None = None
    #: A link to a small WebP of the top of the image, stored beside it.
    thumbnail_link: str | None = None
    #: Against a compared run (``--compare``): ``new``, ``gone``, ``unchanged`` or ``changed``.
    change: str | None = None
    #: Against a compared run: changed pixels in percent (0–100) of the pixels compared.
    changed_pct: float | None = None
    #: Against a compared run: a link to the image with the changed pixels in red.
    diff_link: str | None = None
    #: The key of this shot's own version of the image, kept when the same URL and options
    #: are shot again (``key`` always holds the latest): see :mod:`screenshots.batch.history`.
    version_key: str | None = None
    #: The ``ignore`` option's CSS selectors as measured at capture time: ``x,y,w,h`` rectangles
    #: in CSS pixels of the image, which a comparison leaves out (with the other run's).
    ignored_regions: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        # Every field is immutable (str, numbers, a tuple of str): a shallow copy is the same
        # as dataclasses.asdict, ten times cheaper (a worker makes two per URL).
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Result:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in values.items() if k in known}
        for name in ("console_messages", "ignored_regions"):
            items = fields.get(name)
            if isinstance(items, list):
                fields[name] = tuple(str(m) for m in items)
            elif items is not None and not isinstance(items, tuple):
                fields[name] = ()
        return cls(**fields)


#: Manifest columns, in order.
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Result))


def error_result(line: int, url: str, message: str, **fields: Any) -> Result:
    """An ``error`` row."""
    return Result(line=line, url=url, status=ERROR, error=message, **fields)


#: :class:`Result`'s field names, in order.
_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(Result))
