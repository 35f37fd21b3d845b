"""The API as a fleet (broker mode): two ``uvicorn api:app`` processes on different ports, no
balancer, one real Celery worker (stub engine), real RabbitMQ, Redis and SeaweedFS.

A job created on one replica is read on the other; when the replica feeding it is SIGKILLed
the other takes it over: it finishes, every URL has exactly one row, and its callback reaches
the receiver once, with its idempotency key. Images are redirects to links signed now. Job
records and rows expire after ``SCREENSHOT_API_RESULT_TTL``.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from PIL import Image

from screenshots.api.callbacks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from screenshots.api.jobstore import RedisJobStore
from support.fleet import Receiver, Replica, callback_receiver, start_replica
from support.services import RedisDb
from support.workers import Worker, service_env, start_worker

pytestmark = pytest.mark.integration

ALICE = "fleet-alice-key-012345"
BOB = "fleet-bob-key-0123456789"
#: URLs of the job the test kills a replica under.
URLS = 40
#: Seconds a replica's lease on a job lasts: how soon the other one takes over.
LEASE = "1.5"


def waiting(
    condition: Callable[[], Any], timeout: float, what: str, pause: float = 0.1
) -> Any:
    """Wait until ``condition()`` is truthy; its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)
    return value


@pytest.fixture
def env(rabbitmq, redis_db: RedisDb, s3_bucket) -> dict[str, str]:
    server, bucket = s3_bucket
    return service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis_db.url,
        SCREENSHOT_QUEUE=f"screenshots-{uuid.uuid4().hex[:8]}",
        SCREENSHOT_ENGINE="stub",
        SCREENSHOT_STUB_LATENCY_MS="150",
        SCREENSHOT_API_KEYS=f"alice:{ALICE},bob:{BOB}",
        SCREENSHOT_API_JOB_LEASE=LEASE,
        SCREENSHOT_API_RATE="1000",  # the test polls; the shared bucket is tested elsewhere
        SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE="true",
        SCREENSHOT_API_CALLBACK_BACKOFF="0.2",
        **server.env(bucket),
    )


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    started = start_worker(env, tmp_path, "fleet-worker", concurrency=2)
    yield started
    started.stop()


@pytest.fixture
def replicas(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Starts replicas (with extra settings); stops them all at the end."""
    started: list[Replica] = []

    def start(name: str, **extra: str) -> Replica:
        replica = start_replica({**env, **extra}, tmp_path, name)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def client(replica: Replica, key: str = ALICE) -> httpx2.Client:
    return httpx2.Client(
        base_url=replica.base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def summary(http: httpx2.Client, job_id: str) -> dict[str, Any]:
    answer = http.get(f"/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_job_survives_its_replica_and_calls_back_once(
    worker: Worker, replicas: Callable[..., Replica]
) -> None:
    one, two = replicas("api-a"), replicas("api-b")
    with client(one) as a, client(two) as b, client(two, BOB) as bob, callback_receiver() as hook:
        # Given a job created on replica A
        urls = [f"http://page{number}.example/" for number in range(URLS)]
        created = a.post("/v1/jobs", json={"urls": urls, "callback_url": hook.url})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        # Then replica B answers for it, for its owner only
        assert summary(b, job_id)["total"] == URLS
        assert bob.get(f"/v1/jobs/{job_id}").status_code == 404
        assert bob.get(f"/v1/jobs/{job_id}/results.jsonl").status_code == 404
        # When A is killed mid-job
        waiting(lambda: summary(b, job_id)["done"] >= 5, 30, "the first rows")
        one.kill()
        assert summary(b, job_id)["state"] == "running", "the job ended before A was killed"
        # Then B takes it over and finishes it: every URL exactly once
        done = waiting(
            lambda: (found := summary(b, job_id))["state"] == "done" and found, 60, "the job"
        )
        assert (done["ok"], done["error"], done["done"]) == (URLS, 0, URLS), done
        text = b.get(f"/v1/jobs/{job_id}/results.jsonl").text
        rows = [json.loads(line) for line in text.splitlines()]
        assert sorted(row["line"] for row in rows) == list(range(1, URLS + 1))
        assert sorted(row["url"] for row in rows) == sorted(urls)
        # And its callback reaches the receiver once, signed, with its idempotency key
        waiting(lambda: summary(b, job_id)["callback"]["state"] == "delivered", 30, "callback")
        assert_one_callback(hook, job_id)
        # Images are redirects to links signed now, that open; not for another key
        image = b.get(f"/v1/jobs/{job_id}/images/1", follow_redirects=False)
        assert image.status_code == 307, image.text
        with urllib.request.urlopen(image.headers["location"], timeout=10) as answer:
            assert Image.open(io.BytesIO(answer.read())).format == "PNG"
        assert bob.get(f"/v1/jobs/{job_id}/images/1").status_code == 404
        shot = b.post("/v1/screenshots", json={"url": "http://one.example/", "wait": 30}).json()
        redirect = b.get(f"/v1/screenshots/{shot['id']}/image", follow_redirects=False)
        assert redirect.status_code == 307 and "X-Amz-Signature" in redirect.headers["location"]
        assert bob.get(f"/v1/screenshots/{shot['id']}/image").status_code == 404
        # and /readyz says what the mode shares
        ready = b.get("/readyz").json()
        assert (ready["mode"], ready["scope"]) == (
            "celery", "replicas share the broker and the result backend"
        )
    assert f"job {job_id}: its replica is gone; taking it over" in two.log(), two.log()[-3000:]
    assert "Traceback" not in two.log(), two.log()[-3000:]


def assert_one_callback(hook: Receiver, job_id: str) -> None:
    # a second delivery would come from the replica that finished the job, right after the
    # first: its marker is set once acknowledged, and no replica sends again
    time.sleep(float(LEASE))
    assert len(hook.received) == 1, [entry.headers for entry in hook.received]
    (callback,) = hook.received
    assert callback.headers[IDEMPOTENCY_HEADER] == job_id
    assert verify(ALICE, callback.body, callback.headers[SIGNATURE_HEADER])
    payload = json.loads(callback.body)
    assert payload["idempotency_key"] == job_id
    assert (payload["job"]["id"], payload["job"]["ok"], payload["job"]["state"]) == (
        job_id, URLS, "done",
    )


def test_job_records_and_rows_expire_after_the_result_ttl(
    worker: Worker, replicas: Callable[..., Replica], redis_db: RedisDb
) -> None:
    ttl = 10
    replica = replicas("api-ttl", SCREENSHOT_API_RESULT_TTL=str(ttl))
    with client(replica) as http, redis.Redis.from_url(redis_db.url) as db:
        job_id = http.post("/v1/jobs", json={"urls": ["http://a.example/"]}).json()["id"]
        waiting(lambda: summary(http, job_id)["state"] == "done", 30, "the job")
        # every key of the job is set to expire within the TTL
        keys = RedisJobStore.keys(job_id)
        present = [key for role, key in keys.items() if role != "lease" and db.exists(key)]
        assert {keys["record"], keys["items"], keys["rows"], keys["order"]} <= set(present)
        assert all(0 < db.ttl(key) <= ttl for key in present), {k: db.ttl(k) for k in present}
        # and once it is over, the job is gone: 404, no key left
        waiting(lambda: http.get(f"/v1/jobs/{job_id}").status_code == 404, ttl + 5, "expiry", 0.5)
        assert not any(db.exists(key) for key in keys.values())
