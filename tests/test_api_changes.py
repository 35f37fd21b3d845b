"""A job compared with an earlier job (``compare``): two jobs over real pages in Chromium,
one page changed by the test in between. Rows get ``change``, ``changed_pct`` and
``diff_link``; the callback lists the URL that changed above its ``changed_above``."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.callbacks import IDEMPOTENCY_HEADER
from screenshots.api.config import load_api_config
from screenshots.core.settings import load_settings
from screenshots.storage.memory import MemoryStorage
from support.apiserver import serve
from support.fleet import callback_receiver

pytestmark = pytest.mark.integration

KEY = "changes-alice-key-0123"
OTHER = "changes-bob-key-012345"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Pages:
    """Two pages on loopback: ``/still`` never changes, ``/moving`` shows ``banner``."""

    banner = "#ffffff"


@contextlib.contextmanager
def pages() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            color = Pages.banner if self.path == "/moving" else "#ffffff"
            body = (
                "<!doctype html><title>p</title><body style='margin:0;background:#fff'>"
                f"<div style='width:100%;height:200px;background:{color}'></div>"
                "<p>Some text that stays.</p></body>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def app() -> Any:
    settings = load_settings()
    config = load_api_config({
        "SCREENSHOT_API_KEYS": f"alice:{KEY},bob:{OTHER}",
        "SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE": "true",
    })
    backend = PoolBackend(
        lambda: create_engine("selenium", settings), "selenium", MemoryStorage(),
        tabs=2, wait_queue=4, uploads=2,
    )
    return create_app(config, backend, settings, job_poll_interval=0.05)


def finished(http: httpx2.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while (summary := http.get(f"/v1/jobs/{job_id}").json())["state"] != "done":
        assert time.monotonic() < deadline, summary
        time.sleep(0.1)
    return dict(summary)


def rows(http: httpx2.Client, job_id: str) -> dict[str, dict[str, Any]]:
    text = http.get(f"/v1/jobs/{job_id}/results.jsonl").text
    return {row["url"]: row for row in map(json.loads, text.splitlines())}


def test_a_job_compared_with_an_earlier_one_calls_back_with_what_changed() -> None:
    Pages.banner = "#ffffff"
    with pages() as site, serve(app()) as base, callback_receiver() as hook, httpx2.Client(
        base_url=base, headers=AUTH, timeout=60
    ) as http:
        still, moving = f"{site}/still", f"{site}/moving"
        urls = [{"url": still}, {"url": moving, "changed_above": 1.0}]
        options = {"width": 400, "height": 300}
        # Given a first job over both pages
        first = http.post("/v1/jobs", json={"urls": urls, "options": options}).json()["id"]
        assert finished(http, first)["ok"] == 2
        # When one page changes and a second job compares with the first
        Pages.banner = "#d02020"
        second = http.post(
            "/v1/jobs",
            json={"urls": urls, "options": options, "compare": first, "callback_url": hook.url},
        )
        assert second.status_code == 202, second.text
        job_id = second.json()["id"]
        assert finished(http, job_id)["ok"] == 2
        # Then its rows say what changed, with a diff image for the changed page
        found = rows(http, job_id)
        assert (found[still]["change"], found[still]["changed_pct"]) == ("unchanged", 0.0)
        assert found[moving]["change"] == "changed", found[moving]
        assert found[moving]["changed_pct"] > 1.0 and found[moving]["diff_link"]
        # And the callback lists the changed URL only
        deadline = time.monotonic() + 30
        while not hook.received:
            assert time.monotonic() < deadline, "no callback"
            time.sleep(0.05)
        (callback,) = hook.received
        assert callback.headers[IDEMPOTENCY_HEADER] == job_id
        changes = json.loads(callback.body)["changes"]
        assert changes == [{
            "url": moving, "change": "changed", "changed_pct": found[moving]["changed_pct"],
            "diff_link": found[moving]["diff_link"],
        }]
        # A job cannot be compared with another key's job, nor with one that does not exist
        bob = {"Authorization": f"Bearer {OTHER}"}
        theirs = http.post("/v1/jobs", json={"urls": [still], "compare": first}, headers=bob)
        assert theirs.status_code == 422 and "compare" in theirs.json()["detail"]
        unknown = http.post(
            "/v1/jobs", json={"urls": [still], "compare": "00000000-0000-0000-0000-000000000000"}
        )
        assert unknown.status_code == 422
