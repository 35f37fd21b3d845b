"""The API's errors: every 4xx carries a ``detail`` that says what is wrong and what to do.

Bodies are ``{"detail": "<message>"}``, the shape FastAPI uses, so clients handle one format.
"""

from __future__ import annotations

import math


class ApiError(Exception):
    """An HTTP error answered as ``{"detail": ...}`` with ``status`` and optional headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class Busy(ApiError):
    """429: no capacity now (rate limit, full pool or full queue); retry after ``retry_after``."""

    def __init__(self, detail: str, retry_after: float, reason: str) -> None:
        self.retry_after = retry_after_seconds(retry_after)
        self.reason = reason
        super().__init__(429, detail, headers={"Retry-After": str(self.retry_after)})


#: Most seconds a ``Retry-After`` asks a client to wait.
MAX_RETRY_AFTER = 60


def retry_after_seconds(seconds: float) -> int:
    """``Retry-After`` is whole seconds: round up, at least 1, at most :data:`MAX_RETRY_AFTER`."""
    if not math.isfinite(seconds):
        return MAX_RETRY_AFTER
    return max(1, min(MAX_RETRY_AFTER, math.ceil(seconds)))


def not_found(what: str, ident: str) -> ApiError:
    """404 for an id that does not exist *or belongs to another key* (no way to tell them apart)."""
    return ApiError(404, f"no {what} with id {ident!r} for this API key")
