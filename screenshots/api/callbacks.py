"""Job callbacks: the summary POSTed to ``callback_url``, signed, retried with backoff.

Signature: the header ``X-Screenshots-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>``
is HMAC-SHA256, keyed with the API key that created the job, of ``"<t>." + body`` (the raw
request body bytes). A receiver recomputes it with its key, compares in constant time
(:func:`verify` does both) and rejects timestamps older than a few minutes to stop replays.

Delivery: POSTs until a 2xx answer, ``backoff`` seconds before the second and doubling (at
most :data:`MAX_BACKOFF`), each with a 10 s timeout, until ``expires_at`` (the job's end plus
``SCREENSHOT_API_CALLBACK_EXPIRY``) or ``attempts`` tries if that is not 0. Before each
attempt the host is resolved and refused if it is not a public address (unless private
callbacks are allowed), so a callback cannot be aimed at the API's own network.

Exactly once: the payload carries ``idempotency_key`` (the job's id) and so does the header
:data:`IDEMPOTENCY_HEADER`; a 2xx is recorded where every replica sees it (``acknowledged``,
a Redis marker in broker mode) and checked before each attempt (``already_sent``), so no
replica sends a callback again once one was acknowledged. A receiver that saw a key already
ignores the repeat (a replica killed between the 2xx and its marker is the only way to get one).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

log = logging.getLogger(__name__)

#: Header carrying the signature.
SIGNATURE_HEADER = "X-Screenshots-Signature"
#: Header naming the event (``job.finished``).
EVENT_HEADER = "X-Screenshots-Event"
#: Header carrying the idempotency key (the job's id): one delivery per key.
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds one delivery attempt may take.
ATTEMPT_TIMEOUT = 10.0
#: Longest pause between two attempts, in seconds.
MAX_BACKOFF = 60.0
#: Seconds a receiver should accept a signature's timestamp for (see :func:`verify`).
DEFAULT_TOLERANCE = 300


def sign(key: str, body: bytes, timestamp: int) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body`` sent at ``timestamp``."""
    digest = hmac.new(key.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    key: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` by ``key``, made recently."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(key, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class CallbackRefused(Exception):
    """The callback URL points where the API may not send requests."""


async def check_destination(url: str, allow_private: bool) -> None:
    """Raise :class:`CallbackRefused` if ``url``'s host resolves to a non-public address."""
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CallbackRefused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            raise CallbackRefused(
                f"{host} resolves to {address}, which is not a public address "
                "(SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE allows it)"
            )


@dataclass
class Delivery:
    """The outcome of a callback, as shown in the job's status."""

    url: str
    state: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Delivery:
        return cls(
            str(values["url"]),
            str(values.get("state", "pending")),
            int(values.get("attempts", 0)),
            values.get("last_error"),
        )


#: A coroutine function without arguments: a hook of :func:`deliver`.
Hook = Callable[[], Awaitable[Any]]


async def deliver(
    delivery: Delivery,
    payload: Mapping[str, Any],
    key: str,
    *,
    attempts: int,
    backoff: float,
    allow_private: bool,
    client: httpx2.AsyncClient | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    idempotency_key: str | None = None,
    expires_at: float | None = None,
    already_sent: Hook | None = None,
    acknowledged: Hook | None = None,
    progress: Hook | None = None,
) -> None:
    """POST ``payload`` to ``delivery.url`` until a 2xx, ``attempts`` tries (0: no limit) or
    ``expires_at`` (Unix time); update ``delivery`` (``progress`` is awaited after each try)."""
    if idempotency_key is not None:
        payload = {**payload, "idempotency_key": idempotency_key}
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    own = client is None
    http = client or httpx2.AsyncClient(timeout=ATTEMPT_TIMEOUT, follow_redirects=False)
    try:
        attempt = delivery.attempts
        while True:
            if already_sent is not None and await already_sent():
                delivery.state, delivery.last_error = "delivered", None
                return
            attempt += 1
            delivery.attempts = attempt
            try:
                await check_destination(delivery.url, allow_private)
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(key, body, int(time.time())),
                    EVENT_HEADER: str(payload.get("event", "job.finished")),
                    "User-Agent": "screenshots-callback/1",
                }
                if idempotency_key is not None:
                    headers[IDEMPOTENCY_HEADER] = idempotency_key
                answer = await http.post(delivery.url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    delivery.state, delivery.last_error = "delivered", None
                    if acknowledged is not None:
                        await acknowledged()
                    return
                delivery.last_error = f"HTTP {answer.status_code}"
            except CallbackRefused as exc:
                delivery.state, delivery.last_error = "failed", str(exc)
                return
            except httpx2.HTTPError as exc:
                delivery.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(
                    exc
                ).__name__
            if progress is not None:
                await progress()
            pause = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1))
            if attempts and attempt >= attempts:
                break
            if expires_at is not None and time.time() + pause > expires_at:
                break
            await sleep(pause)
        delivery.state = "failed"
        log.warning(
            "callback to host %s failed after %d attempts: %s",
            urlsplit(delivery.url).hostname,
            delivery.attempts,
            delivery.last_error,
        )
    finally:
        if own:
            await http.aclose()
