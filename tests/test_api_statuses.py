"""Every status the OpenAPI document gives an operation is one the server answers, and back.

For each operation of ``/openapi.json``, a request per documented status makes the broker-less
server (stub engine, memory storage) give exactly that status; the table of those requests must
cover the document's statuses, no more and no fewer. The other way round (the server answers
nothing undocumented) is also fuzzed by tests/test_api_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2
import pytest
from fastapi.testclient import TestClient

from engines.stub import StubEngine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import load_api_config
from screenshots.core.errors import StorageUnavailable
from screenshots.core.settings import load_settings
from screenshots.storage.memory import MemoryStorage

KEY = "alice-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Seconds a capture takes: long enough to see 202, short enough to wait for 200.
LATENCY = 0.3


class FlakyStorage(MemoryStorage):
    """Memory storage whose reads fail while ``broken`` (a storage outage)."""

    broken = False

    def read(self, key: str) -> bytes:
        if self.broken:
            raise StorageUnavailable("the test broke the storage")
        return super().read(key)

    def check(self) -> None:
        if self.broken:
            raise StorageUnavailable("the test broke the storage")


class LinkedStorage(MemoryStorage):
    """Memory storage whose links are web links, as a bucket's are."""

    def link(self, key: str) -> str:
        return f"https://images.example/{key}?signed=now"


@dataclass
class Server:
    client: TestClient
    limited: TestClient  # blocks an address after one wrong key
    storage: FlakyStorage
    linked: TestClient  # its storage gives web links: images are redirects
    done: str = ""  # a screenshot that is done
    failed: str = ""  # a screenshot whose capture failed
    job: str = ""  # a finished job: line 1 ok, line 2 failed
    linked_done: str = ""  # a screenshot done on ``linked``
    linked_job: str = ""  # a finished job of ``linked``


def app(storage: MemoryStorage, **env: str) -> TestClient:
    settings = load_settings({})
    backend = PoolBackend(
        lambda: StubEngine(latency=LATENCY), "stub", storage, tabs=2, wait_queue=8, uploads=2
    )
    config = load_api_config({"SCREENSHOT_API_KEYS": f"alice:{KEY}", **env})
    return TestClient(create_app(config, backend, settings, job_poll_interval=0.02))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    storage = FlakyStorage()
    strict = {"SCREENSHOT_API_AUTH_FAILURE_BURST": "1", "SCREENSHOT_API_AUTH_FAILURE_RATE": "0.01"}
    with app(storage) as client, app(MemoryStorage(), **strict) as limited, app(
        LinkedStorage()
    ) as linked:
        shot = {"url": "http://a.example/", "wait": 10}
        done = client.post("/v1/screenshots", json=shot, headers=AUTH).json()
        bad = {**shot, "user_agent": "not for the stub"}  # the stub engine refuses it
        failed = client.post("/v1/screenshots", json=bad, headers=AUTH).json()
        assert (done["status"], failed["status"]) == ("ok", "error")
        urls = ["http://a.example/", {"url": "http://b.example/", "user_agent": "x"}]
        job = client.post("/v1/jobs", json={"urls": urls}, headers=AUTH).json()["id"]
        client.get(f"/v1/jobs/{job}/results.jsonl?follow=true", headers=AUTH)  # until done
        linked_done = linked.post("/v1/screenshots", json=shot, headers=AUTH).json()["id"]
        linked_job = linked.post("/v1/jobs", json={"urls": urls}, headers=AUTH).json()["id"]
        linked.get(f"/v1/jobs/{linked_job}/results.jsonl?follow=true", headers=AUTH)
        yield Server(
            client, limited, storage, linked, done["id"], failed["id"], job, linked_done,
            linked_job,
        )


def broken(server: Server, request: Callable[[], httpx2.Response]) -> httpx2.Response:
    server.storage.broken = True
    try:
        return request()
    finally:
        server.storage.broken = False


def unready() -> httpx2.Response:
    """``/readyz`` of a server whose storage is down."""
    storage = FlakyStorage()
    storage.broken = True
    with app(storage) as client:
        return client.get("/readyz")


