"""The look of a screenshot, computed once per shot in the worker: its perceptual hash and its
thumbnail, from one decode of the image.

The decode is most of the cost (a 1280×800 PNG: a few milliseconds); the image is then
box-reduced to about :data:`WORK_WIDTH` pixels wide, and both the hash (a 32×32 DCT) and the
thumbnail (240 wide) are made from that small copy: the same hash as from the full image to
within rounding, at a fraction of the cost (measured by ``python -m
screenshots.dev.bench.visual``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from screenshots.visual import hashing, thumbnails

#: Width the image is reduced to before hashing and thumbnailing.
WORK_WIDTH = 320


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


def look_of(data: bytes) -> Look | None:
    """The :class:`Look` of the image ``data``; ``None`` if it does not decode (a test engine's
    placeholder bytes: the row then has no hash and no thumbnail)."""
    try:
        image = hashing.open_image(data)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    small = reduced(image)
    return Look(hashing.phash_hex(small), thumbnails.thumbnail_webp(small))
