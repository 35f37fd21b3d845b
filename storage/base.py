"""The storage interface: put a screenshot under a key, hand out a link to it.

Keys are produced by :func:`keys.storage_key` and are the same for the same URL and options,
so storing twice overwrites and a rerun finds what it already has.
"""

from __future__ import annotations


class Storage:
    """Base class of every storage back end."""

    #: The name the registry knows this back end by.
    name: str = "base"

    def put(self, key: str, data: bytes, content_type: str) -> str:  # pragma: no cover
        """Store ``data`` under ``key`` and return its URI (``s3://bucket/key``, ``file://...``).

        Raises :class:`~errors.StorageUnavailable` when the back end cannot be reached (worth
        retrying) and :class:`~errors.StorageRejected` when it refuses us (bad settings).
        """
        raise NotImplementedError

    def exists(self, key: str) -> bool:  # pragma: no cover
        """Whether an object is stored under ``key``."""
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
