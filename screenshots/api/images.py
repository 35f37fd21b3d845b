"""Reading a stored screenshot back, for ``Accept: image/*`` and the web page's gallery.

The storage interface writes and links; reading is only needed here, so it lives here, per
back end: S3 (``GetObject``), a local directory, or memory.
"""

from __future__ import annotations

from screenshots.core.errors import StorageUnavailable
from screenshots.storage.base import Storage
from screenshots.storage.local import LocalStorage
from screenshots.storage.memory import MemoryStorage


def read_object(storage: Storage, key: str) -> bytes:
    """The bytes stored under ``key``; ``KeyError`` if there are none.

    Raises :class:`~screenshots.core.errors.StorageUnavailable` when the back end cannot be read
    now.
    """
    if isinstance(storage, MemoryStorage):
        return storage.get(key)
    if isinstance(storage, LocalStorage):
        try:
            return storage.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror or exc}") from exc
    from screenshots.storage.s3 import S3Storage

    if isinstance(storage, S3Storage):
        return _read_s3(storage, key)
    raise KeyError(key)


def _read_s3(storage: object, key: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    from screenshots.storage.s3 import MISSING_KEY_CODES, S3Storage

    assert isinstance(storage, S3Storage)
    try:
        answer = storage.client.get_object(Bucket=storage.bucket, Key=key)
        return answer["Body"].read()
    except ClientError as exc:
        code = str((exc.response.get("Error") or {}).get("Code", ""))
        if code in MISSING_KEY_CODES:
            raise KeyError(key) from None
        raise StorageUnavailable(f"cannot read {key} from bucket {storage.bucket!r}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"cannot read {key} from bucket {storage.bucket!r}") from exc
