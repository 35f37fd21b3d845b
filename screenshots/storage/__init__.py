"""Where screenshots go: an S3 bucket, a local directory, or (in tests) memory.

The interface is :class:`screenshots.storage.base.Storage`; each back end is a module beside it
(``s3.py``, ``local.py``, ``memory.py``). :func:`create_storage` picks one from the settings.

To add a back end:

1. write ``storage/<name>.py`` with a subclass of :class:`~screenshots.storage.base.Storage` that
sets
   ``name`` and implements ``put``, ``exists``, ``stat``, ``keys``, ``read``, ``link``, ``uri`` and
   ``check``; raise
   :class:`~screenshots.core.errors.StorageUnavailable` for what a retry may fix and
   :class:`~screenshots.core.errors.StorageRejected` for what only new settings can;
2. choose it in :func:`create_storage` from a setting (add the setting to ``settings.py``),
   importing the module inside the function so its dependencies load only when used;
3. test it in ``tests/test_storage.py`` (unit tests, plus ``integration`` ones against the
   real service started by a fixture in ``tests/support``).
"""

from __future__ import annotations

from pathlib import Path

from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import Settings
from screenshots.storage.base import Storage

__all__ = ["Storage", "create_storage"]


def create_storage(settings: Settings, out_dir: Path | None) -> Storage:
    """S3 when ``SCREENSHOT_BUCKET`` is set, else files under ``out_dir``.

    The S3 client is not created here but on first use, in the process that uses it.
    """
    if settings.bucket:
        from screenshots.storage.s3 import S3Storage

        return S3Storage(
            settings.bucket,
            link_expiry=settings.link_expiry,
            public_base_url=settings.public_base_url,
            read_timeout=settings.s3_read_timeout,
        )
    if out_dir is not None:
        from screenshots.storage.local import LocalStorage

        return LocalStorage(out_dir)
    raise ConfigurationError(
        "nowhere to store screenshots: set SCREENSHOT_BUCKET or an output directory"
    )
