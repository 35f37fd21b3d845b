"""Reuse a recent screenshot: the same URL and options within ``max_age`` is not shot again.

Keys are deterministic (:func:`screenshots.core.keys.storage_key`), so finding a previous shot is
one ``stat``
of the storage back end. Its row is rebuilt from the metadata stored with the object (see
:func:`screenshots.pipeline.store.store_capture`: size, engine, HTTP status, perceptual hash,
whether a thumbnail is beside it, the version key) and fresh links; ``attempts`` is 0 in
such a row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from screenshots.core.keys import DEFAULT_KEY_PREFIX, storage_key, thumbnail_key
from screenshots.core.result import OK, Result
from screenshots.core.shot import Shot
from screenshots.pipeline.store import META_PHASH, META_THUMBNAIL, META_VERSION
from screenshots.storage.base import Storage


def cached_result(
    shot: Shot,
    storage: Storage,
    max_age: float | None,
    *,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Result | None:
    """The row of a shot of ``shot`` stored less than ``max_age`` seconds ago, or ``None``."""
    if not max_age or max_age <= 0:
        return None
    key = storage_key(shot.url, shot.options, key_prefix)
    stored = storage.stat(key)
    if stored is None:
        return None
    age = (now() - stored.modified).total_seconds()
    if age > max_age:
        return None
    meta = stored.metadata
    return Result(
        line=shot.line,
        url=shot.url,
        status=OK,
        storage_uri=storage.uri(key),
        link=storage.link(key),
        width=_int(meta, "width"),
        height=_int(meta, "height"),
        bytes=stored.size,
        duration_ms=0,
        http_status=_int(meta, "http-status"),
        format=shot.options.format,
        engine=meta.get("engine"),
        attempts=0,
        finished_at=stored.modified.isoformat(timespec="milliseconds"),
        key=key,
        phash=meta.get(META_PHASH),
        thumbnail_link=storage.link(thumbnail_key(key)) if meta.get(META_THUMBNAIL) else None,
        version_key=meta.get(META_VERSION),
    )


def _int(meta: Mapping[str, str], name: str) -> int | None:
    try:
        return int(meta[name])
    except (KeyError, ValueError):
        return None
