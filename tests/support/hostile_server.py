"""A fixture server for hostile pages: static cases from ``tests/site/hostile`` plus dynamic ones.

It runs in threads on ``127.0.0.1`` (a free port). Dynamic routes:

- ``/never``, ``/never.png``: accept the request and never answer;
- ``/drip``: an HTML page that sends one byte a second, forever;
- ``/status/<code>``: an HTML page answered with that status;
- ``/json``, ``/text``: non-HTML bodies (``application/json``, ``text/plain``);
- ``/redirect-loop``: a 302 to itself (with a counter), forever;
- ``/auth``: ``401`` with ``WWW-Authenticate: Basic``;
- ``/file.pdf``: a PDF (``application/pdf``); ``/archive.zip``: a zip sent as an attachment;
- ``/big.html``: a 10 MB HTML page.

:func:`tls_server` serves ``/`` over HTTPS with a freshly made self-signed certificate.
Stopping a server releases every request still hanging.
"""

from __future__ import annotations

import io
import ssl
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HOSTILE_DIR = Path(__file__).resolve().parent.parent / "site" / "hostile"
#: Size of ``/big.html`` in bytes.
BIG_PAGE_BYTES = 10 * 1024 * 1024
#: Longest a hanging request holds its thread (the server's stop releases it sooner).
HANG_LIMIT = 120.0

MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@cache
def big_page() -> bytes:
    """A 10 MB HTML page of plain paragraphs."""
    head = b"<!doctype html><html><head><meta charset='utf-8'><title>Big page</title></head><body>"
    paragraph = b"<p>" + b"All work and no play makes a big page. " * 25 + b"</p>\n"
    count = (BIG_PAGE_BYTES - len(head)) // len(paragraph)
    return head + paragraph * count + b"</body></html>"


@cache
def zip_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "not a page\n" * 1000)
    return buffer.getvalue()


class _HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    stopping: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # browsers hang up on these pages on purpose


class HostileHandler(SimpleHTTPRequestHandler):
    server: _HostileServer

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=str(HOSTILE_DIR), **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _hang(self) -> None:
        self.server.stopping.wait(HANG_LIMIT)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path in ("/never", "/never.png"):
            self._hang()
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<!doctype html><title>Drip</title><p>")
            deadline = time.monotonic() + HANG_LIMIT
            while not self.server.stopping.is_set() and time.monotonic() < deadline:
                self.wfile.write(b".")
                self.wfile.flush()
                self.server.stopping.wait(1)
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            body = f"<!doctype html><title>Status {code}</title><h1>Status {code}</h1>"
            self._send(code, body.encode(), "text/html; charset=utf-8")
        elif path == "/json":
            self._send(200, b'{"hello": "world", "list": [1, 2, 3]}', "application/json")
        elif path == "/text":
            self._send(200, b"plain text, not HTML\n" * 20, "text/plain; charset=utf-8")
        elif path == "/redirect-loop":
            count = int(parts.query or 0) + 1
            self._send(302, b"", "text/plain", Location=f"/redirect-loop?{count}")
        elif path == "/auth":
            body = b"<!doctype html><title>Unauthorized</title><h1>Log in first</h1>"
            self._send(401, body, "text/html", WWW_Authenticate='Basic realm="hostile"')
        elif path == "/file.pdf":
            self._send(200, MINIMAL_PDF, "application/pdf")
        elif path == "/archive.zip":
            self._send(
                200,
                zip_archive(),
                "application/zip",
                Content_Disposition='attachment; filename="archive.zip"',
            )
        elif path == "/big.html":
            self._send(200, big_page(), "text/html; charset=utf-8")
        else:
            super().do_GET()


@dataclass
class HostileSite:
    """A running hostile fixture server; ``url("/x")`` is an absolute URL on it."""

    base_url: str
    server: ThreadingHTTPServer

    def url(self, path: str = "/") -> str:
        return self.base_url + path


@contextmanager
def hostile_site(host: str = "127.0.0.1") -> Iterator[HostileSite]:
    """Serve the hostile cases on ``host`` while the block runs."""
    server = _HostileServer((host, 0), HostileHandler)
    server.stopping = threading.Event()
    threading.Thread(target=server.serve_forever, name="hostile-site", daemon=True).start()
    try:
        yield HostileSite(f"http://{host}:{server.server_address[1]}", server)
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


class _TLSHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        body = b"<!doctype html><title>Self-signed</title><h1>Untrusted certificate</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def tls_server(directory: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """An HTTPS server with a self-signed certificate (made with ``openssl``); yields its URL."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _HostileServer((host, 0), _TLSHandler)
    server.stopping = threading.Event()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="tls-site", daemon=True).start()
    try:
        yield f"https://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
