"""HTTP/1.1 framing for the egress proxy, handed to h11.

The proxy is an HTTP server to the browser and an HTTP client to each origin. Each side is an
:class:`H11Stream`: an :class:`h11.Connection` (``SERVER`` toward the browser, ``CLIENT``
toward the origin) over an asyncio stream. h11 reads and writes request and status lines,
headers, ``Content-Length`` and chunked bodies, trailers, keep-alive, interim answers and the
switch to a tunnel (``CONNECT``, ``101 Switching Protocols``); what it refuses becomes a
:class:`HTTPError` that the proxy answers with: ``400`` for a malformed request (``431`` for a
header block over :data:`HEAD_LIMIT`), ``502`` for a malformed answer from the site.

Kept on top of h11, because a proxy must be stricter than a server: only ``HTTP/1.x``, no
request with both ``Content-Length`` and ``Transfer-Encoding`` (h11 lets ``Transfer-Encoding``
win, a request-smuggling shape), no credentials in the request target, and blank lines before
a request line are skipped as RFC 9112 section 2.2 asks (h11 refuses them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import h11

#: Largest request or response header block, in bytes (Chromium's own limit is 256 KiB).
HEAD_LIMIT = 256 * 1024
#: Bytes read at a time.
CHUNK = 256 * 1024

_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class HTTPError(Exception):
    """The proxy answers ``status`` with ``text`` and closes the browser's connection."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


class H11Stream:
    """One side of the proxy: an h11 state machine over an asyncio stream.

    ``role`` is :data:`h11.SERVER` toward the browser (its errors are the browser's: ``400``,
    ``431``) and :data:`h11.CLIENT` toward an origin (its errors are the site's: ``502``).
    Every read waits at most ``idle_timeout`` seconds.
    """

    def __init__(
        self,
        role: type[h11.CLIENT] | type[h11.SERVER],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        idle_timeout: float,
    ) -> None:
        self.conn = h11.Connection(role, max_incomplete_event_size=HEAD_LIMIT)
        self.reader, self.writer = reader, writer
        self.idle_timeout = idle_timeout
        self._browser = role is h11.SERVER

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        """The next event from the peer, reading as needed; ``h11.ConnectionClosed`` at EOF."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise self._error(exc) from None
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]  # h11's stubs: NEED_DATA excluded
            async with asyncio.timeout(self.idle_timeout):
                data = await self.reader.read(CHUNK)
            idle = conn.their_state is h11.IDLE or conn.their_state is h11.SEND_RESPONSE
            if idle and not conn.trailing_data[0]:  # nothing of the next message yet
                if not data and not self._browser and conn.their_state is h11.SEND_RESPONSE:
                    # The site closed unanswered (say a kept-alive connection it timed out):
                    # the browser's connection closes unanswered too, as a direct one would.
                    raise ConnectionResetError("the site closed the connection before answering")
                if data and self._browser and conn.their_state is h11.IDLE:
                    data = data.lstrip(b"\r\n")  # blank lines before a request line
                    if not data:
                        continue
            conn.receive_data(data)

    def send(self, event: h11.Event) -> None:
        """Serialise ``event`` (h11 checks it fits the state) and write it."""
        data = self.conn.send(event)
        if data:
            self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def trailing(self) -> bytes:
        """Bytes received after the last event (after a switch: the tunnel's first bytes)."""
        return self.conn.trailing_data[0]

    def next_cycle(self) -> bool:
        """Get ready for the next request on this connection; whether it may carry one."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            return True
        return False

    def answer(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """The proxy's own complete ``Connection: close`` answer, if one may still be sent.

        Once the site's answer has started going to the browser it cannot be replaced: the
        browser gets the connection closed instead.
        """
        body = (text + "\n").encode("utf-8")
        fields = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            ("Proxy-Connection", "close"),
        ]
        for name, value in (headers or {}).items():
            fields.append((name, value.encode("ascii", "replace").decode("ascii")))
        response = h11.Response(
            status_code=status, reason=_PHRASES.get(status, "Error"), headers=fields
        )
        try:
            self.send(response)
            self.send(h11.Data(data=body))  # refused after a HEAD request: no body then
            self.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            pass

    def _error(self, exc: h11.RemoteProtocolError) -> HTTPError:
        too_large = exc.error_status_hint == 431
        if self._browser:
            if too_large:
                return HTTPError(431, "request header block too large")
            return HTTPError(400, f"malformed request: {exc}")
        if too_large:
            return HTTPError(502, "the site's response header block is too large")
        return HTTPError(502, f"the site sent a malformed response: {exc}")


def split_authority(authority: str, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) → ``(host, port)``; refuses user info."""
    if "@" in authority:
        raise HTTPError(400, "credentials in the proxy request target are refused")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise HTTPError(400, "bad IPv6 host")
        host, rest = authority[1:end], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        host, sep, port_text_raw = authority.rpartition(":")
        if not sep:
            host, port_text_raw = authority, ""
        port_text = port_text_raw
    if port_text is None or not host:
        raise HTTPError(400, f"bad request target {authority!r}")
    if not port_text:
        if default_port is None:
            raise HTTPError(400, "CONNECT needs a port")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise HTTPError(400, f"bad port in {authority!r}")
    return host, int(port_text)


def check_request(request: h11.Request) -> None:
    """What the proxy refuses that h11 lets through (see the module's docstring)."""
    if request.http_version not in (b"1.0", b"1.1"):
        raise HTTPError(400, "malformed request line")
    names = {name.lower() for name, _ in request.headers.raw_items()}
    if b"transfer-encoding" in names and b"content-length" in names:
        raise HTTPError(400, "ambiguous request body framing")


def tokens(headers: Iterable[tuple[bytes, bytes]], *names: bytes) -> set[bytes]:
    """The lower-cased comma-separated tokens of the headers ``names`` (lower-case).

    ``headers`` as ``h11.Headers.raw_items()`` gives them: a list is much faster to go
    through than ``h11.Headers`` itself.
    """
    found: set[bytes] = set()
    for name, value in headers:
        if name.lower() in names:
            found.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return found
