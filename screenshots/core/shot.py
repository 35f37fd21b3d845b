"""A shot: one URL to capture, with its options and its place in the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from screenshots.core.options import CaptureOptions


@dataclass(frozen=True)
class Shot:
    """One unit of work. Travels in task messages as :meth:`to_message`."""

    #: Line number in the input file (1-based).
    line: int
    #: The normalised URL (see :func:`screenshots.core.urls.normalize_url`).
    url: str
    options: CaptureOptions
    #: When the shot was read from the input (Unix time, seconds); ``None`` when unknown.
    #: The row's ``queued_ms`` is the time from then to the start of the capture.
    queued_at: float | None = None

    def to_message(self) -> dict[str, Any]:
        """A JSON-serialisable dict for a Celery message."""
        message: dict[str, Any] = {
            "line": self.line,
            "url": self.url,
            "options": self.options.to_dict(),
        }
        if self.queued_at is not None:
            message["queued_at"] = self.queued_at
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any], parsed: OptionsMemo | None = None) -> Shot:
        """The shot of a task message. ``parsed`` remembers options already parsed: the
        shots of a batch share one options dict, parsed once."""
        queued_at = message.get("queued_at")
        return cls(
            line=int(message["line"]),
            url=str(message["url"]),
            options=_options(message.get("options"), parsed),
            queued_at=float(queued_at) if isinstance(queued_at, int | float) else None,
        )


#: Options dicts already parsed, by ``id()``, each kept with its dict (so the id stays its).
OptionsMemo = dict[int, tuple[object, CaptureOptions]]


def _options(raw: Any, parsed: OptionsMemo | None) -> CaptureOptions:
    if parsed is None or not isinstance(raw, dict):
        return CaptureOptions.from_dict(raw or {})
    known = parsed.get(id(raw))
    if known is not None and known[0] is raw:
        return known[1]
    options = CaptureOptions.from_dict(raw)
    parsed[id(raw)] = (raw, options)
    return options
