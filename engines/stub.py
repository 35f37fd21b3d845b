"""An engine that renders nothing: a plain image of the asked size, for tests and benchmarks.

It exercises everything around the browser (queueing, storage, result files) at full speed and
without Chromium. A URL whose host ends in ``.invalid`` (a name reserved never to resolve, RFC
6761) fails as an unknown host would in a browser, so error paths can be tested too.
"""

from __future__ import annotations

import io
import threading
import time
from urllib.parse import urlsplit

from PIL import Image

from engines.base import Capture, Engine
from screenshots.core.errors import NavigationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings

#: Colour of every stub image (RGB).
STUB_COLOR = (42, 157, 143)
#: Pillow's name for each of our formats.
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class StubEngine(Engine):
    """Returns a solid ``width`` x ``height`` image in the asked format for any URL.

    ``latency`` is the number of seconds each capture sleeps, to stand in for a browser in
    benchmarks (default 0: return at once). A full-page capture is also ``width`` x ``height``:
    a stub page has no content below the viewport. Encoded images are cached per size, format
    and quality, so repeated captures cost no encoding. It honours only the options in
    :attr:`supports`; ``clip`` gives an image of the clip's size.
    """

    name = "stub"
    #: What a blank page can honour: its size and encoding. Everything that needs a page
    #: (selectors, waits, scripts, headers...) is refused with an error row by the pipeline.
    #: It has no cache at all, so ``isolation: strict`` holds.
    supports = frozenset(
        {"width", "height", "full_page", "scale", "clip", "format", "quality", "isolation"}
    )

    def __init__(self, latency: float | None = None, settings: Settings | None = None) -> None:
        """``latency``: seconds each capture sleeps; default ``SCREENSHOT_STUB_LATENCY_MS``."""
        if latency is None:
            latency = settings.stub_latency_ms / 1000 if settings is not None else 0.0
        if latency < 0:
            raise ValueError("latency must be zero or more seconds")
        self.latency = latency
        self._cache: dict[tuple[int, int, str, int | None], bytes] = {}
        self._lock = threading.Lock()

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        host = (urlsplit(url).hostname or "").rstrip(".")
        if host.endswith(".invalid") or host == "invalid":
            code = "net::ERR_NAME_NOT_RESOLVED"
            raise NavigationError(f"unknown host {host} ({code})", code=code)
        if self.latency:
            time.sleep(self.latency)
        width, height = image_size(options)
        return Capture(
            image=self._image(width, height, options),
            width=width,
            height=height,
            http_status=200,
            final_url=url,
            title="stub",
            content_type="text/html",
            requests=1,
            failed_requests=0,
            console_errors=0,
            navigation_ms=0,
            wait_ms=0,
            capture_ms=0,
        )

    def _image(self, width: int, height: int, options: CaptureOptions) -> bytes:
        quality = options.effective_quality
        key = (width, height, options.format, quality)
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                buffer = io.BytesIO()
                image = Image.new("RGB", (width, height), STUB_COLOR)
                extra = {} if quality is None else {"quality": quality}
                image.save(buffer, _PIL_FORMATS[options.format], **extra)
                cached = self._cache[key] = buffer.getvalue()
        return cached

    def close(self) -> None:
        """Nothing to release."""


def image_size(options: CaptureOptions) -> tuple[int, int]:
    """The stub image's size: the viewport (or ``clip``) times ``scale``, in pixels."""
    if options.clip is not None:
        width, height = options.clip[2], options.clip[3]
    else:
        width, height = options.width, options.height
    return max(1, round(width * options.scale)), max(1, round(height * options.scale))
