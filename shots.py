"""A shot: one URL to capture, with its options and its place in the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from options import CaptureOptions


@dataclass(frozen=True)
class Shot:
    """One unit of work. Travels in task messages as :meth:`to_message`."""

    #: Line number in the input file (1-based).
    line: int
    #: The normalised URL (see :func:`urls.normalize_url`).
    url: str
    options: CaptureOptions

    def to_message(self) -> dict[str, Any]:
        """A JSON-serialisable dict for a Celery message."""
        return {"line": self.line, "url": self.url, "options": self.options.to_dict()}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Shot:
        return cls(
            line=int(message["line"]),
            url=str(message["url"]),
            options=CaptureOptions.from_dict(message.get("options") or {}),
        )
