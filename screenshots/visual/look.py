"""The look of a screenshot, computed once per shot in the worker: its perceptual hash and its
thumbnail, from one decode of the image.

The decode is most of the cost (a 1280×800 PNG: a few milliseconds); the image is then
box-reduced to about :data:`WORK_WIDTH` pixels wide, and both the hash (a 32×32 DCT) and the
thumbnail (240 wide) are made from that small copy: the same hash as from the full image to
within rounding, at a fraction of the cost (measured by ``python -m
screenshots.dev.bench.visual``).

Identical images (the same bytes: a parked domain's page, a default server page, every image
of the stub engine) are looked at once per process: the last :data:`REMEMBERED` looks are kept
by the BLAKE2 digest of the bytes, which costs about a tenth of a decode.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from screenshots.visual import hashing, thumbnails

#: Width the image is reduced to before hashing and thumbnailing.
WORK_WIDTH = 320
#: Looks of identical images remembered per process (a thumbnail is a few KB).
REMEMBERED = 256


@dataclass(frozen=True)
class Look:
    """What a screenshot looks like, in short."""

    #: :func:`screenshots.visual.hashing.phash_hex` of the image.
    phash: str
    #: WebP thumbnail bytes.
    thumbnail: bytes


def reduced(image: Image.Image) -> Image.Image:
    """``image`` box-reduced by an integer factor to about :data:`WORK_WIDTH` wide (as is
    when it is already small)."""
    factor = max(1, image.width // WORK_WIDTH)
    return image.reduce(factor) if factor > 1 else image


class _Remembered:
    """The last :data:`REMEMBERED` looks by digest of the image bytes; thread-safe."""

    def __init__(self) -> None:
        self._looks: OrderedDict[bytes, Look | None] = OrderedDict()
        self._lock = threading.Lock()

    def look(self, data: bytes) -> Look | None:
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            if digest in self._looks:
                self._looks.move_to_end(digest)
                return self._looks[digest]
        found = _look(data)
        with self._lock:
            self._looks[digest] = found
            if len(self._looks) > REMEMBERED:
                self._looks.popitem(last=False)
        return found


_REMEMBERED = _Remembered()


def look_of(data: bytes) -> Look | None:
    """The :class:`Look` of the image ``data``; ``None`` if it does not decode (a test engine's
    placeholder bytes: the row then has no hash and no thumbnail)."""
    return _REMEMBERED.look(data)


def _look(data: bytes) -> Look | None:
    try:
        image = hashing.open_image(data)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    small = reduced(image)
    return Look(hashing.phash_hex(small), thumbnails.thumbnail_webp(small))
