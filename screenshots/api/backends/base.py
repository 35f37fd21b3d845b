"""The interface between the HTTP API and whatever takes the screenshots.

Two back ends implement it: :mod:`screenshots.api.backends.pool` (broker-less: browsers in this
process)
and :mod:`screenshots.api.backends.celery` (tasks on Celery workers). Both admit a capture only
when they
have room for it and raise :class:`~screenshots.api.errors.Busy` (429 with ``Retry-After``)
otherwise, so
nothing queues without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from screenshots.core.result import Result
from screenshots.core.shot import Shot
from screenshots.storage.base import Storage

#: The capture is accepted and waits for a browser (pool) or a worker (broker).
QUEUED = "queued"
#: A browser is on it (or its upload is running).
RUNNING = "running"
#: Finished: ``result`` holds the manifest row (``status`` ``ok`` or ``error``).
DONE = "done"


@dataclass(frozen=True)
class Status:
    """What is known about one capture."""

    id: str
    #: Name of the API key that asked for it.
    owner: str
    #: :data:`QUEUED`, :data:`RUNNING` or :data:`DONE`.
    state: str
    result: Result | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE and self.result is not None


@dataclass(frozen=True)
class Check:
    """One readiness check: whether it passes and a short explanation."""

    ok: bool
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    """Base class of the capture back ends. Coroutines run on the API's event loop."""

    #: ``pool`` or ``celery``.
    mode: str = "base"
    #: Engine used when a request names none.
    default_engine: str = ""
    #: Where the screenshots are stored (and read back from for ``Accept: image/*``).
    storage: Storage

    async def start(self) -> None:  # pragma: no cover
        """Open connections, start threads; :class:`~screenshots.core.errors.ConfigurationError` if
        unusable."""
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover
        """Stop accepting, finish or fail what is in flight, release everything."""
        raise NotImplementedError

    def engines(self) -> Sequence[str]:  # pragma: no cover
        """Engine names a request may ask for."""
        raise NotImplementedError

    async def submit(
        self,
        shot: Shot,
        *,
        owner: str,
        engine: str,
        background: bool = False,
        ident: str | None = None,
    ) -> str:  # pragma: no cover
        """Accept ``shot`` and return its id, or raise :class:`~screenshots.api.errors.Busy` at
        once.

        ``background`` submissions (batch jobs) are admitted only while a share of the
        capacity stays free for interactive requests. ``ident``: the id to give the capture
        (a job's deterministic one, so publishing it again is safe); else a new one.
        """
        raise NotImplementedError

    async def lookup(self, ids: Sequence[str]) -> list[Status | None]:  # pragma: no cover
        """The status of each id (``None`` for an unknown or expired one), in one round trip."""
        raise NotImplementedError

    async def wait(self, ident: str, timeout: float) -> Status | None:  # pragma: no cover
        """The status of ``ident`` once done, or as it is after ``timeout`` seconds."""
        raise NotImplementedError

    async def read_image(self, key: str) -> bytes:
        """The stored image under ``key`` (``KeyError`` if there is none;
        :class:`~screenshots.core.errors.StorageUnavailable` if it cannot be read now)."""
        return await asyncio.to_thread(self.storage.read, key)

    async def image_link(self, key: str) -> str | None:
        """A link to the stored image under ``key`` signed now, when storage gives web links
        (S3: presigned or public); ``None`` when it does not (local files, memory). Raises
        ``KeyError`` if there is no such image,
        :class:`~screenshots.core.errors.StorageUnavailable` if storage cannot be asked now."""

        def find() -> str | None:
            if not self.storage.exists(key):
                raise KeyError(key)
            link = self.storage.link(key)
            return link if link.startswith(("https://", "http://")) else None

        return await asyncio.to_thread(find)

    async def readiness(self) -> dict[str, Check]:  # pragma: no cover
        """Checks that decide ``/readyz``: each named part and whether it can take work."""
        raise NotImplementedError

    def capacity(self) -> dict[str, Any]:  # pragma: no cover
        """Numbers about capacity and load, for ``/readyz`` and metrics."""
        raise NotImplementedError
