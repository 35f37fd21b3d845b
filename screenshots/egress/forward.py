"""Plain-HTTP forwarding: one absolute-form request sent on to its origin, the answer relayed.

The browser's request (``GET http://host:port/path HTTP/1.1``) goes to the origin in origin-form
(``GET /path HTTP/1.1``) without the headers that concern only the hop to the proxy
(``Connection`` and what it names, ``Proxy-Connection``, ``Keep-Alive``,
``Proxy-Authorization``, ``TE``, ``Upgrade``). h11 frames both sides: bodies by
``Content-Length`` or chunked (trailers kept), interim answers (``100``, ``103``) passed on, and
an answer the origin ends by closing goes to the browser chunked. The origin connection is
kept for the next request to the same host and port, and is closed (the next request dials
and is checked again) when the request is for another. A WebSocket upgrade (``101``) turns the
connection into a tunnel. An origin asking for *proxy* credentials (``407``) gets the browser
a ``502``: only the proxy may ask for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h11

from screenshots.egress.dial import host_key
from screenshots.egress.http1 import H11Stream, HTTPError, split_authority, tokens
from screenshots.egress.relay import relay_both

if TYPE_CHECKING:
    from screenshots.egress.session import Session

#: Request headers that concern only the hop to the proxy.
_HOP_HEADERS = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization", b"te", b"upgrade"}
)


async def forward(session: Session, request: h11.Request) -> bool:
    """Send one request on to its origin and relay the answer; whether to keep going."""
    host, port, outgoing, client_close = _outgoing(request)
    browser = session.browser
    upstream, origin = session.upstream, session.origin
    same = session.target == (host, port) or (
        upstream is not None and upstream.key == (host_key(host), port)
    )
    if upstream is None or origin is None or not same:
        session.drop_upstream()
        opened = await session.open(host, port)
        if opened is None:
            return False
        origin = session.use(opened)
        session.target = (host, port)
    origin.send(outgoing)
    await _copy(browser, origin, HTTPError(400, "the request body was cut short"))
    await origin.drain()

    while True:  # interim answers (100 Continue, 103 Early Hints) go on as they come
        response = await origin.next_event()
        if not isinstance(response, h11.InformationalResponse):
            break
        browser.send(
            h11.InformationalResponse(
                status_code=response.status_code,
                headers=response.headers.raw_items(),
                reason=response.reason,
            )
        )
        if response.status_code == 101:  # h11 accepts it only after an Upgrade request
            await _switch(session, origin)
            return False
    if not isinstance(response, h11.Response):
        raise HTTPError(502, "the site sent no answer")
    if response.status_code == 407:  # only the proxy may ask for proxy credentials
        session.drop_upstream()
        raise HTTPError(502, "the site answered 407 Proxy Authentication Required")
    headers = response.headers.raw_items()
    reusable = response.http_version == b"1.1" and b"close" not in tokens(headers, b"connection")
    if client_close or not reusable:  # the browser reads "close" in the answer too
        headers = [(name, value) for name, value in headers if name.lower() != b"connection"]
        headers.append((b"Connection", b"close"))
    browser.send(
        h11.Response(status_code=response.status_code, headers=headers, reason=response.reason)
    )
    await _copy(origin, browser, HTTPError(502, "the site's answer was cut short"))
    await browser.drain()
    if not origin.next_cycle():  # the origin closes, or ended the body by closing
        session.drop_upstream()
    return browser.next_cycle()


async def _copy(source: H11Stream, sink: H11Stream, cut_short: HTTPError) -> None:
    """The body of the message being read from ``source``, sent on to ``sink``."""
    while True:
        event = await source.next_event()
        if isinstance(event, h11.Data):
            sink.send(event)
            await sink.drain()
        elif isinstance(event, h11.EndOfMessage):
            if not event.headers:
                sink.send(event)
            elif sink.conn.their_http_version == b"1.0":
                sink.send(h11.EndOfMessage())  # an HTTP/1.0 browser cannot read trailers
            else:
                sink.send(h11.EndOfMessage(headers=event.headers.raw_items()))  # names as sent
            return
        else:
            raise cut_short


async def _switch(session: Session, origin: H11Stream) -> None:
    """After ``101 Switching Protocols``: relay bytes both ways (a WebSocket)."""
    browser, upstream = session.browser, session.upstream
    assert upstream is not None
    early_answer, early_request = origin.trailing(), browser.trailing()
    if early_answer:
        browser.writer.write(early_answer)
    if early_request:
        upstream.writer.write(early_request)
    await browser.drain()
    await relay_both(
        (browser.reader, browser.writer), (upstream.reader, upstream.writer), session.idle_timeout
    )


def _outgoing(request: h11.Request) -> tuple[str, int, h11.Request, bool]:
    """``(host, port, the request for the origin, whether the browser asked to close)``."""
    target = request.target.decode("ascii")
    if not target.lower().startswith("http://"):
        raise HTTPError(400, "this is a forward proxy: send absolute http:// URLs")
    rest = target[len("http://") :]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:] or "/"
    if path.startswith("?"):
        path = "/" + path
    host, port = split_authority(authority, 80)
    raw = request.headers.raw_items()  # one list, names as sent (h11 iterates slowly)
    hop = tokens(raw, b"connection", b"proxy-connection")
    upgrades = [value for name, value in raw if name.lower() == b"upgrade"]
    upgrade = bool(upgrades) and b"upgrade" in tokens(raw, b"connection")
    headers = [
        (name, value)
        for name, value in raw
        if name.lower() not in _HOP_HEADERS and name.lower() not in hop
    ]
    if upgrade:
        headers += [(b"Upgrade", upgrades[0]), (b"Connection", b"Upgrade")]
    if not any(name.lower() == b"host" for name, _ in headers):  # HTTP/1.0 may leave it out
        headers.insert(0, (b"Host", authority.encode("ascii")))
    outgoing = h11.Request(method=request.method, target=path.encode("ascii"), headers=headers)
    return host, port, outgoing, b"close" in hop
