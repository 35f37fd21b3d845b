"""A dict-backed stub storage for unit tests: no files, no network, thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from screenshots.core.errors import StorageUnavailable
from screenshots.storage.base import Storage, StoredObject


class MemoryStorage(Storage):
    """Keep objects in memory. ``fail_times``: the next N puts raise StorageUnavailable."""

    name = "memory"

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        #: key -> (data, content type)
        self.objects: dict[str, tuple[bytes, str]] = {}
        #: Every call to :meth:`put`, failed ones included.
        self.put_calls = 0
        #: key -> what :meth:`stat` answers
        self.stored: dict[str, StoredObject] = {}
        #: Object tags by key (as S3 would keep them for lifecycle rules).
        self.tags: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self.objects)} objects)"

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        with self._lock:
            self.put_calls += 1
            if self.fail_times > 0:
                self.fail_times -= 1
                raise StorageUnavailable(f"memory storage failing on purpose for {key!r}")
            self.objects[key] = (bytes(data), content_type)
            self.tags[key] = dict(tags or {})
            self.stored[key] = StoredObject(datetime.now(UTC), len(data), dict(metadata or {}))
        return self.uri(key)

    def read(self, key: str) -> bytes:
        with self._lock:
            return self.objects[key][0]

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key`` (``KeyError`` if none): :meth:`read`."""
        return self.read(key)

    def content_type(self, key: str) -> str:
        """The content type stored with ``key`` (``KeyError`` if none)."""
        with self._lock:
            return self.objects[key][1]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.objects

    def stat(self, key: str) -> StoredObject | None:
        with self._lock:
            return self.stored.get(key)

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(key for key in self.objects if key.startswith(prefix))

    def link(self, key: str) -> str:
        return self.uri(key)

    def uri(self, key: str) -> str:
        return f"memory://{key}"

    def check(self) -> None:
        """Always usable."""
