"""The API's limits as replicas share them: one bucket per key and one per failing address.

Broker mode counts in the Redis result backend, so two API instances on the same Redis (two
``create_app()`` here, as two replicas behind a balancer) enforce one limit; broker-less mode
counts in the process. ``/readyz`` says which mode runs and shows no server paths.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import ApiConfig, load_api_config
from screenshots.api.ratelimit import RateLimiter, open_storage
from screenshots.core.settings import Settings, load_settings
from screenshots.storage.local import LocalStorage
from screenshots.storage.memory import MemoryStorage
from support.services import RedisDb

ALICE = "alice-key-0123456789"


def unique_name() -> str:
    """A key name no other test of the session counts against (counters outlive an app)."""
    return f"k{uuid.uuid4().hex[:12]}"


def api_config(name: str, **env: str) -> ApiConfig:
    return load_api_config({"SCREENSHOT_API_KEYS": f"{name}:{ALICE}", **env})


def stub_backend(storage: object | None = None) -> PoolBackend:
    settings = load_settings({})
    return PoolBackend(
        lambda: create_engine("stub", settings),
        "stub",
        storage or MemoryStorage(),  # type: ignore[arg-type]
        tabs=1,
        wait_queue=1,
        uploads=1,
    )


def broker_settings(redis_db: RedisDb) -> Settings:
    """Broker mode's settings: what the limiter reads is the Redis result backend."""
    return load_settings(
        {
            "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
            "CELERY_RESULT_BACKEND": redis_db.url,
        }
    )


def replicas(
    count: int, config: ApiConfig, settings: Settings, address: str
) -> Iterator[list[TestClient]]:
    """``count`` started API instances of one configuration, seen from client ``address``."""
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            app: FastAPI = create_app(config, stub_backend(), settings)
            clients.append(stack.enter_context(TestClient(app, client=(address, 40000))))
        yield clients


def auth(key: str = ALICE) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.integration
def test_requests_spread_over_two_replicas_are_limited_as_one_bucket(redis_db: RedisDb) -> None:
    name = unique_name()
    config = api_config(name, SCREENSHOT_API_RATE="0.1", SCREENSHOT_API_BURST="6")
    for one, two in replicas(2, config, broker_settings(redis_db), "10.1.0.1"):
        # Given a burst of 6 for the key, and its requests alternating between two replicas
        codes = [
            (one if number % 2 else two).get("/v1/jobs/none", headers=auth()).status_code
            for number in range(10)
        ]
        # Then 6 pass in all (not 6 on each), and the rest are refused on both replicas
        assert codes == [404] * 6 + [429] * 4
        refused = one.get("/v1/jobs/none", headers=auth())
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert f"rate limit exceeded for API key '{name}'" in refused.json()["detail"]


def test_broker_less_replicas_count_each_in_its_own_process() -> None:
    """Broker-less mode is one process by design: two apps do not share their counters."""
    config = api_config(unique_name(), SCREENSHOT_API_RATE="0.1", SCREENSHOT_API_BURST="3")
    for one, two in replicas(2, config, load_settings({}), "10.1.0.2"):
        assert [one.get("/v1/jobs/none", headers=auth()).status_code for _ in range(4)] == [
            404, 404, 404, 429
        ]
        assert two.get("/v1/jobs/none", headers=auth()).status_code == 404


@pytest.mark.integration
def test_wrong_keys_from_one_address_are_slowed_down_on_every_replica(redis_db: RedisDb) -> None:
    config = api_config(unique_name(), SCREENSHOT_API_AUTH_FAILURE_BURST="20")
    address = f"10.2.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for one, two in replicas(2, config, broker_settings(redis_db), address):
        # Given 200 requests with wrong keys, spread over two replicas
        codes = [
            (one if number % 2 else two)
            .get("/v1/jobs/none", headers=auth(f"wrong-key-{number:012d}"))
            .status_code
            for number in range(200)
        ]
        # Then the first 20 are told the key is wrong, and the rest are slowed down
        assert codes[:20] == [401] * 20
        assert set(codes[20:]) == {429}
        refused = two.get("/v1/jobs/none", headers=auth("another-wrong-key-0000"))
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "too many failed authentications" in refused.json()["detail"]
        # While blocked, a right key gets no answer about itself either (no oracle)
        assert one.get("/v1/jobs/none", headers=auth()).status_code == 429
        # The operations endpoints stay open
        assert one.get("/healthz").status_code == 200
        metrics = one.get("/metrics").text
        assert 'screenshots_api_rejections_total{reason="auth_failures"}' in metrics


def test_other_addresses_and_right_keys_are_not_slowed_down() -> None:
    config = api_config(unique_name(), SCREENSHOT_API_AUTH_FAILURE_BURST="3")
    settings = load_settings({})
    app = create_app(config, stub_backend(), settings)
    with TestClient(app, client=("10.3.0.1", 1)) as bad, TestClient(
        app, client=("10.3.0.2", 1)
    ) as good:
        codes = [bad.get("/v1/jobs/none", headers=auth("x" * 20)).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert [good.get("/v1/jobs/none", headers=auth()).status_code for _ in range(5)] == [
            404
        ] * 5


def test_readyz_reports_the_mode_and_no_server_paths(tmp_path: Path) -> None:
    storage_dir = tmp_path / "secret-place" / "api-data"
    app = create_app(
        api_config(unique_name()), stub_backend(LocalStorage(storage_dir)), load_settings({})
    )
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["mode"] == "pool"
        assert body["scope"] == "one process by design"
        assert str(tmp_path) not in ready.text and "secret-place" not in ready.text
        assert set(body["checks"]) == {"pool", "storage", "browser"}
        assert body["checks"]["storage"]["ok"] is True


def test_the_openapi_document_asks_no_key_of_healthz_and_readyz() -> None:
    app = create_app(api_config(unique_name()), stub_backend(), load_settings({}))
    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        assert document["security"] == [{"bearer": []}]  # the /v1 routes need a key
        for path in ("/healthz", "/readyz"):
            assert document["paths"][path]["get"]["security"] == [], path
            assert client.get(path).status_code == 200


def test_a_redis_that_does_not_answer_lets_requests_through() -> None:
    """The limiter must not turn a Redis outage into refusing every caller."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    limiter = RateLimiter(1.0, 1, open_storage(f"redis://127.0.0.1:{port}/0"))
    assert [limiter.wait_time("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.blocked_for("a") == 0.0
