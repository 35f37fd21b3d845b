"""Serve ``demo/pages`` on a free loopback port and run the dispatcher over them.

Runs in the embedded mode (no RabbitMQ, Redis or S3): the broker and bucket variables are
ignored here. Output goes to ``demo-output/`` (override with ``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(directory: Path) -> ThreadingHTTPServer:
    """Start a static file server for ``directory`` on 127.0.0.1 and a free port."""
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(QuietHandler, directory=str(directory))
    )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.demo")
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--engine", default="selenium")
    args, extra = parser.parse_known_args()
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENSHOT_BUCKET"):
        os.environ.pop(name, None)
    # The example pages are on loopback, which the egress policy blocks: exempt that address
    # (and only it) for the demo.
    os.environ["SCREENSHOT_EGRESS_ALLOW"] = "127.0.0.1"
    server = serve(HERE / "pages")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    args.out.mkdir(parents=True, exist_ok=True)
    urls = args.out / "urls.txt"
    template = (HERE / "urls.txt").read_text(encoding="utf-8")
    urls.write_text(template.replace("{base}", base), encoding="utf-8")
    print(f"demo: serving example pages at {base}", file=sys.stderr)

    from screenshots.batch import dispatcher

    status = dispatcher.run([str(urls), "--out", str(args.out), "--engine", args.engine, *extra])
    server.shutdown()
    if status == 0:
        print(f"demo: screenshots in {args.out.resolve()}", file=sys.stderr)
        print(f"demo: open {(args.out / 'report.html').resolve()}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
