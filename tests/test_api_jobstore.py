"""The job stores on their own: the Redis one on a real Redis (rows once per line, leases held
by one replica at a time, orphans, expiry), and what a store that does not answer gives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from screenshots.api.auth import Principal
from screenshots.api.backends.base import RUNNING, Backend, Status
from screenshots.api.config import load_api_config
from screenshots.api.errors import ApiError
from screenshots.api.jobs import JobManager
from screenshots.api.jobstore import DONE, JobRecord, MemoryJobStore, RedisJobStore
from screenshots.api.payloads import JobRequest
from screenshots.api.retention import lifecycle_configuration
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result, error_result
from screenshots.core.settings import Secret
from screenshots.core.shot import Shot
from screenshots.storage.memory import MemoryStorage
from screenshots.storage.s3 import S3Storage
from support.seaweedfs import S3Server
from support.services import RedisDb

KEY = "jobstore-key-0123456789"


def ok_row(line: int) -> Result:
    return Result(line=line, url=f"http://a.example/{line}", status="ok", key=f"k/{line}.png")


def run(redis_db: RedisDb, scenario: Callable[[aioredis.Redis], Awaitable[None]]) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_db.url)
        try:
            await scenario(client)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_line_gets_one_row_however_often_it_is_recorded(redis_db: RedisDb) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        store = RedisJobStore(client, ttl=60)
        shots: list[Shot | Result] = [
            Shot(1, "http://a.example/1", CaptureOptions()), error_result(2, "x", "bad")
        ]
        await store.create(JobRecord("j1", "alice", "stub", 2), shots)
        assert [item.line for item in await store.items("j1")] == [1, 2]
        assert await store.add_rows("j1", [ok_row(1), ok_row(1)]) == 1
        assert await store.add_rows("j1", [ok_row(1), error_result(2, "x", "bad")]) == 1
        record = await store.get("j1")
        assert record is not None and (record.ok, record.error, record.done) == (1, 1, 2)
        assert [row.line for row in await store.rows_from("j1", 0)] == [1, 2]
        assert [row.line for row in await store.rows_from("j1", 1)] == [2]
        assert await store.done_lines("j1") == {1, 2}
        assert await store.active("alice") == 1
        await store.finish("j1")
        assert await store.active("alice") == 0
        finished = await store.get("j1")
        assert finished is not None and finished.state == DONE and finished.finished_at
        keys = RedisJobStore.keys("j1")
        for role in ("record", "items", "rows", "order"):
            assert 0 < await client.ttl(keys[role]) <= 60, role

    run(redis_db, scenario)


def test_a_lease_is_held_by_one_replica_and_lapses_when_not_renewed(redis_db: RedisDb) -> None:
    async def scenario(client: aioredis.Redis) -> None:
        one, two = RedisJobStore(client, ttl=60), RedisJobStore(client, ttl=60)
        await one.create(JobRecord("j2", "alice", "stub", 1), [])
        assert await one.acquire("j2", 0.3)
        assert not await two.acquire("j2", 0.3)
        assert await one.renew("j2", 0.3) and not await two.renew("j2", 0.3)
        assert "j2" not in await two.orphans()
        await asyncio.sleep(0.4)  # one stops renewing: it was killed
        assert "j2" in await two.orphans()
        assert await two.acquire("j2", 0.3)
        assert not await one.renew("j2", 0.3)  # the old holder learns it lost it
        await one.release("j2")  # and cannot release another's lease
        assert not await one.acquire("j2", 0.3)
        await two.release("j2")
        await two.retire("j2", "alice")
        assert "j2" not in await two.orphans()

    run(redis_db, scenario)


def test_an_unreachable_job_store_is_503_not_500() -> None:
    async def scenario() -> None:
        client = aioredis.Redis(
            host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        config = load_api_config({"SCREENSHOT_API_KEYS": f"alice:{KEY}"})
        jobs = JobManager(object(), config, store=RedisJobStore(client, ttl=60))  # type: ignore[arg-type]
        try:
            with pytest.raises(ApiError) as created:
                await jobs.create(
                    Principal("alice", Secret(KEY)),
                    JobRequest(items=[error_result(1, "x", "bad")], engine="stub",
                               callback_url=None),
                )
            assert created.value.status == 503
            with pytest.raises(ApiError) as read:
                await jobs.get("j", "alice")
            assert read.value.status == 503
        finally:
            await jobs.close()
            await client.aclose()

    asyncio.run(scenario())


def test_the_memory_store_keeps_one_row_per_line_too() -> None:
    async def scenario() -> None:
        store = MemoryJobStore(ttl=60)
        await store.create(JobRecord("m", "alice", "stub", 1), [])
        assert await store.add_rows("m", [ok_row(1), ok_row(1)]) == 1
        assert await store.done_lines("m") == {1}

    asyncio.run(scenario())


def test_the_bucket_rule_expires_everything_under_the_prefix_after_the_ttl() -> None:
    (rule,) = lifecycle_configuration(7 * 24 * 3600, "shots/")["Rules"]
    assert rule["Filter"] == {"Prefix": "shots/"} and rule["Expiration"] == {"Days": 7}
    assert lifecycle_configuration(3600)["Rules"][0]["Expiration"] == {"Days": 1}
    both = lifecycle_configuration(30 * 24 * 3600, "shots/", version_days=7)["Rules"]
    assert [r["ID"] for r in both] == ["screenshots-api-results", "screenshots-versions"]


@pytest.mark.integration
def test_the_bucket_takes_the_rule(s3_bucket: tuple[S3Server, str]) -> None:
    """What a deployment applies: the bucket (SeaweedFS) accepts the rule and keeps it."""
    server, bucket = s3_bucket
    client = server.client()
    storage = S3Storage(bucket, client=client, link_expiry=600)
    configuration = lifecycle_configuration(2 * 24 * 3600, "screenshots/")
    storage.put_lifecycle(configuration)
    kept = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(rule["ID"], rule["Expiration"]) for rule in kept] == [
        ("screenshots-api-results", {"Days": 2})
    ]


class Endless(Backend):
    """A back end whose captures never end (a job stays in flight)."""

    mode = "test"
    storage = MemoryStorage()

    async def submit(self, shot: Shot, *, owner: str, engine: str, background: bool = False,
                     ident: str | None = None) -> str:
        return ident or "x"

    async def lookup(self, ids: Sequence[str]) -> list[Status | None]:
        return [Status(ident, "alice", RUNNING) for ident in ids]

    async def wait(self, ident: str, timeout: float) -> Status | None:
        await asyncio.sleep(timeout)
        return Status(ident, "alice", RUNNING)


def test_a_replica_stopped_normally_hands_its_jobs_over_at_once(redis_db: RedisDb) -> None:
    """A rolling restart: the stopped replica releases its leases, so another one takes its
    jobs over without waiting for them to lapse."""

    async def scenario(client: aioredis.Redis) -> None:
        config = load_api_config({"SCREENSHOT_API_KEYS": f"alice:{KEY}",
                                  "SCREENSHOT_API_JOB_LEASE": "30"})
        store = RedisJobStore(client, ttl=60)
        jobs = JobManager(Endless(), config, store=store, poll_interval=0.01)
        await jobs.start()
        job = await jobs.create(
            Principal("alice", Secret(KEY)),
            JobRequest(items=[Shot(1, "http://a.example/", CaptureOptions())], engine="stub",
                       callback_url=None),
        )
        other = RedisJobStore(client, ttl=60)
        assert job.id not in await other.orphans()  # fed, under a 30 s lease
        await jobs.close()
        assert job.id in await other.orphans()
        assert await other.acquire(job.id, 1)

    run(redis_db, scenario)
