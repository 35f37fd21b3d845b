"""Tunnels of the egress proxy: bytes relayed both ways, untouched.

After ``CONNECT`` (HTTPS, ``wss:``) or a ``101 Switching Protocols`` answer (``ws:`` over plain
HTTP) the proxy only copies bytes: TLS stays end to end, no certificate of ours. Each
direction stops at EOF or after ``idle_timeout`` seconds of silence, and the tunnel ends when
either direction does.
"""

from __future__ import annotations

import asyncio
import contextlib

from screenshots.egress.http1 import CHUNK


async def pipe(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, idle_timeout: float
) -> None:
    """Copy ``source`` to ``sink`` until EOF, silence or a network error."""
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        while True:
            async with asyncio.timeout(idle_timeout):
                data = await source.read(CHUNK)
            if not data:
                return
            sink.write(data)
            await sink.drain()


async def relay_both(
    browser: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    origin: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    idle_timeout: float,
) -> None:
    """Copy both ways until either direction ends."""
    pipes = [
        asyncio.ensure_future(pipe(browser[0], origin[1], idle_timeout)),
        asyncio.ensure_future(pipe(origin[0], browser[1], idle_timeout)),
    ]
    try:
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