def blocked(server: Server, method: str, path: str) -> httpx2.Response:
    """A request from an address that just sent a wrong key (429 before its key is read)."""
    server.limited.get("/v1/jobs/x", headers={"Authorization": "Bearer wrong-key-0123456789"})
    return server.limited.request(method, path, headers=AUTH)


def slow(server: Server) -> str:
    """The id of a screenshot still being captured."""
    answer = server.client.post("/v1/screenshots", json={"url": "http://s.example/"}, headers=AUTH)
    assert answer.status_code == 202
    return str(answer.json()["id"])


IMAGE = {**AUTH, "Accept": "image/png"}
A_URL = {"url": "http://a.example/"}
DONE_IN_TIME = {**A_URL, "wait": 10}


def text(server: Server, path: str) -> httpx2.Response:
    """A POST of a body that is not JSON."""
    return server.client.post(
        path, content=b"http://a.example/", headers={**AUTH, "Content-Type": "text/plain"}
    )
SHOT = "/v1/screenshots"
POLL = "/v1/screenshots/{ident}"
PICTURE = "/v1/screenshots/{ident}/image"
JOBS = "/v1/jobs"
JOB = "/v1/jobs/{job_id}"
ROWS = "/v1/jobs/{job_id}/results.jsonl"
ROW_IMAGE = "/v1/jobs/{job_id}/images/{line}"

