"""The two passes of a broker-less capture: in a browser tab, then in an upload thread.

Both passes run :func:`screenshots.pipeline.screenshot.take_screenshot`, the service's one
pipeline. The capture
pass wraps the tab's engine in a :class:`Recorder` and stores into :data:`HOLD` (a storage
that keeps nothing); the upload pass replays the recorded capture (:class:`Replay`) into the
real storage. :func:`merge_rows` makes one row of the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engines.base import Capture, Engine
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result
from screenshots.storage.base import Storage, StoredObject


def merge_rows(first: Result, second: Result) -> Result:
    """The row of a two-pass capture: the upload pass's row with both passes accounted for.

    ``duration_ms`` and ``attempts`` add up both passes; ``queued_ms`` is the capture pass's
    (the upload pass started later). Everything the engine saw is the same in both rows.
    """
    changes: dict[str, Any] = {
        "duration_ms": (first.duration_ms or 0) + (second.duration_ms or 0),
        "attempts": first.attempts + second.attempts - 1,
    }
    if hasattr(first, "queued_ms"):
        changes["queued_ms"] = first.queued_ms
    return dataclasses.replace(second, **changes)


class Recorder(Engine):
    """Wraps an engine and keeps its last capture, for the upload pass."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.last: Capture | None = None

    def unsupported(self, options: CaptureOptions) -> list[str]:
        return self.engine.unsupported(options)

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self.last = None
        self.last = self.engine.capture(url, options)
        return self.last

    def close(self) -> None:
        """The tab owns the wrapped engine."""


class Replay(Engine):
    """An engine that returns a capture already taken: the upload pass's stand-in."""

    def __init__(self, capture: Capture, name: str) -> None:
        self._capture = capture
        self.name = name

    def unsupported(self, options: CaptureOptions) -> list[str]:
        return []  # the capture pass checked already

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        return self._capture

    def close(self) -> None:
        """Nothing to release."""


class Hold(Storage):
    """A storage that accepts every image and keeps none: the capture pass's stand-in."""

    name = "hold"

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        return ""

    def exists(self, key: str) -> bool:
        return False

    def stat(self, key: str) -> StoredObject | None:
        return None

    def link(self, key: str) -> str:
        return ""

    def uri(self, key: str) -> str:
        return ""

    def check(self) -> None:
        """Always usable."""


#: The capture pass's storage.
HOLD = Hold()
