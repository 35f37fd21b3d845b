"""Perceptual hashes: ``imagehash.phash`` (a DCT of the 32×32 greyscale image, 64 bits) as
16 hex digits, and their Hamming distance.

Two screenshots of the same kind of page (a parked domain, a default server page, a login
portal) have hashes a few bits apart even when their text differs; different pages are about
32 bits apart. The hex form is the manifest's ``phash`` column and is stored in the image's
metadata, so a reused row carries it without reading the image.
"""

from __future__ import annotations

import io

import imagehash
from PIL import Image

#: Bits in a hash.
HASH_BITS = 64


def open_image(data: bytes) -> Image.Image:
    """The decoded image of ``data`` (PNG, JPEG or WebP), loaded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def phash_hex(image: Image.Image) -> str:
    """The 64-bit perceptual hash of ``image`` as 16 hex digits."""
    return str(imagehash.phash(image))


def hash_int(hex_hash: str) -> int:
    """The hash ``hex_hash`` as an integer (``ValueError`` if it is not hex)."""
    return int(hex_hash, 16)


def distance(a: str, b: str) -> int:
    """Bits that differ between two hex hashes (0: the same look, 64: opposites)."""
    return (hash_int(a) ^ hash_int(b)).bit_count()
