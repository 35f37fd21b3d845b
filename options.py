"""Capture options: what a screenshot looks like, validated once, hashed into its storage key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from errors import InvalidOption

#: Viewport width in CSS pixels when none is asked for.
DEFAULT_WIDTH = 1280
#: Viewport height in CSS pixels when none is asked for.
DEFAULT_HEIGHT = 800
#: Seconds one capture may take, navigation included, before it is abandoned.
DEFAULT_TIMEOUT = 30.0
#: Largest width or viewport height accepted, in pixels.
MAX_DIMENSION = 8192
#: A full-page capture is cut at this height (pixels). Chromium's own texture limit is 16384;
#: taller pages are captured from the top down to this height.
MAX_FULL_PAGE_HEIGHT = 16384
#: Longest capture deadline accepted, in seconds. Kept far below RabbitMQ's consumer timeout.
MAX_TIMEOUT = 300.0
#: Longest wait after load, in milliseconds.
MAX_DELAY_MS = 60_000

#: Image formats and their MIME types.
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: File name extension per format.
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@dataclass(frozen=True)
class CaptureOptions:
    """How to take one screenshot. Every field changes the image, so every field is in the key."""

    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    full_page: bool = False
    format: str = "png"
    #: JPEG/WebP quality, 1-100. ``None`` lets the engine choose (80). Ignored for PNG.
    quality: int | None = None
    #: Milliseconds to wait after the page's load event before capturing.
    delay_ms: int = 0
    #: Seconds the whole capture may take.
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        _check_int("width", self.width, 1, MAX_DIMENSION)
        _check_int("height", self.height, 1, MAX_DIMENSION)
        if not isinstance(self.full_page, bool):
            raise InvalidOption(f"full_page must be true or false, not {self.full_page!r}")
        if self.format not in CONTENT_TYPES:
            choices = ", ".join(CONTENT_TYPES)
            raise InvalidOption(f"format must be one of {choices}, not {self.format!r}")
        if self.quality is not None:
            _check_int("quality", self.quality, 1, 100)
        _check_int("delay_ms", self.delay_ms, 0, MAX_DELAY_MS)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise InvalidOption(f"timeout must be a number of seconds, not {self.timeout!r}")
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise InvalidOption(f"timeout must be between 0 and {MAX_TIMEOUT:g} seconds")

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def effective_quality(self) -> int | None:
        """The quality the encoder uses: ``None`` for PNG, else the asked value or 80."""
        if self.format == "png":
            return None
        return 80 if self.quality is None else self.quality

    def image_fields(self) -> dict[str, Any]:
        """The fields that change the image (everything but the deadline), for the key."""
        fields = dataclasses.asdict(self)
        del fields["timeout"]
        fields["quality"] = self.effective_quality
        return fields

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CaptureOptions:
        """Build options from a mapping, naming any unknown option in the error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidOption(f"unknown option {unknown[0]!r}")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> CaptureOptions:
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOption(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise InvalidOption(f"{name} must be between {low} and {high}, not {value}")
