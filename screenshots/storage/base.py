"""The storage interface: put a screenshot under a key, hand out a link to it, read it back.

Keys are produced by :func:`screenshots.core.keys.storage_key` and are the same for the same URL
and options,
so storing twice overwrites and a rerun finds what it already has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class StoredObject:
    """What the back end knows about a stored object."""

    #: When it was last written (timezone-aware, UTC).
    modified: datetime
    #: Its size in bytes.
    size: int
    #: The metadata stored with it (see :meth:`Storage.put`), as strings.
    metadata: Mapping[str, str] = field(default_factory=dict)


class Storage:
    """Base class of every storage back end."""

    #: The name the registry knows this back end by.
    name: str = "base"

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:  # pragma: no cover
        """Store ``data`` under ``key`` and return its URI (``s3://bucket/key``, ``file://...``).

        ``metadata`` (short ASCII strings: image size, HTTP status...) is kept with the object
        and returned by :meth:`stat`, so a cached screenshot can be described without reading it.
        ``tags`` are S3 object tags, which lifecycle rules can select
        (:mod:`screenshots.storage.lifecycle`); back ends without lifecycle rules ignore them.

        Raises :class:`~screenshots.core.errors.StorageUnavailable` when the back end cannot be
        reached (worth
        retrying) and :class:`~screenshots.core.errors.StorageRejected` when it refuses us (bad
        settings).
        """
        raise NotImplementedError

    def exists(self, key: str) -> bool:  # pragma: no cover
        """Whether an object is stored under ``key``."""
        raise NotImplementedError

    def stat(self, key: str) -> StoredObject | None:  # pragma: no cover
        """What is stored under ``key``, or ``None`` if nothing is."""
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:  # pragma: no cover
        """The keys stored under ``prefix`` (a folder: ends with ``/``), sorted; the history
        of a URL is listed with it (:mod:`screenshots.batch.history`)."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:  # pragma: no cover
        """The bytes stored under ``key``; ``KeyError`` if there are none.

        Raises :class:`~screenshots.core.errors.StorageUnavailable` when the back end cannot be
        read now (the API serves images with it: ``Accept: image/*``, the web page's gallery).
        """
        raise NotImplementedError

    def link(self, key: str) -> str:  # pragma: no cover
        """A URL or path a person can open to see the object (presigned, public or local)."""
        raise NotImplementedError

    def uri(self, key: str) -> str:  # pragma: no cover
        """The canonical URI of ``key`` in this back end, without credentials."""
        raise NotImplementedError

    def check(self) -> None:  # pragma: no cover
        """Raise a clear error now if the back end is unusable (missing bucket, bad creds)."""
        raise NotImplementedError
