"""The HTTP API without servers: stub engine, memory storage, in-process client.

Auth, rate limits, configuration errors, body and URL limits, the 4xx messages, jobs'
visibility, the OpenAPI document, metrics, callback signatures and the pool's admission.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from engines import create_engine
from engines.base import Capture, Engine
from screenshots.api import create_app
from screenshots.api.auth import KeyRing
from screenshots.api.backends.base import DONE
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.callbacks import Delivery, deliver, sign, verify
from screenshots.api.config import ApiConfig, hash_key, load_api_config
from screenshots.api.errors import Busy, retry_after_seconds
from screenshots.api.ratelimit import RateLimiter
from screenshots.api.worker_metrics import EventCollector
from screenshots.core.errors import ConfigurationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings
from screenshots.core.shot import Shot
from screenshots.storage.memory import MemoryStorage

ALICE = "alice-key-0123456789"
BOB = "bob-key-9876543210abc"
KEYS = f"alice:{ALICE},bob:{BOB}"


def config(**env: str) -> ApiConfig:
    return load_api_config({"SCREENSHOT_API_KEYS": KEYS, "SCREENSHOT_API_TABS": "2", **env})


def stub_backend(**kwargs: object) -> PoolBackend:
    settings = load_settings({})
    options = {"tabs": 2, "wait_queue": 2, "uploads": 2, **kwargs}
    return PoolBackend(
        lambda: create_engine("stub", settings), "stub", MemoryStorage(), **options  # type: ignore[arg-type]
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(config(), stub_backend(), load_settings({}), job_poll_interval=0.02)
    with TestClient(app) as test_client:
        yield test_client


def auth(key: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SCREENSHOT_API_KEYS is required"),
        ({"SCREENSHOT_API_KEYS": "short"}, "key #1 must be at least 16 characters"),
        ({"SCREENSHOT_API_KEYS": f"a:{ALICE},a:{BOB}"}, "the name 'a' is used twice"),
        ({"SCREENSHOT_API_KEYS": f"{ALICE},{ALICE}"}, "the same key is listed twice"),
        ({"SCREENSHOT_API_KEYS": KEYS, "SCREENSHOT_API_RATE": "fast"}, "SCREENSHOT_API_RATE must"),
        ({"SCREENSHOT_API_KEYS": KEYS, "SCREENSHOT_API_TABS": "0"}, "SCREENSHOT_API_TABS must be"),
        (
            {"SCREENSHOT_API_KEYS": KEYS, "SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE": "maybe"},
            "must be true or false",
        ),
    ],
)
def test_bad_settings_are_one_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_api_config(env)
    for secret in (ALICE, BOB):
        assert secret not in str(caught.value)


def test_keys_are_kept_hashed_and_never_shown() -> None:
    loaded = config(SCREENSHOT_API_KEYS=f"alice:{ALICE},{BOB}")
    names = [key.name for key in loaded.keys]
    assert names[0] == "alice" and names[1].startswith("key-")
    assert loaded.keys[0].digest == hash_key(ALICE)
    shown = repr(loaded) + repr(KeyRing(loaded.keys))
    assert ALICE not in shown and BOB not in shown and hash_key(ALICE).hex() not in shown


def test_defaults_are_documented_values() -> None:
    loaded = config()
    assert (loaded.rate, loaded.burst, loaded.max_body) == (10.0, 50, 16 * 1024)
    assert loaded.wait_queue == 2 * loaded.tabs and loaded.high_water == 500


def test_a_bad_setting_stops_the_server_with_one_line() -> None:
    import subprocess

    from support.workers import REPO, script, service_env

    env = service_env(SCREENSHOT_API_KEYS=f"alice:{ALICE},bob:short", SCREENSHOT_ENGINE="stub")
    done = subprocess.run(
        [script("uvicorn"), "api:app", "--port", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "configuration error: SCREENSHOT_API_KEYS: key #2 must be at least 16" in done.stderr
    assert "Traceback" not in done.stderr and ALICE not in done.stderr


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": f"Basic {ALICE}"}, "must be `Bearer <key>`"),
        ({"Authorization": "Bearer not-a-valid-key-at-all"}, "invalid API key"),
        ({"Authorization": "Bearer"}, "must be `Bearer <key>`"),
    ],
)
def test_requests_without_a_valid_key_get_401(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    answer = client.post("/v1/screenshots", json={"url": "http://a.example/"}, headers=headers)
    assert answer.status_code == 401
    assert message in answer.json()["detail"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_in_the_query_string_is_refused(client: TestClient) -> None:
    answer = client.get(f"/v1/jobs/x?api_key={ALICE}", headers=auth())
    assert answer.status_code == 401
    assert "never in the URL" in answer.json()["detail"]


def test_key_ring_identifies_each_key() -> None:
    ring = KeyRing(config().keys)
    assert ring.identify(ALICE) == "alice" and ring.identify(BOB) == "bob"
    assert ring.identify(ALICE[:-1]) is None and ring.identify("") is None


# -- rate limits --------------------------------------------------------------------------------


def test_a_key_may_spend_its_burst_then_waits_for_the_window() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)  # 3 requests per 2-second window
    assert [limiter.wait_time("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert 0.0 < limiter.wait_time("a") <= 2.0
    assert limiter.wait_time("b") == 0.0  # counted per key
    with pytest.raises(Busy) as caught:
        limiter.take("a")
    assert caught.value.headers["Retry-After"] == "2"


def test_over_the_rate_a_key_gets_429_with_retry_after_and_others_do_not() -> None:
    app = create_app(
        config(SCREENSHOT_API_RATE="0.2", SCREENSHOT_API_BURST="2"),
        stub_backend(),
        load_settings({}),
    )
    with TestClient(app) as client:
        answers = [client.get("/v1/jobs/none", headers=auth()) for _ in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        assert answers[2].headers["Retry-After"] == "10"  # 2 requests per 10-second window
        assert "rate limit exceeded for API key 'alice'" in answers[2].json()["detail"]
        assert client.get("/v1/jobs/none", headers=auth(BOB)).status_code == 404
        metrics = client.get("/metrics").text
        assert 'screenshots_api_rejections_total{reason="rate_limit"}' in metrics


def test_retry_after_is_whole_seconds_within_bounds() -> None:
    assert [retry_after_seconds(x) for x in (0.0, 0.2, 1.0, 1.01, 500, float("inf"))] == [
        1, 1, 1, 2, 60, 60,
    ]


# -- bodies and limits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"url": "ftp://a.example/"}, 422, "url: unsupported scheme 'ftp'"),
        ({"url": "http://" + "a" * 2100 + ".example/"}, 422, "url is longer than 2048"),
        ({"url": "http://a.example/", "widht": 10}, 422, "unknown option 'widht'"),
        ({"url": "http://a.example/", "width": 100000}, 422, "width must be between"),
        ({"url": "http://a.example/", "format": "gif"}, 422, "format must be one of"),
        ({"url": "http://a.example/", "wait": 600}, 422, "wait must be between 0 and 60"),
        ({"url": "http://a.example/", "wait": "soon"}, 422, "wait must be a number"),
        ({"url": "http://a.example/", "engine": "netscape"}, 422, "engine must be one of"),
        ({"wait": 1}, 422, "url is required"),
        (["http://a.example/"], 422, "the body must be a JSON object"),
        ({"url": 7}, 422, "url must be a string"),
        ({"url": "http://user:pw@a.example/"}, 422, "credentials"),
    ],
)
def test_a_bad_body_is_a_4xx_that_says_what_is_wrong(
    client: TestClient, body: object, status: int, message: str
) -> None:
    answer = client.post("/v1/screenshots", json=body, headers=auth())
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]


def test_not_json_and_broken_json_and_oversized_bodies(client: TestClient) -> None:
    form = client.post("/v1/screenshots", data={"url": "http://a.example/"}, headers=auth())
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    broken = client.post(
        "/v1/screenshots",
        content=b'{"url": ',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
    big = client.post(
        "/v1/screenshots", json={"url": "http://a.example/", "x": "y" * 20_000}, headers=auth()
    )
    assert big.status_code == 413
    assert "larger than 16384 bytes (SCREENSHOT_API_MAX_BODY)" in big.json()["detail"]


def test_a_chunked_body_is_cut_at_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"url": "http://a.example/", "pad": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    answer = client.post(
        "/v1/screenshots", content=chunks(), headers={**auth(), "Content-Type": "application/json"}
    )
    assert answer.status_code == 413


# -- screenshots --------------------------------------------------------------------------------


def test_a_synchronous_shot_returns_its_row_or_its_image(client: TestClient) -> None:
    body = {"url": "http://a.example/", "width": 320, "height": 200, "wait": 10}
    row = client.post("/v1/screenshots", json=body, headers=auth())
    assert row.status_code == 200, row.text
    data = row.json()
    assert data["status"] == "ok" and data["link"] and data["id"]
    assert (data["width"], data["height"], data["engine"]) == (320, 200, "stub")
    image = client.post("/v1/screenshots", json=body, headers={**auth(), "Accept": "image/*"})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (320, 200)
    again = client.get(f"/v1/screenshots/{data['id']}/image", headers=auth())
    assert again.content == image.content


def test_without_wait_the_answer_is_202_then_the_result(client: TestClient) -> None:
    accepted = client.post("/v1/screenshots", json={"url": "http://b.example/"}, headers=auth())
    assert accepted.status_code == 202
    ident = accepted.json()["id"]
    assert accepted.json()["state"] in ("queued", "running")
    assert accepted.headers["Location"] == f"/v1/screenshots/{ident}"
    done = client.get(f"/v1/screenshots/{ident}?wait=10", headers=auth())
    assert done.status_code == 200 and done.json()["status"] == "ok"


def test_a_failed_capture_is_an_error_row_and_no_image(client: TestClient) -> None:
    body = {"url": "http://unknown-host.invalid/", "wait": 10}
    row = client.post("/v1/screenshots", json=body, headers=auth())
    assert row.status_code == 200 and row.json()["status"] == "error"
    assert "unknown host" in row.json()["error"]
    image = client.post("/v1/screenshots", json=body, headers={**auth(), "Accept": "image/png"})
    assert image.status_code == 422 and "the capture failed" in image.json()["detail"]


def test_a_shot_is_visible_only_to_its_key(client: TestClient) -> None:
    ident = client.post(
        "/v1/screenshots", json={"url": "http://c.example/", "wait": 5}, headers=auth()
    ).json()["id"]
    other = client.get(f"/v1/screenshots/{ident}", headers=auth(BOB))
    assert other.status_code == 404
    assert client.get("/v1/screenshots/nope", headers=auth()).status_code == 404


# -- jobs ---------------------------------------------------------------------------------------


def wait_for_job(client: TestClient, job_id: str, key: str = ALICE) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        summary = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        if summary["state"] == "done":
            return summary
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_a_json_job_gives_a_row_per_item_and_bad_items_are_error_rows(client: TestClient) -> None:
    body = {
        "urls": [
            "http://a.example/",
            "not a url",
            {"url": "http://b.example/", "width": 200},
            {"url": "http://c.example/", "format": "gif"},
            42,
        ],
        "options": {"height": 150},
    }
    accepted = client.post("/v1/jobs", json=body, headers=auth())
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    summary = wait_for_job(client, job_id)
    assert (summary["total"], summary["done"], summary["ok"], summary["error"]) == (5, 5, 2, 3)
    text = client.get(f"/v1/jobs/{job_id}/results.jsonl", headers=auth()).text
    rows = {row["line"]: row for row in map(json.loads, text.splitlines())}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert (rows[1]["width"], rows[1]["height"]) == (1280, 150)
    assert (rows[3]["width"], rows[3]["height"]) == (200, 150)
    assert "format must be one of" in rows[4]["error"]
    assert rows[2]["status"] == rows[5]["status"] == "error"
    image = client.get(f"/v1/jobs/{job_id}/images/3", headers=auth())
    assert Image.open(io.BytesIO(image.content)).size == (200, 150)
    assert client.get(f"/v1/jobs/{job_id}/images/2", headers=auth()).status_code == 422
    # another key sees nothing of it
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(BOB)).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/results.jsonl", headers=auth(BOB)).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/images/1", headers=auth(BOB)).status_code == 404


def test_an_uploaded_file_is_a_job(client: TestClient) -> None:
    text = b"# my pages\nhttp://a.example/\n\nftp://b.example/\nhttp://c.example/\n"
    accepted = client.post(
        "/v1/jobs",
        files={"file": ("urls.txt", text, "text/plain")},
        data={"options": json.dumps({"width": 100, "height": 80})},
        headers=auth(),
    )
    assert accepted.status_code == 202, accepted.text
    summary = wait_for_job(client, accepted.json()["id"])
    assert (summary["total"], summary["ok"], summary["error"]) == (3, 2, 1)
    lines = client.get(f"/v1/jobs/{summary['id']}/results.jsonl", headers=auth()).text
    assert sorted(json.loads(line)["line"] for line in lines.splitlines()) == [2, 4, 5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"urls": []}, "urls must be a non-empty list"),
        ({"urls": ["http://a.example/"], "colour": 1}, "unknown field 'colour'"),
        ({"urls": ["http://a.example/"], "options": {"width": -1}}, "options: width must be"),
        ({"urls": ["http://a.example/"] * 11}, "at most 10 URLs"),
        ({"urls": ["http://a.example/"], "callback_url": "file:///etc/passwd"}, "callback_url"),
        ({"urls": ["http://a.example/"], "callback_url": "http://127.0.0.1:9/"}, "not a public"),
    ],
)
def test_a_bad_job_is_refused_with_the_reason(body: object, message: str) -> None:
    app = create_app(config(SCREENSHOT_API_MAX_JOB_URLS="10"), stub_backend(), load_settings({}))
    with TestClient(app) as client:
        answer = client.post("/v1/jobs", json=body, headers=auth())
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


def test_unfinished_jobs_per_key_are_limited() -> None:
    release = threading.Event()
    backend = PoolBackend(
        lambda: _BlockingEngine(release), "stub", MemoryStorage(), tabs=1, wait_queue=2, uploads=1
    )
    app = create_app(config(SCREENSHOT_API_MAX_ACTIVE_JOBS="1"), backend, load_settings({}))
    try:
        with TestClient(app) as client:
            first = client.post("/v1/jobs", json={"urls": ["http://a.example/"]}, headers=auth())
            assert first.status_code == 202
            second = client.post("/v1/jobs", json={"urls": ["http://b.example/"]}, headers=auth())
            assert second.status_code == 429 and "unfinished jobs" in second.json()["detail"]
            assert client.post(
                "/v1/jobs", json={"urls": ["http://b.example/"]}, headers=auth(BOB)
            ).status_code == 202
            release.set()
    finally:
        release.set()


def test_results_can_be_followed_until_the_job_ends(client: TestClient) -> None:
    job_id = client.post(
        "/v1/jobs", json={"urls": [f"http://s{n}.example/" for n in range(6)]}, headers=auth()
    ).json()["id"]
    with client.stream(
        "GET", f"/v1/jobs/{job_id}/results.jsonl?follow=true", headers=auth()
    ) as answer:
        lines = [line for line in answer.iter_lines() if line]
    assert len(lines) == 6 and all(json.loads(line)["status"] == "ok" for line in lines)


# -- the pool's admission -----------------------------------------------------------------------


class _BlockingEngine(Engine):
    """Captures only once ``release`` is set: keeps tabs busy on demand."""

    name = "stub"

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.supports = frozenset(CaptureOptions().to_dict())

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self.release.wait(30)
        return Capture(image=b"png", width=options.width, height=options.height, http_status=200)

    def close(self) -> None:
        pass


def test_the_pool_refuses_at_once_when_tabs_and_wait_queue_are_full() -> None:
    release = threading.Event()
    backend = PoolBackend(
        lambda: _BlockingEngine(release), "stub", MemoryStorage(), tabs=2, wait_queue=3, uploads=1
    )
    shot = Shot(1, "http://a.example/", CaptureOptions())

    async def scenario() -> tuple[list[str], float, int, int]:
        await backend.start()
        try:
            ids = [await backend.submit(shot, owner="a", engine="stub") for _ in range(5)]
            started = time.monotonic()
            with pytest.raises(Busy) as caught:
                await backend.submit(shot, owner="a", engine="stub")
            refused_in = time.monotonic() - started
            # background work stops earlier: half the wait queue stays for interactive requests
            with pytest.raises(Busy):
                await backend.submit(shot, owner="a", engine="stub", background=True)
            deadline = time.monotonic() + 5
            while backend.capacity()["running"] < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            capacity = backend.capacity()
            release.set()
            finals = [await backend.wait(ident, 10) for ident in ids]
            assert all(status is not None and status.state == DONE for status in finals)
            return ids, refused_in, caught.value.retry_after, capacity["queued"]
        finally:
            release.set()
            await backend.close()

    ids, refused_in, retry_after, queued = asyncio.run(scenario())
    assert len(set(ids)) == 5 and refused_in < 0.05
    assert retry_after >= 1 and queued == 3


# -- docs, health, metrics ----------------------------------------------------------------------


def test_openapi_documents_the_endpoints_and_every_capture_option(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/v1/screenshots", "/v1/screenshots/{ident}", "/v1/jobs", "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}/results.jsonl", "/healthz", "/readyz"} <= set(document["paths"])
    body = document["paths"]["/v1/screenshots"]["post"]["requestBody"]["content"]
    properties = body["application/json"]["schema"]["properties"]
    assert set(CaptureOptions().to_dict()) <= set(properties)
    assert {"url", "wait", "engine"} <= set(properties)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_openapi_states_the_option_bounds_and_the_servers_limits() -> None:
    app = create_app(
        config(SCREENSHOT_API_MAX_WAIT="12", SCREENSHOT_API_MAX_JOB_URLS="50"),
        stub_backend(), load_settings({}),
    )
    with TestClient(app) as test_client:
        document = test_client.get("/openapi.json").json()
    shot = document["paths"]["/v1/screenshots"]["post"]["requestBody"]["content"]
    properties = shot["application/json"]["schema"]["properties"]
    assert (properties["width"]["minimum"], properties["width"]["maximum"]) == (1, 8192)
    assert properties["width"]["default"] == 1280 and properties["width"]["description"]
    # null and "" mean "not given" (the default applies), for every option
    assert properties["format"]["enum"] == ["png", "jpeg", "webp", "", None]
    assert properties["timeout"]["exclusiveMinimum"] == 0
    assert properties["headers"]["type"] == ["object", "string", "null"]
    assert properties["headers"]["additionalProperties"]["type"] == "string"
    poll = document["paths"]["/v1/screenshots/{ident}"]["get"]["parameters"]
    assert [p["schema"]["maximum"] for p in poll if p["name"] == "wait"] == [12]
    assert properties["wait"]["maximum"] == 12
    job = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    schema = job["application/json"]["schema"]
    assert schema["properties"]["urls"]["maxItems"] == 50
    options = schema["properties"]["options"]
    assert options["additionalProperties"] is False
    assert options["properties"]["quality"]["anyOf"][0]["maximum"] == 100


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"pool", "storage", "browser"}
    client.post("/v1/screenshots", json={"url": "http://m.example/", "wait": 5}, headers=auth())
    text = client.get("/metrics").text
    for name in (
        "screenshots_captures_total", "screenshots_capture_duration_seconds_bucket",
        "screenshots_queue_wait_seconds_bucket", "screenshots_captures_in_flight",
        "screenshots_queue_depth", "screenshots_browser_restarts_total",
        "screenshots_blocked_requests_total", "screenshots_api_responses_total",
    ):
        assert name in text, name
    assert 'screenshots_captures_total{engine="stub",status="ok"}' in text


def test_the_web_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="job-form"' in page.text
    assert client.get("/static/app.js").status_code == 200


# -- callbacks and the worker exporter ----------------------------------------------------------


def test_callback_signatures_verify_and_expire() -> None:
    body = b'{"event":"job.finished"}'
    header = sign(ALICE, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(ALICE, body, header, now=1_700_000_100)
    assert not verify(BOB, body, header, now=1_700_000_100)
    assert not verify(ALICE, body + b" ", header, now=1_700_000_100)
    assert not verify(ALICE, body, header, now=1_700_001_000)  # too old: a replay
    assert not verify(ALICE, body, "garbage")


def test_callbacks_are_retried_with_backoff_until_delivered() -> None:
    import httpx2

    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(503 if len(seen) < 3 else 204)

    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    async def scenario() -> Delivery:
        delivery = Delivery("http://hooks.example/done")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            await deliver(
                delivery, {"event": "job.finished", "job": {"id": "j"}}, ALICE,
                attempts=5, backoff=1.0, allow_private=True, client=http, sleep=sleep,
            )
        return delivery

    delivery = asyncio.run(scenario())
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    assert pauses == [1.0, 2.0]
    last = seen[-1]
    assert verify(ALICE, last.content, last.headers["X-Screenshots-Signature"])
    assert last.headers["X-Screenshots-Event"] == "job.finished"


def test_worker_events_become_metrics() -> None:
    from screenshots.api import metrics

    def value(name: str, **labels: str) -> float:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_ok = value("screenshots_captures_total", status="ok", engine="selenium")
    before_waits = value("screenshots_queue_wait_seconds_count")
    collector = EventCollector()
    collector.handle({"type": "task-sent", "uuid": "t1", "timestamp": 100.0,
                      "kwargs": "{'engine': 'selenium', 'max_age': None}"})
    collector.handle({"type": "task-received", "uuid": "t1", "timestamp": 101.0})
    collector.handle({"type": "task-started", "uuid": "t1", "timestamp": 102.5})
    assert value("screenshots_captures_in_flight") >= 1
    collector.handle({
        "type": "task-succeeded", "uuid": "t1", "timestamp": 103.0, "runtime": 0.5,
        "result": "[{'line': 1, 'url': 'http://a/', 'status': 'ok', 'link': 'https://s3/x...",
    })
    assert value("screenshots_captures_total", status="ok", engine="selenium") == before_ok + 1
    assert value("screenshots_queue_wait_seconds_count") == before_waits + 1
    assert metrics.IN_FLIGHT is not None
