"""The broker-less API over real HTTP (uvicorn on loopback): backpressure, jobs, callbacks,
and a real Chromium shot through the pool."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest
from PIL import Image

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.callbacks import SIGNATURE_HEADER, verify
from screenshots.api.config import load_api_config
from screenshots.core.settings import load_settings
from screenshots.storage.base import Storage
from screenshots.storage.local import LocalStorage
from screenshots.storage.memory import MemoryStorage
from support.apiserver import serve

KEY = "pool-test-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def pool_app(engine: str = "stub", latency: float = 0.0, tabs: int = 2, wait_queue: int = 2,
             storage: Storage | None = None, **env: str):
    settings = load_settings()
    config = load_api_config({"SCREENSHOT_API_KEYS": f"tester:{KEY}",
                              "SCREENSHOT_API_RATE": "100000", "SCREENSHOT_API_BURST": "100000",
                              **env})
    kwargs = {"latency": latency} if engine == "stub" else {}
    backend = PoolBackend(
        lambda: create_engine(engine, settings, **kwargs), engine, storage or MemoryStorage(),
        tabs=tabs, wait_queue=wait_queue, uploads=2,
    )
    return create_app(config, backend, settings, job_poll_interval=0.05)


def test_a_burst_gets_429_with_retry_after_at_once_and_never_5xx() -> None:
    clients = 60
    with serve(pool_app(latency=0.3, tabs=2, wait_queue=2)) as base:

        async def one(client: httpx2.AsyncClient, number: int) -> tuple[int, float, str | None]:
            started = time.monotonic()
            answer = await client.post(
                "/v1/screenshots",
                json={"url": f"http://burst{number}.example/", "width": 64, "height": 48,
                      "wait": 20},
            )
            return answer.status_code, time.monotonic() - started, answer.headers.get(
                "Retry-After"
            )

        async def burst() -> list[tuple[int, float, str | None]]:
            limits = httpx2.Limits(max_connections=clients)
            async with httpx2.AsyncClient(
                base_url=base, headers=HEADERS, timeout=60, limits=limits
            ) as client:
                return await asyncio.gather(*(one(client, n) for n in range(clients)))

        answers = asyncio.run(burst())
        metrics = httpx2.get(base + "/metrics").text
        # Then: capacity is two tabs and two waiting places; the rest is refused at once
        codes = [code for code, _, _ in answers]
        assert set(codes) <= {200, 429}, codes
        assert 4 <= codes.count(200) < clients and codes.count(429) >= clients - 10
        refused = sorted(seconds for code, seconds, _ in answers if code == 429)
        served = sorted(seconds for code, seconds, _ in answers if code == 200)
        # A refusal that waited for capacity would take as long as the shots it waited for:
        # compare with those rather than with a wall-clock constant (machines get loaded).
        assert refused[len(refused) // 2] < served[len(served) // 2], (
            "429s must not wait for capacity"
        )
        assert all(
            retry is not None and retry.isdigit() and int(retry) >= 1
            for code, _, retry in answers
            if code == 429
        )
        assert 'screenshots_api_rejections_total{reason="busy"}' in metrics
        # and afterwards the service takes work again
        again = httpx2.post(
            base + "/v1/screenshots", json={"url": "http://after.example/", "wait": 10},
            headers=HEADERS, timeout=30,
        )
        assert again.status_code == 200 and again.json()["status"] == "ok"


def test_a_running_job_leaves_room_for_interactive_requests() -> None:
    with serve(pool_app(latency=0.2, tabs=2, wait_queue=2)) as base, httpx2.Client(
        base_url=base, headers=HEADERS, timeout=60
    ) as client:
        job = client.post(
            "/v1/jobs", json={"urls": [f"http://job{n}.example/" for n in range(10)]}
        ).json()
        time.sleep(0.5)  # the job now keeps both tabs and half the wait queue busy
        shot = client.post("/v1/screenshots", json={"url": "http://me.example/", "wait": 10})
        assert shot.status_code == 200 and shot.json()["status"] == "ok"
        deadline = time.monotonic() + 30
        while client.get(f"/v1/jobs/{job['id']}").json()["state"] != "done":
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.1)
        summary = client.get(f"/v1/jobs/{job['id']}").json()
        assert (summary["done"], summary["ok"]) == (10, 10)


class _Hooks(BaseHTTPRequestHandler):
    """A callback receiver that fails the first request, then accepts."""

    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(500 if len(self.received) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Hooks.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hooks.received
    server.shutdown()
    server.server_close()


def test_a_job_callback_is_signed_and_retried(hooks) -> None:
    url, received = hooks
    app = pool_app(
        SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE="true", SCREENSHOT_API_CALLBACK_BACKOFF="0.1"
    )
    with serve(app) as base, httpx2.Client(base_url=base, headers=HEADERS, timeout=30) as client:
        job = client.post(
            "/v1/jobs",
            json={"urls": ["http://a.example/", "http://b.invalid/"], "callback_url": url},
        ).json()
        deadline = time.monotonic() + 20
        while (summary := client.get(f"/v1/jobs/{job['id']}").json())["callback"][
            "state"
        ] != "delivered":
            assert time.monotonic() < deadline, f"callbacks received: {len(received)}"
            time.sleep(0.05)
    headers, body = received[-1]
    assert verify(KEY, body, headers[SIGNATURE_HEADER])
    assert not verify("another-key-0123456789", body, headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["event"] == "job.finished"
    assert (payload["job"]["id"], payload["job"]["ok"], payload["job"]["error"]) == (
        job["id"], 1, 1,
    )
    assert summary["callback"]["state"] == "delivered" and summary["callback"]["attempts"] == 2


@pytest.mark.integration
def test_images_are_served_from_local_files_and_404_once_gone(tmp_path) -> None:
    storage = LocalStorage(tmp_path)
    with serve(pool_app(storage=storage)) as base, httpx2.Client(
        base_url=base, headers=HEADERS, timeout=30
    ) as client:
        body = {"url": "http://example.test/a", "width": 320, "height": 200, "wait": 20}
        row = client.post("/v1/screenshots", json=body)
        assert row.status_code == 200 and row.json()["status"] == "ok", row.text
        data = row.json()
        stored = storage.path(data["key"])
        image = client.get(f"/v1/screenshots/{data['id']}", headers={"Accept": "image/png"})
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content == stored.read_bytes()
        assert Image.open(io.BytesIO(image.content)).size == (320, 200)
        stored.unlink()
        gone = client.get(f"/v1/screenshots/{data['id']}", headers={"Accept": "image/png"})
        assert gone.status_code == 404 and "no longer stored" in gone.text


def test_a_synchronous_chromium_shot_of_a_local_page(site) -> None:
    with serve(pool_app(engine="selenium", tabs=1, wait_queue=1)) as base, httpx2.Client(
        base_url=base, headers=HEADERS, timeout=120
    ) as client:
        body = {"url": site.url("/page/7"), "width": 640, "height": 480, "wait": 60}
        row = client.post("/v1/screenshots", json=body)
        assert row.status_code == 200, row.text
        data = row.json()
        assert data["status"] == "ok", data
        assert (data["width"], data["height"], data["http_status"]) == (640, 480, 200)
        assert data["title"] == "Page 7" and data["engine"] == "selenium"
        image = client.post("/v1/screenshots", json=body, headers={"Accept": "image/*"})
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        decoded = Image.open(io.BytesIO(image.content))
        assert decoded.size == (640, 480)
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["checks"]["browser"]["ok"]
