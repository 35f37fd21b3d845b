"""The bounds and vocabularies of the capture options, shared by their declaration
(:mod:`screenshots.core.options.model`), their checks and the engines.

Kept apart from the model so that the checks and the engines can import them without the
pydantic declaration, and so that each limit is written once, with the reason for it.
"""

from __future__ import annotations

#: Viewport width in CSS pixels when none is asked for.
DEFAULT_WIDTH = 1280
#: Viewport height in CSS pixels when none is asked for.
DEFAULT_HEIGHT = 800
#: Seconds one capture may take, navigation included, before it is abandoned.
DEFAULT_TIMEOUT = 30.0
#: Largest width or viewport height accepted, in pixels.
MAX_DIMENSION = 8192
#: A full-page capture is cut at this height (image pixels). Chromium's own texture limit is
#: 16384; taller pages are captured from the top down to this height.
MAX_FULL_PAGE_HEIGHT = 16384
#: Longest capture deadline accepted, in seconds. Kept far below RabbitMQ's consumer timeout.
MAX_TIMEOUT = 300.0
#: Longest wait after load, in milliseconds.
MAX_DELAY_MS = 60_000
#: Smallest and largest device scale factor.
MIN_SCALE, MAX_SCALE = 0.25, 4.0
#: Longest text accepted for ``css``, ``js`` and selectors, in characters.
MAX_TEXT = 32 * 1024
#: Most entries in ``headers``, ``cookies``, ``block`` and ``hide_selectors``.
MAX_ENTRIES = 100
#: Largest clip side accepted before the image limits are checked, in CSS pixels.
MAX_CLIP = 100_000

#: Image formats and their MIME types.
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: File name extension per format.
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
#: Accepted ``wait_until`` values.
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle")
#: Resource types ``block`` accepts (Chromium's names, lower case), with their plural aliases.
RESOURCE_TYPES = ("font", "image", "media", "stylesheet", "script", "xhr", "fetch", "websocket")
TYPE_ALIASES = {
    "fonts": "font", "images": "image", "stylesheets": "stylesheet", "css": "stylesheet",
    "scripts": "script", "websockets": "websocket",
}
#: ``block`` entry that stands for every host in ``data/adhosts.txt``.
BLOCK_ADS = "ads"
