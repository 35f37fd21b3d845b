"""End to end through the real RabbitMQ, Redis, SeaweedFS and Chromium.

The dispatcher and the workers run as separate processes, exactly as a user runs them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from celery import Celery
from PIL import Image

from screenshots.core.settings import load_settings
from screenshots.delivery import distributed
from screenshots.delivery.distributed import DistributedRunner, PollingRedisBackend
from support.workers import REPO, service_env, start_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_env(rabbitmq, redis_db, s3_bucket):
    server, bucket = s3_bucket
    return service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis_db.url,
        SCREENSHOT_QUEUE=f"screenshots-{uuid.uuid4().hex[:8]}",
        **server.env(bucket),
    ), server, bucket


def dispatch(env, urls: Path, out: Path, *args: str, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "dispatcher.py", str(urls), "--out", str(out), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )


def rows_of(out: Path) -> list[dict]:
    return [json.loads(t) for t in (out / "results.jsonl").read_text().splitlines()]


def test_two_workers_shoot_every_url_once_into_the_bucket(cluster_env, site, tmp_path):
    env, server, bucket = cluster_env
    pages = [site.url(f"/page/{n}") for n in range(1, 53)]
    bad = ["not-a-url", "ftp://example.com/file", "http://unknown-host.invalid/"]
    urls = tmp_path / "urls.txt"
    urls.write_text("# fifty-two pages and three bad lines\n" + "\n".join(pages + bad) + "\n")
    workers = [
        start_worker(env, tmp_path, f"w{i}", concurrency=1) for i in (1, 2)
    ]
    try:
        done = dispatch(env, urls, tmp_path / "run1", "--width", "800", "--height", "600")
    finally:
        for worker in workers:
            worker.stop()
    assert done.returncode == 0, done.stderr
    rows = rows_of(tmp_path / "run1")
    lines = Counter(r["line"] for r in rows)
    assert sorted(lines) == list(range(2, 2 + len(pages) + len(bad)))
    assert set(lines.values()) == {1}, "every input line has exactly one row"

    by_url = {r["url"]: r for r in rows}
    s3 = server.client()
    for page in pages:
        row = by_url[page]
        assert row["status"] == "ok", row
        assert row["http_status"] == 200 and row["final_url"] == page
        assert row["storage_uri"] == f"s3://{bucket}/{row['key']}"
        body = s3.get_object(Bucket=bucket, Key=row["key"])
        assert body["ContentType"] == "image/png"
        image = Image.open(io.BytesIO(body["Body"].read()))
        assert image.size == (800, 600) == (row["width"], row["height"])
    # a presigned link opens without credentials
    with urllib.request.urlopen(by_url[pages[0]]["link"], timeout=10) as response:
        assert Image.open(io.BytesIO(response.read())).size == (800, 600)

    errors = {r["url"]: r["error"] for r in rows if r["status"] == "error"}
    assert set(errors) == {"not-a-url", "ftp://example.com/file", "http://unknown-host.invalid/"}
    assert "unsupported scheme 'ftp'" in errors["ftp://example.com/file"]
    assert "ERR_NAME_NOT_RESOLVED" in errors["http://unknown-host.invalid/"]
    # both workers took part
    assert all("succeeded" in w.log() for w in workers)
    csv_lines = (tmp_path / "run1" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(pages) + len(bad)
    assert (tmp_path / "run1" / "report.html").exists()


def test_a_playwright_run_through_the_procfile_worker(cluster_env, site, tmp_path):
    """``--engine playwright``: the same worker (``celery -A tasks worker``, a prefork pool
    process) captures with the Playwright engine, one browser of several tabs, and the
    egress policy on, as deployed."""
    env, server, bucket = cluster_env
    pages = [site.url(f"/page/{n}") for n in range(1, 13)]
    urls = tmp_path / "urls.txt"
    urls.write_text("\n".join([*pages, "http://unknown-host.invalid/"]) + "\n")
    worker = start_worker(env, tmp_path, "pw", concurrency=1)
    try:
        options = ["--engine", "playwright", "--width", "800", "--height", "600"]
        done = dispatch(env, urls, tmp_path / "run", *options)
    finally:
        worker.stop()
    assert done.returncode == 0, done.stderr
    rows = rows_of(tmp_path / "run")
    assert sorted(r["line"] for r in rows) == list(range(1, len(pages) + 2))
    by_url = {r["url"]: r for r in rows}
    s3 = server.client()
    for page in pages:
        row = by_url[page]
        assert row["status"] == "ok", row
        assert row["engine"] == "playwright" and row["final_url"] == page
        assert row["requests"] >= 1 and row["blocked_requests"] == 0
        body = s3.get_object(Bucket=bucket, Key=row["key"])["Body"].read()
        assert Image.open(io.BytesIO(body)).size == (800, 600)
    error = by_url["http://unknown-host.invalid/"]["error"]
    assert "ERR_NAME_NOT_RESOLVED" in error, error
    assert "Traceback" not in worker.log()


def test_stub_batches_and_a_rerun_that_shoots_nothing_again(cluster_env, tmp_path):
    env, server, bucket = cluster_env
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"http://site{n}.example/\n" for n in range(300)))
    worker = start_worker(env, tmp_path, "stub", concurrency=2)
    backend = redis.Redis.from_url(env["CELERY_RESULT_BACKEND"])
    # The session's Redis db is shared: other tests' (the API's) job keys may be there.
    others = set(backend.keys("screenshots:job:*"))
    try:
        first = dispatch(env, urls, tmp_path / "run", "--engine", "stub", "--batch-size", "7")
        assert first.returncode == 0, first.stderr
        rows = rows_of(tmp_path / "run")
        assert len(rows) == 300 and {r["status"] for r in rows} == {"ok"}
        stamps = {r["line"]: r["finished_at"] for r in rows}
        listed = server.client().list_objects_v2(Bucket=bucket, MaxKeys=1000)
        assert listed["KeyCount"] == 900  # each image, its version (history) and thumbnail
        # rows and sentinel, all collected
        assert set(backend.keys("screenshots:job:*")) - others == set()

        second = dispatch(env, urls, tmp_path / "run", "--engine", "stub")
        assert second.returncode == 0, second.stderr
        again = rows_of(tmp_path / "run")
        assert {r["line"]: r["finished_at"] for r in again} == stamps
        assert "300 already done" in second.stderr
    finally:
        backend.close()
        worker.stop()


def test_unreachable_broker_is_one_clear_line(redis_db, s3_bucket, tmp_path):
    server, bucket = s3_bucket
    env = service_env(
        CELERY_BROKER_URL="amqp://guest:secretpw@127.0.0.1:1//",
        CELERY_RESULT_BACKEND=redis_db.url,
        **server.env(bucket),
    )
    urls = tmp_path / "urls.txt"
    urls.write_text("http://example.com/\n")
    done = dispatch(env, urls, tmp_path / "out", timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the broker at amqp://")
    assert "secretpw" not in done.stderr


def test_a_full_queue_with_nothing_in_flight_does_not_spin(rabbitmq, redis_db, monkeypatch):
    """While the shared queue is above the high-water mark and this dispatcher has nothing in
    flight, the loop sleeps until the next depth check instead of spinning on the cached
    answer (it used to turn hundreds of thousands of times a second)."""
    monkeypatch.setattr(distributed, "DEPTH_CHECK_INTERVAL", 0.2)
    monkeypatch.setattr(distributed, "MAX_DEPTH_CHECK_INTERVAL", 0.4)
    queue = f"screenshots-full-{uuid.uuid4().hex[:8]}"
    app = Celery("full-queue-test", broker=rabbitmq.url, backend=PollingRedisBackend)
    app.conf.result_backend = redis_db.url
    with app.connection_for_write() as conn:
        held = conn.SimpleQueue(queue)
        held.put({"held": "above the mark"})  # one message > high_water=0: the queue is full
    runner = DistributedRunner(
        dataclasses.replace(load_settings(), queue=queue), str(uuid.uuid4()), "stub",
        high_water=0, app=app,
    )
    real_checks_wanted = 4
    seen = {"iterations": 0, "checks": 0, "iterations_at_checks": -1}
    enough = threading.Event()
    queue_full = runner._queue_full

    def counting_queue_full() -> bool:
        # called once per loop turn that may publish; a real check moves _depth_checked
        before = runner._depth_checked
        full = queue_full()
        seen["iterations"] += 1
        if runner._depth_checked != before:
            seen["checks"] += 1
            if seen["checks"] == real_checks_wanted:
                seen["iterations_at_checks"] = seen["iterations"]
                enough.set()
        return full

    monkeypatch.setattr(runner, "_queue_full", counting_queue_full)
    rows: list[object] = []
    worker = threading.Thread(target=lambda: rows.extend(runner.run(iter([]))), daemon=True)
    worker.start()
    try:
        assert enough.wait(timeout=30), "the runner stopped checking the queue's depth"
        # one loop turn per depth check (and a spare), not one per microsecond
        assert seen["iterations_at_checks"] <= 2 * real_checks_wanted, seen
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
        worker.join(timeout=30)
    # once the queue drains, the runner goes on (here: to the end of an empty input)
    assert not worker.is_alive() and rows == []
    runner.close()
