"""Deterministic storage keys: the same URL and image options always give the same key.

Which options are in the key is declared with each option (its ``key`` rule in
:mod:`screenshots.core.options.model`); ``tests/test_keys_golden.py`` pins the keys of stored
screenshots, so a change here or there cannot move them.
"""

from __future__ import annotations

import hashlib
import json

from screenshots.core.options import CaptureOptions

#: Prefix of every screenshot key, so a bucket can be shared with other data.
DEFAULT_KEY_PREFIX = "screenshots/"


def capture_digest(url: str, options: CaptureOptions) -> str:
    """SHA-256 (hex) of the URL and every option that changes the image."""
    payload = json.dumps({"url": url, "options": options.image_fields()}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def storage_key(url: str, options: CaptureOptions, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``<prefix><2 hex>/<64 hex>.<ext>``: spread over prefixes, and never two shots per key."""
    digest = capture_digest(url, options)
    return f"{prefix}{digest[:2]}/{digest}.{options.extension}"


def _stem(key: str) -> str:
    """``key`` without its extension."""
    head, dot, ext = key.rpartition(".")
    return head if dot and "/" not in ext else key


def thumbnail_key(key: str) -> str:
    """Where the thumbnail of the image at ``key`` is: beside it, ``<key stem>.thumb.webp``."""
    return f"{_stem(key)}.thumb.webp"


def diff_key(key: str) -> str:
    """Where the diff image of the image at ``key`` (against an earlier run) is:
    ``<key stem>.diff.png``."""
    return f"{_stem(key)}.diff.png"


def history_prefix(key: str) -> str:
    """The folder that keeps every version of the image at ``key``: ``<key stem>/``."""
    return f"{_stem(key)}/"


def version_key(key: str, stamp: str) -> str:
    """The key of the version of ``key`` shot at ``stamp`` (UTC, ``YYYYmmddTHHMMSS.fffZ``):
    ``<key stem>/<stamp>.<ext>``, so versions list in time order under
    :func:`history_prefix`."""
    ext = key.rpartition(".")[2]
    return f"{history_prefix(key)}{stamp}.{ext}"