Request = Callable[[Server], httpx2.Response]
#: (method, path, status) → a request that gets that status.
REQUESTS: dict[tuple[str, str, int], Request] = {
    ("post", SHOT, 200): lambda s: s.client.post(SHOT, json=DONE_IN_TIME, headers=AUTH),
    ("post", SHOT, 202): lambda s: s.client.post(SHOT, json=A_URL, headers=AUTH),
    ("post", SHOT, 401): lambda s: s.client.post(SHOT, json=A_URL),
    ("post", SHOT, 413): lambda s: s.client.post(
        SHOT, json={**A_URL, "css": "x" * 20000}, headers=AUTH
    ),
    ("post", SHOT, 415): lambda s: text(s, SHOT),
    ("post", SHOT, 422): lambda s: s.client.post(SHOT, json={"url": "ftp://a/"}, headers=AUTH),
    ("post", SHOT, 429): lambda s: blocked(s, "POST", SHOT),
    ("post", SHOT, 503): lambda s: broken(
        s, lambda: s.client.post(SHOT, json=DONE_IN_TIME, headers=IMAGE)
    ),
    ("get", POLL, 200): lambda s: s.client.get(f"{SHOT}/{s.done}", headers=AUTH),
    ("get", POLL, 202): lambda s: s.client.get(f"{SHOT}/{slow(s)}", headers=AUTH),
    ("get", POLL, 401): lambda s: s.client.get(f"{SHOT}/{s.done}"),
    ("get", POLL, 404): lambda s: s.client.get(f"{SHOT}/nope", headers=AUTH),
    ("get", POLL, 422): lambda s: s.client.get(f"{SHOT}/{s.done}?wait=-1", headers=AUTH),
    ("get", POLL, 429): lambda s: blocked(s, "GET", f"{SHOT}/x"),
    ("get", POLL, 503): lambda s: broken(
        s, lambda: s.client.get(f"{SHOT}/{s.done}", headers=IMAGE)
    ),
    ("get", PICTURE, 200): lambda s: s.client.get(f"{SHOT}/{s.done}/image", headers=AUTH),
    ("get", PICTURE, 202): lambda s: s.client.get(f"{SHOT}/{slow(s)}/image", headers=AUTH),
    ("get", PICTURE, 307): lambda s: s.linked.get(
        f"{SHOT}/{s.linked_done}/image", headers=AUTH, follow_redirects=False
    ),
    ("get", PICTURE, 401): lambda s: s.client.get(f"{SHOT}/{s.done}/image"),
    ("get", PICTURE, 404): lambda s: s.client.get(f"{SHOT}/nope/image", headers=AUTH),
    ("get", PICTURE, 422): lambda s: s.client.get(f"{SHOT}/{s.failed}/image", headers=AUTH),
    ("get", PICTURE, 429): lambda s: blocked(s, "GET", f"{SHOT}/x/image"),
    ("get", PICTURE, 503): lambda s: broken(
        s, lambda: s.client.get(f"{SHOT}/{s.done}/image", headers=AUTH)
    ),
    ("post", JOBS, 202): lambda s: s.client.post(JOBS, json={"urls": [A_URL]}, headers=AUTH),
    ("post", JOBS, 401): lambda s: s.client.post(JOBS, json={"urls": [A_URL]}),
    ("post", JOBS, 413): lambda s: s.client.post(  # more than SCREENSHOT_API_MAX_UPLOAD
        JOBS, json={"urls": ["http://a.example/"] * 200000}, headers=AUTH
    ),
    ("post", JOBS, 415): lambda s: text(s, JOBS),
    ("post", JOBS, 422): lambda s: s.client.post(JOBS, json={"urls": []}, headers=AUTH),
    ("post", JOBS, 429): lambda s: blocked(s, "POST", JOBS),
    ("get", JOB, 200): lambda s: s.client.get(f"{JOBS}/{s.job}", headers=AUTH),
    ("get", JOB, 401): lambda s: s.client.get(f"{JOBS}/{s.job}"),
    ("get", JOB, 404): lambda s: s.client.get(f"{JOBS}/nope", headers=AUTH),
    ("get", JOB, 429): lambda s: blocked(s, "GET", f"{JOBS}/x"),
    ("get", ROWS, 200): lambda s: s.client.get(f"{JOBS}/{s.job}/results.jsonl", headers=AUTH),
    ("get", ROWS, 401): lambda s: s.client.get(f"{JOBS}/{s.job}/results.jsonl"),
    ("get", ROWS, 404): lambda s: s.client.get(f"{JOBS}/nope/results.jsonl", headers=AUTH),
    ("get", ROWS, 422): lambda s: s.client.get(
        f"{JOBS}/{s.job}/results.jsonl?follow=maybe", headers=AUTH
    ),
    ("get", ROWS, 429): lambda s: blocked(s, "GET", f"{JOBS}/x/results.jsonl"),
    ("get", ROW_IMAGE, 200): lambda s: s.client.get(f"{JOBS}/{s.job}/images/1", headers=AUTH),
    ("get", ROW_IMAGE, 307): lambda s: s.linked.get(
        f"{JOBS}/{s.linked_job}/images/1", headers=AUTH, follow_redirects=False
    ),
    ("get", ROW_IMAGE, 401): lambda s: s.client.get(f"{JOBS}/{s.job}/images/1"),
    ("get", ROW_IMAGE, 404): lambda s: s.client.get(f"{JOBS}/{s.job}/images/9", headers=AUTH),
    ("get", ROW_IMAGE, 422): lambda s: s.client.get(f"{JOBS}/{s.job}/images/2", headers=AUTH),
    ("get", ROW_IMAGE, 429): lambda s: blocked(s, "GET", f"{JOBS}/x/images/1"),
    ("get", ROW_IMAGE, 503): lambda s: broken(
        s, lambda: s.client.get(f"{JOBS}/{s.job}/images/1", headers=AUTH)
    ),
    ("get", "/healthz", 200): lambda s: s.client.get("/healthz"),
    ("get", "/readyz", 200): lambda s: s.client.get("/readyz"),
    ("get", "/readyz", 503): lambda s: unready(),
}


def documented(server: Server) -> set[tuple[str, str, int]]:
    document = server.client.get("/openapi.json").json()
    return {
        (method, path, int(status))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }


def test_the_requests_cover_exactly_the_documented_statuses(server: Server) -> None:
    assert documented(server) == set(REQUESTS)


@pytest.mark.parametrize(("method", "path", "status"), sorted(REQUESTS))
def test_the_server_gives_each_documented_status(
    server: Server, method: str, path: str, status: int
) -> None:
    answer = REQUESTS[method, path, status](server)
    assert answer.status_code == status, answer.text[:500]
    if path == "/readyz":  # ready or not, the body is the checks
        assert answer.json()["ready"] is (status == 200)
    elif status == 307:  # a link signed now, to the very image
        assert answer.headers["location"].startswith("https://images.example/")
    elif status >= 400:
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]
