"""Thumbnails: a small WebP of the top of the screenshot, for galleries and the report.

Full-page screenshots can be 16,000 pixels tall, so the thumbnail shows the first screen
(a 4:3 crop from the top, as a person sees the page on arrival) scaled to
:data:`THUMBNAIL_WIDTH` pixels wide. Stored beside the image under
:func:`screenshots.core.keys.thumbnail_key`.
"""

from __future__ import annotations

import io

from PIL import Image

#: Width of a thumbnail in pixels.
THUMBNAIL_WIDTH = 240
#: WebP quality: small files; a thumbnail only has to be recognisable.
THUMBNAIL_QUALITY = 60
CONTENT_TYPE = "image/webp"


def thumbnail_webp(image: Image.Image) -> bytes:
    """The WebP thumbnail of ``image`` (best already reduced: :mod:`screenshots.visual.look`):
    its top 4:3 part, :data:`THUMBNAIL_WIDTH` wide."""
    width, height = image.size
    crop = image.crop((0, 0, width, min(height, max(1, width * 3 // 4))))
    scale = min(1.0, THUMBNAIL_WIDTH / max(1, width))
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    # reduce() first: a cheap integer downscale before the filtered resize (10x faster on a
    # full-size screenshot, the same result at thumbnail size).
    factor = max(1, int(1 / scale) // 2)
    small = crop.reduce(factor) if factor > 1 else crop
    small = small.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=THUMBNAIL_QUALITY, method=0)
    return out.getvalue()
