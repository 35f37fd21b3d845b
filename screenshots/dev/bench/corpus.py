"""The benchmark corpus: Debian's python3.11-doc HTML pages, served on loopback.

``python -m screenshots.dev.bench.corpus ROOT`` serves ``ROOT`` with a threaded HTTP/1.1
(keep-alive) static
server on a free loopback port and prints ``port N`` once it listens. The benchmark runs it
as its own process so it competes with the browsers for CPU like any web server would, and
never with the benchmark's own Python threads (GIL).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Where Debian's python3.11-doc puts its HTML.
DOC_ROOT = Path("/usr/share/doc/python3.11/html")
#: Seconds the server may take to print its port.
START_TIMEOUT = 15.0


class BenchError(RuntimeError):
    """A service or tool the benchmark needs failed: one line saying why."""


def list_pages(root: Path = DOC_ROOT) -> list[str]:
    """Every HTML page under ``root`` as a sorted list of relative POSIX paths.

    Sphinx's ``_static``/``_sources``/``_images``/``_downloads`` folders hold no pages.
    """
    if not root.is_dir():
        raise BenchError(
            f"the corpus {root} is missing: install Debian's python3.11-doc (make install)"
        )
    pages = []
    for path in root.rglob("*.html"):
        relative = path.relative_to(root)
        if relative.parts[0].startswith("_"):
            continue
        pages.append(relative.as_posix())
    if not pages:
        raise BenchError(f"no HTML pages under {root}")
    return sorted(pages)


def spread(items: Sequence[str], count: int | None) -> list[str]:
    """``count`` items evenly spaced over ``items`` (all of them when ``count`` is None/too big).

    Keeps the order; a small sample still covers every part of the corpus (C API, library,
    tutorial...) instead of the first ``count`` pages alphabetically.
    """
    if count is None or count >= len(items):
        return list(items)
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def page_urls(base: str, pages: Sequence[str]) -> list[str]:
    """Absolute URLs of ``pages`` on the server at ``base`` (``http://127.0.0.1:PORT``)."""
    base = base.rstrip("/")
    return [f"{base}/{page}" for page in pages]


def stub_urls(count: int, first: int = 1) -> list[str]:
    """``count`` distinct synthetic URLs for the stub engine (never loaded), from ``first``.

    Each measured run gets its own range, so no run can find another's objects (a cache of
    recent shots, resumed results) and every URL is really captured and stored.
    """
    return [f"http://bench.example/{n}" for n in range(first, first + count)]


def warmup_urls(urls: Sequence[str]) -> list[str]:
    """The same pages under other URLs (``?warmup``): they warm the browsers without
    leaving objects that the measured run could reuse."""
    return [f"{url}{'&' if '?' in url else '?'}warmup" for url in urls]


def write_url_file(path: Path, urls: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(url + "\n" for url in urls), encoding="utf-8")
    return path


# -- the server ----------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: browsers reuse connections

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _serve(root: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()


class CorpusServer:
    """The static server process; ``base`` is its ``http://127.0.0.1:PORT``."""

    def __init__(self, root: Path = DOC_ROOT) -> None:
        self.root = root
        self.process: subprocess.Popen[str] | None = None
        self.base = ""

    def start(self) -> CorpusServer:
        repo = Path(__file__).resolve().parents[3]
        env = dict(os.environ, PYTHONPATH=str(repo))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "screenshots.dev.bench.corpus", str(self.root)],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("port ") or time.monotonic() > deadline:
            error = self.process.stderr.read() if self.process.stderr else ""
            self.stop()
            raise BenchError(f"the static corpus server did not start: {line or error[-300:]}")
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.bench.corpus")
    parser.add_argument("root", type=Path, nargs="?", default=DOC_ROOT)
    args = parser.parse_args(argv)
    _serve(args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
