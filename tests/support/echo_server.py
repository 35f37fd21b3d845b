"""A small server that tells what a browser sent: headers and cookies, and which paths it asked.

For the engine conformance suite (``tests/test_engine_conformance.py``), on loopback:

- ``/echo``: a page whose title is a JSON object of the request's ``User-Agent``,
  ``Accept-Language``, ``Cookie`` and every ``X-`` header;
- ``/block``: a page that asks for a font, a script, a style sheet and an image of this
  server, and an image of an ad host (``ad.doubleclick.net``);
- ``/res/<name>``: those resources (empty bodies of the right type).

Every path asked is recorded in :attr:`Echo.paths`, so a test can tell what was never
requested (blocked).
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BLOCK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>block</title>
<link rel="preload" href="/res/font.woff2" as="font" type="font/woff2" crossorigin>
<link rel="stylesheet" href="/res/blockme.css">
<script src="/res/blockme.js"></script></head>
<body><img src="/res/picture.png" width="10" height="10" alt="picture">
<img src="http://ad.doubleclick.net/ad.png" width="10" height="10" alt="ad"></body></html>"""

TYPES = {
    ".woff2": "font/woff2",
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
}


@dataclass
class Echo:
    """The running server; ``url("/echo")`` is an absolute URL."""

    base_url: str
    server: ThreadingHTTPServer
    paths: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url + path


def start_echo() -> Echo:
    echo: Echo | None = None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            assert echo is not None
            echo.paths.append(self.path)
            if self.path.startswith("/echo"):
                seen = {
                    name.lower(): value
                    for name, value in self.headers.items()
                    if name.lower().startswith("x-")
                    or name.lower() in ("user-agent", "accept-language", "cookie")
                }
                title = html.escape(json.dumps(seen, sort_keys=True))
                page = f"<!doctype html><html><head><title>{title}</title></head></html>"
                self._send(page.encode("utf-8"), "text/html; charset=utf-8")
            elif self.path.startswith("/block"):
                self._send(BLOCK_PAGE.encode("utf-8"), "text/html; charset=utf-8")
            elif self.path.startswith("/res/"):
                suffix = "." + self.path.rsplit(".", 1)[-1]
                self._send(b"", TYPES.get(suffix, "application/octet-stream"))
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    echo = Echo(base_url=f"http://127.0.0.1:{server.server_address[1]}", server=server)
    threading.Thread(target=server.serve_forever, name="echo", daemon=True).start()
    return echo


@pytest.fixture(scope="session")
def echo_server() -> Iterator[Echo]:
    """The echo server, for the whole session."""
    running = start_echo()
    yield running
    running.server.shutdown()
    running.server.server_close()
