"""The egress proxy on its own, spoken to with raw sockets: framing, pinning, limits, refusals.

The "origin" is a local HTTP/1.1 server on ``127.0.0.1`` (allowed here); the secret server on
``127.0.0.2`` (refused) must never be reached. A fake resolver stands in for DNS where a test
needs a name to resolve to chosen addresses, or to change its answer (rebinding).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import h11
import pytest

from screenshots.egress.policy import EgressPolicy, parse_allow_list
from screenshots.egress.proxy import EgressProxy
from support.egress_servers import SecretServer, secret_server


class _Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _OriginServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _reply(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        port = self.server.server_address[1]
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
        elif self.path == "/upgrade":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            data = self.rfile.read(4)
            self.wfile.write(b"echo:" + data)
            self.close_connection = True
        elif self.path == "/hang":
            self.server.hung.set()
            self.rfile.read(1)  # returns when the proxy closes our connection
            self.server.released.set()
            self.close_connection = True
        elif self.path == "/407":
            self._reply(407, b"auth", Proxy_Authenticate="Basic")
        elif self.path == "/big":
            self._reply(200, b"x" * (8 * 1024 * 1024))

        else:
            self._reply(200, f"port {port} path {self.path}".encode())

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")  # the length a GET would have
        self.end_headers()

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.read(2)
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(200, b"got " + body)


class _OriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Origin)
        self.paths: list[str] = []
        self.hung = threading.Event()
        self.released = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def origin() -> Iterator[_OriginServer]:
    server = _OriginServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def secret() -> Iterator[SecretServer]:
    with secret_server("127.0.0.2") as server:
        yield server
    assert server.hits == 0, server.peers


RESOLVED: dict[str, list[list[str]]] = {}


async def _fake_resolver(host: str, port: int) -> list[str]:
    if host == "no-resolver.test":  # what getaddrinfo says on a host that lost its network
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    answers = RESOLVED.get(host)
    if not answers:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def proxy() -> Iterator[EgressProxy]:
    with EgressProxy(
        EgressPolicy(parse_allow_list("127.0.0.1")), resolver=_fake_resolver, idle_timeout=5
    ) as running:
        yield running


def _connect(proxy: EgressProxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    return sock


def _read_response(sock: socket.socket, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    """One response, read with h11: status line, headers (trailers included), decoded body."""
    reader = h11.Connection(h11.CLIENT)
    reader.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
    reader.send(h11.EndOfMessage())
    status, headers, body = "", {}, b""
    while True:
        event = reader.next_event()
        if event is h11.NEED_DATA:
            reader.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            version, reason = event.http_version.decode(), event.reason.decode()
            status = f"HTTP/{version} {event.status_code} {reason}"
            headers = {name.decode(): value.decode() for name, value in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            headers.update((name.decode(), value.decode()) for name, value in event.headers)
            return status, headers, body


def _get(sock: socket.socket, url: str, *extra: str) -> tuple[str, dict[str, str], bytes]:
    host = url.split("/")[2]
    lines = [f"GET {url} HTTP/1.1", f"Host: {host}", "Proxy-Connection: keep-alive", *extra]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return _read_response(sock)


def _send_connect(sock: socket.socket, authority: str) -> None:
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())


# -- plain HTTP ---------------------------------------------------------------------------------


def test_keep_alive_connection_is_routed_per_request(
    proxy: EgressProxy, origin: _OriginServer
) -> None:
    other = _OriginServer()
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with _connect(proxy) as sock:
            for server in (origin, other, origin):
                status, _, body = _get(sock, f"http://127.0.0.1:{server.port}/x?y=1")
                assert status == "HTTP/1.1 200 OK"
                assert body == f"port {server.port} path /x?y=1".encode()
            status, headers, body = _get(sock, f"http://127.0.0.1:{origin.port}/chunked")
            assert headers["transfer-encoding"] == "chunked"
            assert body == b"hello chunked world" and headers["x-trailer"] == "yes"
            status, _, body = _get(sock, f"http://127.0.0.1:{origin.port}")
            assert body == f"port {origin.port} path /".encode()
    finally:
        other.shutdown()
        other.server_close()
    assert proxy.blocked_count == 0


def test_close_delimited_response(proxy: EgressProxy, origin: _OriginServer) -> None:
    with _connect(proxy) as sock:
        status, headers, body = _get(sock, f"http://127.0.0.1:{origin.port}/close")
        assert body == b"until the end"
        assert headers["connection"] == "close"
        assert headers["transfer-encoding"] == "chunked"  # the browser sees where it ends


def test_head_answer_has_no_body(proxy: EgressProxy, origin: _OriginServer) -> None:
    url = f"http://127.0.0.1:{origin.port}/h"
    with _connect(proxy) as sock:
        sock.sendall(f"HEAD {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = _read_response(sock, "HEAD")
        assert (status, headers["content-length"], body) == ("HTTP/1.1 200 OK", "1000", b"")
        _, _, body = _get(sock, url)  # the connection goes on with the next request
    assert body == f"port {origin.port} path /h".encode()


def test_blank_lines_before_a_request_are_skipped(
    proxy: EgressProxy, origin: _OriginServer
) -> None:
    with _connect(proxy) as sock:
        status, _, body = _get(sock, f"http://127.0.0.1:{origin.port}/a")
        sock.sendall(b"\r\n")  # as some clients send after a request body
        status, _, body = _get(sock, f"http://127.0.0.1:{origin.port}/b")
    assert status == "HTTP/1.1 200 OK"
    assert body == f"port {origin.port} path /b".encode()


def test_request_bodies(proxy: EgressProxy, origin: _OriginServer) -> None:
    with _connect(proxy) as sock:
        url = f"http://127.0.0.1:{origin.port}/post"
        sock.sendall(f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde".encode())
        assert _read_response(sock)[2] == b"got abcde"
        sock.sendall(
            f"POST {url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".encode()
        )
        assert _read_response(sock)[2] == b"got abcde"


def test_websocket_upgrade_over_plain_http(proxy: EgressProxy, origin: _OriginServer) -> None:
    with _connect(proxy) as sock:
        sock.sendall(
            f"GET http://127.0.0.1:{origin.port}/upgrade HTTP/1.1\r\nHost: x\r\n"
            "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(b"ping")
        assert sock.recv(100) == b"echo:ping"


def test_big_body_is_relayed_quickly(proxy: EgressProxy, origin: _OriginServer) -> None:
    with _connect(proxy) as sock:
        started = time.monotonic()
        _, _, body = _get(sock, f"http://127.0.0.1:{origin.port}/big")
        assert len(body) == 8 * 1024 * 1024
        assert time.monotonic() - started < 3


# -- refusals -----------------------------------------------------------------------------------


def test_refused_address_gets_403_with_the_reason(proxy: EgressProxy, secret: SecretServer) -> None:
    with _connect(proxy) as sock:
        status, headers, body = _get(sock, f"{secret.origin}/latest/meta-data")
    assert status == "HTTP/1.1 403 Forbidden"
    assert headers["x-egress-blocked"] == "127.0.0.2 is loopback"
    assert body == b"blocked by egress policy: 127.0.0.2 is loopback\n"
    assert proxy.blocked_count == 1
    failure = proxy.failure_for(f"{secret.origin}/anything")
    assert failure is not None and failure.blocked and failure.status == 403
    assert failure.message == "blocked by egress policy: 127.0.0.2 is loopback"


def test_connect_refused_and_allowed(
    proxy: EgressProxy, origin: _OriginServer, secret: SecretServer
) -> None:
    with _connect(proxy) as sock:
        _send_connect(sock, f"127.0.0.2:{secret.port}")
        status, headers, _ = _read_response(sock)
        assert status == "HTTP/1.1 403 Forbidden"
    with _connect(proxy) as sock:
        _send_connect(sock, f"127.0.0.1:{origin.port}")
        assert sock.recv(100) == b"HTTP/1.1 200 Connection Established\r\n\r\n"
        sock.sendall(b"GET /tunnelled HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[2] == f"port {origin.port} path /tunnelled".encode()


def test_a_name_is_refused_if_any_address_is(proxy: EgressProxy, secret: SecretServer) -> None:
    RESOLVED["mixed.test"] = [["127.0.0.1", "127.0.0.2"]]
    with _connect(proxy) as sock:
        status, headers, _ = _get(sock, f"http://mixed.test:{secret.port}/")
    assert status == "HTTP/1.1 403 Forbidden"
    assert headers["x-egress-blocked"] == "127.0.0.2 is loopback"


def test_dns_rebinding_gets_no_second_chance(
    proxy: EgressProxy, origin: _OriginServer, secret: SecretServer
) -> None:
    """The name resolves to the allowed origin, then to the secret: the checked address is
    the one dialled, and each new connection is checked again."""
    RESOLVED["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    with _connect(proxy) as sock:
        _, _, body = _get(sock, f"http://rebind.test:{origin.port}/first")
        assert body == f"port {origin.port} path /first".encode()
        # same connection, same host: the pinned upstream connection is reused
        _, _, body = _get(sock, f"http://rebind.test:{origin.port}/second")
        assert body == f"port {origin.port} path /second".encode()
    with _connect(proxy) as sock:
        status, headers, _ = _get(sock, f"http://rebind.test:{origin.port}/third")
    assert status == "HTTP/1.1 403 Forbidden"
    assert origin.paths == ["/first", "/second"]


@pytest.mark.parametrize(
    ("host", "code", "message"),
    [
        ("nosuch.test", "net::ERR_NAME_NOT_RESOLVED", "unknown host nosuch.test"),
        # EAI_AGAIN says nothing about the name (the pipeline then checks the worker's own
        # network): ERR_NAME_RESOLUTION_FAILED with the resolver's words, not "unknown host".
        (
            "no-resolver.test",
            "net::ERR_NAME_RESOLUTION_FAILED",
            "could not resolve no-resolver.test: Temporary failure in name resolution",
        ),
    ],
)
def test_a_host_that_does_not_resolve_is_502_saying_why(
    proxy: EgressProxy, host: str, code: str, message: str
) -> None:
    with _connect(proxy) as sock:
        status, headers, _ = _get(sock, f"http://{host}/")
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert headers["x-egress-error"] == code
    failure = proxy.failure_for(f"http://{host}/")
    assert failure is not None and not failure.blocked
    assert failure.message == message
    assert proxy.blocked_count == 0


def test_refused_connection_is_502(proxy: EgressProxy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _connect(proxy) as sock:
        status, headers, _ = _get(sock, f"http://127.0.0.1:{port}/")
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert headers["x-egress-error"] == "net::ERR_CONNECTION_REFUSED"


def test_protected_port(proxy: EgressProxy, origin: _OriginServer) -> None:
    proxy.protect(origin.port)
    with _connect(proxy) as sock:
        status, headers, _ = _get(sock, f"http://127.0.0.1:{origin.port}/")
    assert status == "HTTP/1.1 403 Forbidden"
    assert "control port" in headers["x-egress-blocked"]
    with _connect(proxy) as sock:  # the proxy's own port is protected too
        status, _, _ = _get(sock, f"http://127.0.0.1:{proxy.port}/")
    assert status == "HTTP/1.1 403 Forbidden"
    assert origin.paths == []


@pytest.mark.parametrize(
    "request_text",
    [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # origin-form: not a proxy request
        "GET http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked"
        "\r\n\r\n",
        "GET http://user:pw@127.0.0.1:1/ HTTP/1.1\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET http://127.0.0.1:1/ HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host (RFC 9112 3.2)
        "GET http://127.0.0.1:1/ HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        "Content-Length: 2\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(proxy: EgressProxy, request_text: str) -> None:
    with _connect(proxy) as sock:
        sock.sendall(request_text.encode())
        status, _, _ = _read_response(sock)
    assert status.startswith("HTTP/1.1 400")


def test_origin_cannot_ask_for_proxy_credentials(proxy: EgressProxy, origin: _OriginServer) -> None:
    with _connect(proxy) as sock:
        status, _, _ = _get(sock, f"http://127.0.0.1:{origin.port}/407")
    assert status == "HTTP/1.1 502 Bad Gateway"


# -- resource bounds ----------------------------------------------------------------------------


def test_connection_limit() -> None:
    with EgressProxy(EgressPolicy(), max_connections=2) as small:
        held = [_connect(small) for _ in range(2)]
        time.sleep(0.2)
        with _connect(small) as third:
            status, _, body = _read_response(third)
        assert status == "HTTP/1.1 503 Service Unavailable"
        for sock in held:
            sock.close()


def test_idle_connection_is_closed() -> None:
    with EgressProxy(EgressPolicy(), idle_timeout=0.5) as quick, _connect(quick) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 3


def test_browser_hanging_up_releases_the_origin(proxy: EgressProxy, origin: _OriginServer) -> None:
    sock = _connect(proxy)
    sock.sendall(f"GET http://127.0.0.1:{origin.port}/hang HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert origin.hung.wait(5)
    sock.close()
    assert origin.released.wait(3), "the proxy kept the origin connection open"


def test_browser_hanging_up_closes_the_tunnel(proxy: EgressProxy, origin: _OriginServer) -> None:
    sock = _connect(proxy)
    _send_connect(sock, f"127.0.0.1:{origin.port}")
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    assert origin.hung.wait(5)
    sock.close()
    assert origin.released.wait(3), "the proxy kept the tunnel's origin connection open"


def test_header_block_limit(proxy: EgressProxy) -> None:
    with _connect(proxy) as sock:
        try:
            sock.sendall(b"GET http://127.0.0.1:1/ HTTP/1.1\r\nX: " + b"a" * 400_000)
        except OSError:
            pytest.skip("the proxy closed the connection before the block was sent")
        status, _, _ = _read_response(sock)
    assert status.startswith("HTTP/1.1 431")


def test_close_is_idempotent_and_stops_listening() -> None:
    running = EgressProxy(EgressPolicy()).start()
    port = running.port
    running.close()
    running.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
