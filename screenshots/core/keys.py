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
