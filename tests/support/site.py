"""A local web site for browser tests: static pages from ``tests/site`` plus a few dynamic routes.

No test needs the internet. The server runs in a thread on a free loopback port.

Dynamic routes:
- ``/status/<code>``: an HTML page answered with that HTTP status;
- ``/redirect?to=<path>``: a 302 to ``<path>``;
- ``/slow?seconds=<s>``: answers after ``s`` seconds;
- ``/page/<n>``: a generated page titled ``Page <n>`` (for runs over many distinct URLs);
- ``/size``: echoes the viewport size the page sees, as its title;
- ``/cached.css``: a style sheet browsers may cache for an hour; the site counts its requests
  (``Site.cached_requests``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

SITE_DIR = Path(__file__).resolve().parent.parent / "site"

PAGE_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:0;background:{color}}} h1{{padding:40px}}</style>
</head><body><h1>{title}</h1><p>{body}</p></body></html>"""

COLORS = ["#f4a261", "#2a9d8f", "#e9c46a", "#264653", "#e76f51", "#8ab17d"]


class SiteHandler(SimpleHTTPRequestHandler):
    server_version = "TestSite/1.0"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=str(SITE_DIR), **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _html(self, status: int, html: str) -> None:
        body = html.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._html(code, PAGE_TEMPLATE.format(title=f"Status {code}", color="#fff", body=""))
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.get("to", ["/"])[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(float(query.get("seconds", ["5"])[0]))
            self._html(200, PAGE_TEMPLATE.format(title="Slow", color="#fff", body="finally"))
        elif path == "/cached.css":
            self.server.cached_requests += 1  # type: ignore[attr-defined]
            body = b"h1 { color: #123456 }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path.startswith("/page/"):
            n = int(path.rsplit("/", 1)[1] or 0)
            color = COLORS[n % len(COLORS)]
            self._html(200, PAGE_TEMPLATE.format(title=f"Page {n}", color=color, body="x" * n))
        else:
            super().do_GET()


@dataclass
class Site:
    """A running test site. ``url("/x.html")`` gives the absolute URL of a path."""

    base_url: str
    server: ThreadingHTTPServer

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def cached_requests(self) -> int:
        """How many times ``/cached.css`` was requested (a cache hit makes no request)."""
        return int(self.server.cached_requests)  # type: ignore[attr-defined]


def start_site(host: str = "127.0.0.1") -> Site:
    server = ThreadingHTTPServer((host, 0), SiteHandler)
    server.daemon_threads = True
    server.cached_requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="test-site", daemon=True).start()
    port = server.server_address[1]
    return Site(base_url=f"http://{host}:{port}", server=server)


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The local test site, for the whole session."""
    running = start_site()
    yield running
    running.server.shutdown()
    running.server.server_close()
