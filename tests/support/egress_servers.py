"""Servers for the egress tests: an "attacker" site and a "secret" server that must stay unreached.

- :class:`SecretServer` listens on a loopback address the test's policy does *not* allow
  (``127.0.0.2`` by default, loopback and so blocked), on TCP and UDP, and counts every
  connection and datagram it receives. Every test asserts it stays at zero.
- :class:`AttackSite` serves ``tests/site/attack/`` on an allowed address. In every page,
  script and style sheet, ``SECRET_ORIGIN`` is replaced by the secret server's origin
  (``http://127.0.0.2:<port>``), ``SECRET_HOST``/``SECRET_PORT`` by its parts and
  ``SECRET_UDP_PORT`` by its UDP port. Dynamic routes:

  - ``/redirect-secret``: a 302 to ``SECRET_ORIGIN/from-redirect``;
  - ``/hold?ms=<n>``: answers after ``n`` milliseconds (pages use it to hold their load event
    until their attack has run).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ATTACK_DIR = Path(__file__).resolve().parent.parent / "site" / "attack"
#: What the test site needs exempted when the test suite runs with the default policy.
TEST_SITE_ALLOW = "127.0.0.1/32"

_TEXT_TYPES = (".html", ".js", ".css")


@dataclass
class SecretServer:
    """Counts TCP connections and UDP datagrams on ``host``; answers HTTP with "secret"."""

    host: str = "127.0.0.2"
    port: int = 0
    udp_port: int = 0
    connections: int = 0
    datagrams: int = 0
    peers: list[str] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hits(self) -> int:
        return self.connections + self.datagrams

    def start(self) -> SecretServer:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((self.host, 0))
        tcp.listen(64)
        tcp.settimeout(0.2)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.host, 0))
        udp.settimeout(0.2)
        self.port, self.udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        self._sockets = [tcp, udp]
        threading.Thread(target=self._accept, args=(tcp,), daemon=True).start()
        threading.Thread(target=self._receive, args=(udp,), daemon=True).start()
        return self

    def _accept(self, tcp: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = tcp.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self.peers.append(f"tcp {peer}")
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                conn.recv(65536)
                body = b"<title>SECRET</title>the secret"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nAccess-Control-Allow-Origin: *"
                    + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            except OSError:
                pass

    def _receive(self, udp: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                _, peer = udp.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            self.datagrams += 1
            self.peers.append(f"udp {peer}")

    def stop(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            sock.close()


class _AttackHandler(SimpleHTTPRequestHandler):
    server: _AttackServer

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=str(ATTACK_DIR), **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        secret = self.server.secret
        if parts.path == "/redirect-secret":
            self._send(302, b"", "text/plain", Location=f"{secret.origin}/from-redirect")
            return
        if parts.path == "/hold":
            time.sleep(float(query.get("ms", ["500"])[0]) / 1000)
            self._send(200, b"held", "text/plain")
            return
        file = ATTACK_DIR / parts.path.lstrip("/")
        if file.suffix in _TEXT_TYPES and file.is_file() and ATTACK_DIR in file.resolve().parents:
            text = (
                file.read_text(encoding="utf-8")
                .replace("SECRET_ORIGIN", secret.origin)
                .replace("SECRET_HOST", secret.host)
                .replace("SECRET_UDP_PORT", str(secret.udp_port))
                .replace("SECRET_PORT", str(secret.port))
            )
            types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
            self._send(200, text.encode("utf-8"), types[file.suffix] + "; charset=utf-8")
            return
        super().do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._send(200, b"<title>posted</title>", "text/html")


class _AttackServer(ThreadingHTTPServer):
    daemon_threads = True
    secret: SecretServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # pages drop their /hold requests on purpose


@dataclass
class AttackSite:
    """The attacker's site; ``url("/x.html")`` is an absolute URL on it."""

    base_url: str
    server: _AttackServer

    def url(self, path: str = "/") -> str:
        return self.base_url + path


@contextmanager
def attack_site(secret: SecretServer, host: str = "127.0.0.1") -> Iterator[AttackSite]:
    """Serve ``tests/site/attack`` on ``host`` (a free port) while the block runs."""
    server = _AttackServer((host, 0), _AttackHandler)
    server.secret = secret
    threading.Thread(target=server.serve_forever, name="attack-site", daemon=True).start()
    try:
        yield AttackSite(f"http://{host}:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def secret_server(host: str = "127.0.0.2") -> Iterator[SecretServer]:
    """A running :class:`SecretServer` on ``host``."""
    secret = SecretServer(host=host).start()
    try:
        yield secret
    finally:
        secret.stop()
