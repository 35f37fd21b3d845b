"""Pixel diffs of two screenshots of one URL: the changed share of pixels and an image that
shows where.

A pixel is changed when a colour channel moved by more than :data:`TOLERANCE` (anti-aliasing
and JPEG noise stay below it). Images of different sizes are compared over the larger of each
dimension: what only one of them has counts as changed (a page that grew by a screen changed
that much). Ignored rectangles (:mod:`screenshots.visual.regions`) count neither way: the
share is of the pixels compared. The diff image is the newer screenshot faded to grey with
the changed pixels in red and the ignored regions in blue, as PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from screenshots.visual.regions import Rect

#: Largest colour-channel difference (0–255) that is not a change.
TOLERANCE = 24
CONTENT_TYPE = "image/png"
_RED = np.array([230, 20, 20], dtype=np.uint8)
_BLUE = np.array([60, 110, 230], dtype=np.uint8)


@dataclass(frozen=True)
class Diff:
    """How two images differ."""

    #: Changed pixels, in percent (0–100) of the pixels compared, 3 decimals.
    changed_pct: float
    #: Width and height of the compared area.
    size: tuple[int, int]
    #: The mask of changed pixels (height × width booleans).
    mask: np.ndarray

    def image_png(self, after: Image.Image, ignore: Sequence[Rect] = ()) -> bytes:
        """The diff image over ``after``: see the module docstring."""
        width, height = self.size
        base = np.full((height, width, 3), 255, dtype=np.uint8)
        grey = np.asarray(after.convert("L"), dtype=np.uint16)
        faded = (grey // 3 + 170).astype(np.uint8)
        base[: grey.shape[0], : grey.shape[1]] = faded[..., None]
        for x, y, w, h in ignore:
            base[y : y + h, x : x + w] = base[y : y + h, x : x + w] // 2 + _BLUE // 2
        base[self.mask] = _RED
        out = io.BytesIO()
        Image.fromarray(base, "RGB").save(out, "PNG", compress_level=1)
        return out.getvalue()


def _padded(image: Image.Image, width: int, height: int) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    if pixels.shape[:2] == (height, width):
        return pixels
    # -1000: outside the image, so every channel differs from whatever the other one has.
    padded = np.full((height, width, 3), -1000, dtype=np.int16)
    padded[: pixels.shape[0], : pixels.shape[1]] = pixels
    return padded


def diff_images(
    before: Image.Image, after: Image.Image, ignore: Sequence[Rect] = ()
) -> Diff:
    """Compare ``before`` with ``after``, leaving out the ``ignore`` rectangles (image pixels)."""
    width = max(before.width, after.width)
    height = max(before.height, after.height)
    a = _padded(before, width, height)
    b = _padded(after, width, height)
    mask = np.abs(a - b).max(axis=2) > TOLERANCE
    compared = np.ones((height, width), dtype=bool)
    for x, y, w, h in ignore:
        compared[y : y + h, x : x + w] = False
    mask &= compared
    total = int(compared.sum())
    pct = 0.0 if total == 0 else round(100.0 * int(mask.sum()) / total, 3)
    return Diff(pct, (width, height), mask)
