"""The store phase: the captured image goes to storage under its key, and gets its link.

Second phase of :mod:`screenshots.pipeline.screenshot`. Its first upload belongs to the
attempt whose capture succeeded; a failed upload is retried (a new attempt) without capturing
again. The image's size, engine and HTTP status are stored with it as metadata, so the reuse
cache (:mod:`screenshots.pipeline.reuse`) can describe it without reading it.
"""

from __future__ import annotations

from screenshots.pipeline.run import Run, Stored
from screenshots.storage.base import Storage


def store_capture(run: Run, storage: Storage) -> Stored:
    """Put ``run.capture`` in ``storage`` under ``run.key`` and link it.

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

    def upload() -> Stored:
        started = run.clock()
        uri = storage.put(run.key, capture.image, content_type, metadata)
        link = storage.link(run.key)
        return Stored(uri, link, int(round((run.clock() - started) * 1000)))

    return run.attempts.retry(upload)
