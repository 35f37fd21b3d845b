"""The store phase: the captured image goes to storage under its key, and gets its link.

Second phase of :mod:`screenshots.pipeline.screenshot`. Its first upload belongs to the
attempt whose capture succeeded; a failed upload is retried (a new attempt) without capturing
again. The image's size, engine and HTTP status are stored with it as metadata, so the reuse
cache (:mod:`screenshots.pipeline.reuse`) can describe it without reading it.

Before uploading, the image is decoded once for its perceptual hash (the row's ``phash``, also
in the metadata) and its thumbnail (:mod:`screenshots.visual.look`), stored beside it. The image is
stored twice: under its own version key (:func:`screenshots.core.keys.version_key`, kept when
the same URL and options are shot again: the URL's history) and under the deterministic key,
which always holds the latest. The version goes first, so the deterministic key never names an
image that has no version.
"""

from __future__ import annotations

from datetime import UTC, datetime

from screenshots.core.keys import thumbnail_key, version_key
from screenshots.pipeline.run import Run, Stored
from screenshots.storage.base import Storage
from screenshots.storage.lifecycle import VERSION_TAGS
from screenshots.visual import thumbnails
from screenshots.visual.look import look_of

#: Metadata names (S3 user metadata: lower-case ASCII).
META_PHASH = "phash"
META_THUMBNAIL = "thumbnail"
META_VERSION = "version"


def version_stamp(now: datetime | None = None) -> str:
    """The version stamp of a shot made ``now``: ``YYYYmmddTHHMMSS.ffffffZ`` (UTC), sortable."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")


def store_capture(run: Run, storage: Storage) -> Stored:
    """Put ``run.capture`` in ``storage`` under ``run.key`` (and its version key), with its
    thumbnail, and link them.

    Transient failures (:class:`~screenshots.core.errors.StorageUnavailable`) are retried
    within ``run.attempts``; the last one is raised, as is a
    :class:`~screenshots.core.errors.ConfigurationError` (storage refusing us).
    """
    capture = run.capture
    if capture is None:
        raise ValueError("nothing captured to store")
    metadata = {"width": str(capture.width), "height": str(capture.height)}
    metadata["engine"] = run.engine
    if capture.http_status is not None:
        metadata["http-status"] = str(capture.http_status)
    content_type = run.shot.options.content_type
    look = look_of(capture.image)
    if look is not None:
        metadata[META_PHASH] = look.phash
        metadata[META_THUMBNAIL] = "webp"
    version = version_key(run.key, version_stamp())
    metadata[META_VERSION] = version

    def upload() -> Stored:
        started = run.clock()
        storage.put(version, capture.image, content_type, metadata, tags=VERSION_TAGS)
        uri = storage.put(run.key, capture.image, content_type, metadata)
        link = storage.link(run.key)
        thumbnail_link = None
        if look is not None:
            thumb = thumbnail_key(run.key)
            storage.put(thumb, look.thumbnail, thumbnails.CONTENT_TYPE)
            thumbnail_link = storage.link(thumb)
        elapsed = int(round((run.clock() - started) * 1000))
        phash = look.phash if look is not None else None
        return Stored(uri, link, elapsed, phash, thumbnail_link, version)

    return run.attempts.retry(upload)
