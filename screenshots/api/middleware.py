"""ASGI middleware: request body limits, response counting, and slowing down wrong keys.

All are plain ASGI (no per-request objects), so they cost little under load.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from screenshots.api import metrics
from screenshots.api.errors import retry_after_seconds
from screenshots.api.ratelimit import RateLimiter


class BodyLimitMiddleware:
    """413 for a request body larger than ``limit_for(scope)`` bytes.

    A ``Content-Length`` over the limit is refused before reading; a body without one (chunked)
    is counted as it is read, and reading stops with a 413 once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], tuple[int, str] | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        found = self.limit_for(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        limit, setting = found
        message = f"the request body is larger than {limit} bytes ({setting})"
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_json(send, 413, message)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, message)
            return event

        await self.app(scope, limited_receive, send)


class ResponseCountMiddleware:
    """Counts responses by status code in ``screenshots_api_responses_total``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(event: Message) -> None:
            if event["type"] == "http.response.start":
                metrics.RESPONSES.labels(code=str(event["status"])).inc()
            await send(event)

        await self.app(scope, receive, counting_send)


class AuthFailureMiddleware:
    """429 for an address that failed authentication too often: guessing keys is slowed down.

    Every 401 answered under ``/v1`` counts against the client's address in
    ``limiter_for(scope)`` (shared by the replicas in broker mode, see
    :mod:`screenshots.api.ratelimit`). Once over, *every* ``/v1`` request from that address gets
    429 with ``Retry-After`` before its key is even looked at, so an attacker cannot tell a
    right key from a wrong one while blocked. The address is the ASGI client's: behind a
    proxy, run uvicorn with ``--forwarded-allow-ips`` so it is the real client's.
    """

    def __init__(self, app: ASGIApp, limiter_for: Callable[[Scope], RateLimiter | None]) -> None:
        self.app = app
        self.limiter_for = limiter_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter_for(scope) if scope["type"] == "http" else None
        if limiter is None or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        wait = limiter.blocked_for(address)
        if wait > 0:
            metrics.REJECTIONS.labels(reason=limiter.reason).inc()
            seconds = retry_after_seconds(wait)
            await _send_json(
                send,
                429,
                f"too many failed authentications from {address}: at most {limiter.burst} "
                f"at once, then {limiter.rate:g} per second; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )
            return

        async def counting_send(event: Message) -> None:
            if event["type"] == "http.response.start" and event["status"] == 401:
                limiter.wait_time(address)
            await send(event)

        await self.app(scope, receive, counting_send)


class StartupErrorMiddleware:
    """Turns a configuration error at start-up into one line instead of a traceback.

    Starlette reports a failed start-up to the server with the traceback as its message; for a
    :class:`~screenshots.core.errors.ConfigurationError` the last line (the message naming the
    setting) is all
    a person needs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def short_send(event: Message) -> None:
            if event["type"] == "lifespan.startup.failed":
                lines = str(event.get("message", "")).strip().splitlines()
                marker = "ConfigurationError: "
                if lines and marker in lines[-1]:
                    reason = lines[-1].split(marker, 1)[1]
                    event = {**event, "message": f"configuration error: {reason}"}
            await send(event)

        await self.app(scope, receive, short_send)


async def _send_json(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    import json

    body = json.dumps({"detail": detail}).encode("utf-8")
    extra = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
