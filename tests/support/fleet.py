"""API replicas as separate ``uvicorn api:app`` processes, and a receiver of job callbacks."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from support.apiserver import free_port
from support.workers import script

#: Seconds a replica may take to answer ``/healthz``.
START_TIMEOUT = 30.0


@dataclass
class Replica:
    """One ``uvicorn api:app`` process."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease released (a crashed or evicted pod)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_replica(env: dict[str, str], log_dir: Path, name: str) -> Replica:
    """``uvicorn api:app`` run as a user runs it: the console script, from a directory that
    is not the checkout, without PYTHONPATH."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    clean = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    with log_path.open("wb") as log:  # the server writes to its own copy
        process = subprocess.Popen(
            [
                script("uvicorn"), "api:app", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log",
            ],
            cwd=log_dir,
            env=clean,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(name, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"replica {name} exited:\n{replica.log()[-3000:]}")
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(replica.base + "/healthz", timeout=1).status_code == 200:
                return replica
        if time.monotonic() > deadline:
            replica.stop()
            pytest.fail(f"replica {name} did not start in time:\n{replica.log()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A callback receiver on loopback: records every POST, answers 200."""

    url: str
    received: list[Received] = field(default_factory=list)


@contextlib.contextmanager
def callback_receiver() -> Iterator[Receiver]:
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(Received(dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
