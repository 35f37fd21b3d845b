"""The API in broker mode, end to end: real RabbitMQ, Redis, SeaweedFS, a real worker process
and a real ``uvicorn api:app`` process, as a user runs them."""

from __future__ import annotations

import io
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from PIL import Image

from screenshots.dev.bench.apiload import api_server, free_port
from support.workers import REPO, script, service_env, start_worker

pytestmark = pytest.mark.integration

ALICE = "celery-alice-key-012345"
BOB = "celery-bob-key-0123456789"


@pytest.fixture
def cluster_env(rabbitmq, redis_db, s3_bucket) -> dict[str, str]:
    server, bucket = s3_bucket
    return service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis_db.url,
        SCREENSHOT_QUEUE=f"screenshots-{uuid.uuid4().hex[:8]}",
        SCREENSHOT_ENGINE="stub",
        SCREENSHOT_API_KEYS=f"alice:{ALICE},bob:{BOB}",
        **server.env(bucket),
    )


@pytest.fixture
def exporter(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``screenshots-worker-metrics`` on a free port; yields its metrics URL."""
    port = free_port()
    with (tmp_path / "exporter.log").open("wb") as log:  # the exporter has its own copy
        process = subprocess.Popen(
            [script("screenshots-worker-metrics")],
            cwd=REPO,
            env={**cluster_env, "WORKER_METRICS_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx2.get(url, timeout=1)
            break
        except httpx2.HTTPError:
            assert process.poll() is None, (tmp_path / "exporter.log").read_text()
            assert time.monotonic() < deadline, "the exporter did not start"
            time.sleep(0.2)
    time.sleep(1.0)  # let it bind its event queue before tasks run
    yield url
    process.terminate()
    process.wait(10)


def test_post_202_then_get_200_with_a_link_through_the_workers(
    cluster_env: dict[str, str], exporter: str, tmp_path: Path
) -> None:
    worker = start_worker(cluster_env, tmp_path, "api-worker", concurrency=1)
    try:
        with api_server(cluster_env, tmp_path / "api.log") as base, httpx2.Client(
            base_url=base, headers={"Authorization": f"Bearer {ALICE}"}, timeout=60
        ) as client:
            # Given a capture accepted without waiting
            accepted = client.post(
                "/v1/screenshots", json={"url": "http://one.example/", "width": 300, "height": 200}
            )
            assert accepted.status_code == 202, accepted.text
            ident = accepted.json()["id"]
            assert accepted.json()["state"] in ("queued", "running")  # a fast worker starts it
            # When its result is asked for, then it comes with a link that opens the image
            done = client.get(f"/v1/screenshots/{ident}", params={"wait": 30})
            assert done.status_code == 200, done.text
            row = done.json()
            assert row["status"] == "ok" and row["storage_uri"].startswith("s3://")
            with urllib.request.urlopen(row["link"], timeout=10) as answer:
                assert Image.open(io.BytesIO(answer.read())).size == (300, 200)
            # another key cannot see it
            bob = {"Authorization": f"Bearer {BOB}"}
            other = client.get(f"/v1/screenshots/{ident}", headers=bob)
            assert other.status_code == 404
            # a synchronous shot, as an image
            image = client.post(
                "/v1/screenshots",
                json={"url": "http://two.example/", "width": 120, "height": 90, "wait": 30},
                headers={"Accept": "image/png"},
            )
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(image.content)).size == (120, 90)
            # a job through the same workers
            job = client.post(
                "/v1/jobs", json={"urls": ["http://a.example/", "http://b.invalid/", "nope"]}
            ).json()
            deadline = time.monotonic() + 60
            while (summary := client.get(f"/v1/jobs/{job['id']}").json())["state"] != "done":
                assert time.monotonic() < deadline, summary
                time.sleep(0.2)
            assert (summary["ok"], summary["error"]) == (1, 2)
            rows = client.get(f"/v1/jobs/{job['id']}/results.jsonl").text.splitlines()
            assert sorted(json.loads(r)["line"] for r in rows) == [1, 2, 3]
            # ready: broker, workers, Redis and the bucket all answer
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["mode"] == "celery"
        # the worker-side exporter saw the captures
        text = httpx2.get(exporter, timeout=5).text
        assert 'screenshots_captures_total{engine="stub",status="ok"}' in text, text[-3000:]
        assert "screenshots_queue_wait_seconds_count" in text
    finally:
        worker.stop()


def test_above_the_high_water_mark_new_requests_get_429(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    # No worker consumes this queue: what is published stays there.
    env = {**cluster_env, "SCREENSHOT_API_HIGH_WATER": "3"}
    with api_server(env, tmp_path / "api.log") as base, httpx2.Client(
        base_url=base, headers={"Authorization": f"Bearer {ALICE}"}, timeout=60
    ) as client:
        codes = []
        for number in range(6):
            answer = client.post("/v1/screenshots", json={"url": f"http://q{number}.example/"})
            codes.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.headers["Retry-After"].isdigit()
                assert "high-water mark 3" in answer.json()["detail"]
        assert codes == [202, 202, 202, 429, 429, 429]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["workers"]["ok"] is False
        assert ready.json()["checks"]["broker"]["ok"] is True
