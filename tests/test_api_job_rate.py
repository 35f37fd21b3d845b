"""A broker-less batch job runs at the pool's pace, not at its feeder's.

The feeder used to sleep whole seconds (``Retry-After``) whenever the wait queue was half full,
so a job of stub URLs crawled at about a dozen captures a second while the pool sat idle. Here
the same pool captures a few thousand stub URLs twice in one test: once driven directly (as
many clients as the pool admits, each submitting and waiting, so it never runs dry), once as
one job. The job's rate must be a large share of the direct rate: a ratio, not a fixed time,
so a loaded machine slows both alike.
"""

from __future__ import annotations

import asyncio
import time

from engines import create_engine
from screenshots.api.auth import Principal
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import load_api_config
from screenshots.api.errors import Busy
from screenshots.api.jobs import JobManager
from screenshots.api.jobstore import DONE
from screenshots.api.payloads import JobRequest
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Secret, load_settings
from screenshots.core.shot import Shot
from screenshots.storage.memory import MemoryStorage

KEY = "rate-key-0123456789abcdef"
#: URLs of each run.
COUNT = 2000
TABS, WAIT_QUEUE = 2, 4
#: Small images: the stub's work is small, so any pause of the feeder shows.
OPTIONS = CaptureOptions(width=32, height=32)
#: Smallest share of the direct rate the job must reach (it keeps half the wait queue free
#: for interactive requests, and looks at its captures between rounds).
MIN_RATIO = 0.5


def shots(start: int) -> list[Shot]:
    return [
        Shot(line=i, url=f"http://s{start + i}.example/", options=OPTIONS, queued_at=time.time())
        for i in range(1, COUNT + 1)
    ]


async def direct_rate(backend: PoolBackend) -> float:
    """Captures per second with the pool kept full by interactive clients."""
    pending = shots(0)

    async def client() -> None:
        while pending:
            shot = pending.pop()
            while True:
                try:
                    ident = await backend.submit(shot, owner="direct", engine="stub")
                    break
                except Busy:  # another client took the place: try after the next capture
                    await asyncio.sleep(0)
            status = await backend.wait(ident, 60)
            assert status is not None and status.done and status.result is not None
            assert status.result.ok, status.result.error

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(TABS + WAIT_QUEUE)))
    return COUNT / (time.monotonic() - started)


async def job_rate(backend: PoolBackend, give_up: float) -> float:
    """Captures per second of one job of :data:`COUNT` URLs on the same pool (0 if it is not
    done after ``give_up`` seconds: the old feeder took minutes)."""
    config = load_api_config({"SCREENSHOT_API_KEYS": f"rate:{KEY}"})
    jobs = JobManager(backend, config)
    try:
        started = time.monotonic()
        job = await jobs.create(
            Principal("rate", Secret(KEY)),
            JobRequest(items=list(shots(COUNT)), engine="stub", callback_url=None),
        )

        async def finished() -> None:
            nonlocal job
            while job.state != DONE:  # woken by each row, no fixed sleep
                await jobs.store.wait_update(job.id, 15)
                job = await jobs.get(job.id, "rate")

        try:
            await asyncio.wait_for(finished(), give_up)
        except TimeoutError:
            return 0.0
        elapsed = time.monotonic() - started
    finally:
        await jobs.close()
    assert job.ok == COUNT, job.summary()
    return COUNT / elapsed


def test_a_job_runs_at_the_pools_rate_not_the_feeders() -> None:
    settings = load_settings({})

    async def main() -> tuple[float, float]:
        backend = PoolBackend(
            lambda: create_engine("stub", settings), "stub", MemoryStorage(),
            tabs=TABS, wait_queue=WAIT_QUEUE, uploads=2, max_records=4 * COUNT,
        )
        await backend.start()
        try:
            direct = await direct_rate(backend)
            return direct, await job_rate(backend, give_up=10 + 10 * COUNT / direct)
        finally:
            await backend.close()

    direct, job = asyncio.run(main())
    assert job >= MIN_RATIO * direct, (
        f"the job ran at {job:.0f} captures/s, the pool at {direct:.0f}/s when kept full"
    )
