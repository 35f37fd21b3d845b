"""Where batch jobs live: in Redis in broker mode (any replica answers for any job), in this
process in broker-less mode (one process by design).

A job is a record (id, owner, engine, URL count, the callback and its state, the job it is
compared with, progress counters), its items (the URLs and their options, read by the replica
that feeds it) and its rows. In Redis:

- ``screenshots-api:job:<id>``: the record, a hash (``meta`` JSON, ``state``, ``ok``,
  ``error``, ``finished_at``, ``callback`` JSON);
- ``screenshots-api:job:<id>:items``: the items, JSON;
- the rows, one per input line, in the row store's hash
  (:func:`screenshots.delivery.rowstore.rows_key`), written only if the line has none yet, so
  a URL captured twice (a job taken over) still has exactly one row; and
  ``screenshots-api:job:<id>:order``, the lines in the order they finished;
- ``screenshots-api:job:<id>:lease``: which replica feeds the job (``SET NX PX``, renewed);
- ``screenshots-api:job:<id>:callback-sent``: set once a callback was acknowledged.

Every one of them expires ``result_ttl`` seconds after the job's last change. The jobs still
to be fed (or whose callback is still to be sent) are in the set ``screenshots-api:jobs:active``
and, per owner, ``screenshots-api:owner:<name>:active``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from screenshots.core.result import OK, Result
from screenshots.core.shot import OptionsMemo, Shot
from screenshots.delivery.rowstore import rows_key

#: ``state`` of a job still capturing.
RUNNING = "running"
#: ``state`` of a job whose every item has a row.
DONE = "done"
#: Finished jobs kept at most by the memory store (oldest dropped first), whatever their age.
MAX_KEPT_JOBS = 1000

PREFIX = "screenshots-api:job:"
ACTIVE = "screenshots-api:jobs:active"

# Record a row unless its line has one: KEYS rows, order, record, items; ARGV line, row,
# counter, ttl. Every key of the job then lives ``ttl`` more seconds.
_ADD_ROW = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[4]) end
  return 1
end
return 0
"""
# Renew (ARGV[2] ms) or release (ARGV[2] = 0) a lease only if this replica holds it.
_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class JobRecord:
    """What is known about a job, without its items and rows."""

    id: str
    owner: str
    engine: str
    total: int
    created_at: str = field(default_factory=now_text)
    callback_url: str | None = None
    compare: str | None = None
    state: str = RUNNING
    ok: int = 0
    error: int = 0
    finished_at: str | None = None
    callback: dict[str, Any] | None = None

    @property
    def done(self) -> int:
        return self.ok + self.error

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id, "owner": self.owner, "engine": self.engine, "total": self.total,
            "created_at": self.created_at, "callback_url": self.callback_url,
            "compare": self.compare,
        }

    def summary(self) -> dict[str, Any]:
        """The job's progress, as ``GET /v1/jobs/{id}`` shows it and the callback sends it."""
        return {
            "id": self.id,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "ok": self.ok,
            "error": self.error,
            "engine": self.engine,
            "compare": self.compare,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "results_url": f"/v1/jobs/{self.id}/results.jsonl",
            "callback": self.callback,
        }


class JobStore:
    """The interface of both stores. ``shared``: other processes see the same jobs."""

    shared = False

    async def create(self, record: JobRecord, items: list[Shot | Result]) -> None:
        raise NotImplementedError

    async def get(self, job_id: str) -> JobRecord | None:
        raise NotImplementedError

    async def items(self, job_id: str) -> list[Shot | Result]:
        raise NotImplementedError

    async def add_rows(self, job_id: str, rows: list[Result]) -> int:
        """Record each row unless its line has one; how many were new."""
        raise NotImplementedError

    async def rows_from(self, job_id: str, start: int) -> list[Result]:
        """The rows from the ``start``-th finished on, in the order they finished."""
        raise NotImplementedError

    async def row(self, job_id: str, line: int) -> Result | None:
        raise NotImplementedError

    async def done_lines(self, job_id: str) -> set[int]:
        """The input lines that have a row."""
        return {row.line for row in await self.rows_from(job_id, 0)}

    async def finish(self, job_id: str) -> None:
        raise NotImplementedError

    async def save_callback(self, job_id: str, delivery: dict[str, Any]) -> None:
        raise NotImplementedError

    async def callback_sent(self, job_id: str) -> bool:
        raise NotImplementedError

    async def mark_callback_sent(self, job_id: str) -> None:
        raise NotImplementedError

    async def retire(self, job_id: str, owner: str) -> None:
        """The job needs no more work (rows and callback done)."""
        raise NotImplementedError

    async def active(self, owner: str) -> int:
        """Jobs of ``owner`` still running."""
        raise NotImplementedError

    async def acquire(self, job_id: str, seconds: float) -> bool:
        """Take the lease on feeding ``job_id`` if nobody holds it."""
        return True

    async def renew(self, job_id: str, seconds: float) -> bool:
        """Extend this replica's lease; ``False`` if it lost it."""
        return True

    async def release(self, job_id: str) -> None:
        return None

    async def orphans(self) -> list[str]:
        """Jobs still to be worked on that no replica holds a lease on."""
        return []

    async def wait_update(self, job_id: str, timeout: float) -> None:
        """Return when the job may have changed (at most after ``timeout`` seconds)."""
        await asyncio.sleep(timeout)

    async def close(self) -> None:
        return None


@dataclass
class _Held:
    record: JobRecord
    items: list[Shot | Result]
    rows: list[Result] = field(default_factory=list)
    by_line: dict[int, Result] = field(default_factory=dict)
    updated: asyncio.Event = field(default_factory=asyncio.Event)
    ended: float | None = None


class MemoryJobStore(JobStore):
    """Jobs in this process (broker-less mode), for ``ttl`` seconds after they end."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._jobs: OrderedDict[str, _Held] = OrderedDict()

    def _evict(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for job_id in [
            key for key, held in self._jobs.items()
            if held.ended is not None and now - held.ended > self.ttl
        ]:
            del self._jobs[job_id]
        finished = [key for key, held in self._jobs.items() if held.ended is not None]
        for job_id in finished[: max(0, len(finished) - MAX_KEPT_JOBS)]:
            del self._jobs[job_id]

    async def create(self, record: JobRecord, items: list[Shot | Result]) -> None:
        self._evict()
        self._jobs[record.id] = _Held(record, items)

    async def get(self, job_id: str) -> JobRecord | None:
        held = self._jobs.get(job_id)
        return held.record if held else None

    async def items(self, job_id: str) -> list[Shot | Result]:
        return self._jobs[job_id].items

    async def add_rows(self, job_id: str, rows: list[Result]) -> int:
        held = self._jobs[job_id]
        added = 0
        for row in rows:
            if row.line in held.by_line:
                continue
            held.rows.append(row)
            held.by_line[row.line] = row
            if row.status == OK:
                held.record.ok += 1
            else:
                held.record.error += 1
            added += 1
        self._signal(held)
        return added

    async def rows_from(self, job_id: str, start: int) -> list[Result]:
        held = self._jobs.get(job_id)
        return held.rows[start:] if held else []

    async def row(self, job_id: str, line: int) -> Result | None:
        held = self._jobs.get(job_id)
        return held.by_line.get(line) if held else None

    async def finish(self, job_id: str) -> None:
        held = self._jobs[job_id]
        held.record.state, held.record.finished_at = DONE, now_text()
        held.ended = asyncio.get_running_loop().time()
        self._signal(held)

    async def save_callback(self, job_id: str, delivery: dict[str, Any]) -> None:
        self._jobs[job_id].record.callback = delivery

    async def callback_sent(self, job_id: str) -> bool:
        held = self._jobs.get(job_id)
        return bool(held and held.record.callback and held.record.callback["state"] == "delivered")

    async def mark_callback_sent(self, job_id: str) -> None:
        return None

    async def retire(self, job_id: str, owner: str) -> None:
        return None

    async def active(self, owner: str) -> int:
        return sum(
            1 for held in self._jobs.values()
            if held.record.owner == owner and held.record.state == RUNNING
        )

    async def wait_update(self, job_id: str, timeout: float) -> None:
        held = self._jobs.get(job_id)
        if held is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(held.updated.wait(), timeout)

    @staticmethod
    def _signal(held: _Held) -> None:
        held.updated.set()
        held.updated = asyncio.Event()


class RedisJobStore(JobStore):
    """Jobs in Redis (broker mode): every replica sees every job."""

    shared = True

    def __init__(self, client: aioredis.Redis, ttl: int, *, poll: float = 0.25) -> None:
        self.client = client
        self.ttl = ttl
        self.poll = poll
        #: This replica, as the value of the leases it holds.
        self.replica = uuid.uuid4().hex
        self._add_row = client.register_script(_ADD_ROW)
        self._lease = client.register_script(_LEASE)

    @staticmethod
    def keys(job_id: str) -> dict[str, str]:
        """Every Redis key of job ``job_id``, by role."""
        base = PREFIX + job_id
        return {
            "record": base, "items": base + ":items", "rows": rows_key(job_id),
            "order": base + ":order", "lease": base + ":lease", "sent": base + ":callback-sent",
        }

    @staticmethod
    def _owned(owner: str) -> str:
        return f"screenshots-api:owner:{owner}:active"

    async def create(self, record: JobRecord, items: list[Shot | Result]) -> None:
        keys = self.keys(record.id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(keys["record"], mapping={
                "meta": json.dumps(record.meta()), "state": record.state, "ok": 0, "error": 0,
                "callback": json.dumps(record.callback),
            })
            pipe.set(keys["items"], json.dumps([_encode(item) for item in items]), ex=self.ttl)
            pipe.expire(keys["record"], self.ttl)
            pipe.sadd(ACTIVE, record.id)
            pipe.sadd(self._owned(record.owner), record.id)
            await pipe.execute()

    async def get(self, job_id: str) -> JobRecord | None:
        values = await self.client.hgetall(PREFIX + job_id)
        if not values or b"meta" not in values:
            return None
        meta = json.loads(values[b"meta"])
        finished = values.get(b"finished_at")
        return JobRecord(
            id=meta["id"], owner=meta["owner"], engine=meta["engine"], total=meta["total"],
            created_at=meta["created_at"], callback_url=meta.get("callback_url"),
            compare=meta.get("compare"), state=_text(values[b"state"]),
            ok=int(values.get(b"ok", 0)), error=int(values.get(b"error", 0)),
            finished_at=_text(finished) if finished else None,
            callback=json.loads(values.get(b"callback", b"null")),
        )

    async def items(self, job_id: str) -> list[Shot | Result]:
        raw = await self.client.get(self.keys(job_id)["items"])
        if not raw:
            return []
        memo: OptionsMemo = {}
        return [_decode(item, memo) for item in json.loads(raw)]

    async def add_rows(self, job_id: str, rows: list[Result]) -> int:
        keys = self.keys(job_id)
        order = [keys["rows"], keys["order"], keys["record"], keys["items"]]
        async with self.client.pipeline(transaction=False) as pipe:
            for row in rows:
                counter = "ok" if row.status == OK else "error"
                await self._add_row(
                    keys=order, args=[row.line, json.dumps(row.to_dict()), counter, self.ttl],
                    client=pipe,
                )
            added = await pipe.execute()
        return sum(int(value) for value in added)

    async def rows_from(self, job_id: str, start: int) -> list[Result]:
        keys = self.keys(job_id)
        lines = await self.client.lrange(keys["order"], start, -1)
        if not lines:
            return []
        raw = await self.client.hmget(keys["rows"], lines)
        return [Result.from_dict(json.loads(value)) for value in raw if value is not None]

    async def row(self, job_id: str, line: int) -> Result | None:
        raw = await self.client.hget(self.keys(job_id)["rows"], str(line))
        return Result.from_dict(json.loads(raw)) if raw else None

    async def done_lines(self, job_id: str) -> set[int]:
        return {int(line) for line in await self.client.hkeys(self.keys(job_id)["rows"])}

    async def finish(self, job_id: str) -> None:
        await self.client.hset(
            PREFIX + job_id, mapping={"state": DONE, "finished_at": now_text()}
        )
        await self._touch(job_id)

    async def save_callback(self, job_id: str, delivery: dict[str, Any]) -> None:
        await self.client.hset(PREFIX + job_id, "callback", json.dumps(delivery))
        await self._touch(job_id)

    async def callback_sent(self, job_id: str) -> bool:
        return bool(await self.client.exists(self.keys(job_id)["sent"]))

    async def mark_callback_sent(self, job_id: str) -> None:
        await self.client.set(self.keys(job_id)["sent"], "1", ex=self.ttl)

    async def retire(self, job_id: str, owner: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.srem(ACTIVE, job_id)
            pipe.srem(self._owned(owner), job_id)
            await pipe.execute()
        await self._touch(job_id)

    async def active(self, owner: str) -> int:
        ids = [_text(raw) for raw in await self.client.smembers(self._owned(owner))]
        if not ids:
            return 0
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(PREFIX + job_id, "state")
            states = await pipe.execute()
        gone = [job_id for job_id, state in zip(ids, states, strict=True) if state is None]
        if gone:  # expired with all replicas down: not active any more
            await self.client.srem(self._owned(owner), *gone)
        return sum(1 for state in states if state == RUNNING.encode())

    async def acquire(self, job_id: str, seconds: float) -> bool:
        lease = self.keys(job_id)["lease"]
        return bool(await self.client.set(lease, self.replica, nx=True, px=int(seconds * 1000)))

    async def renew(self, job_id: str, seconds: float) -> bool:
        lease = self.keys(job_id)["lease"]
        return bool(await self._lease(keys=[lease], args=[self.replica, int(seconds * 1000)]))

    async def release(self, job_id: str) -> None:
        await self._lease(keys=[self.keys(job_id)["lease"]], args=[self.replica, 0])

    async def orphans(self) -> list[str]:
        ids = [_text(raw) for raw in await self.client.smembers(ACTIVE)]
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(self.keys(job_id)["lease"], PREFIX + job_id)
            found = await pipe.execute()
        orphans, gone = [], []
        for job_id, count in zip(ids, found, strict=True):
            if count == 0:
                gone.append(job_id)  # its record expired: nothing left to finish
            elif count == 1 and not await self.client.exists(self.keys(job_id)["lease"]):
                orphans.append(job_id)
        if gone:
            await self.client.srem(ACTIVE, *gone)
        return orphans

    async def wait_update(self, job_id: str, timeout: float) -> None:
        await asyncio.sleep(min(timeout, self.poll))

    async def _touch(self, job_id: str) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for role, key in self.keys(job_id).items():
                if role != "lease":
                    pipe.expire(key, self.ttl)
            await pipe.execute()


def _encode(item: Shot | Result) -> dict[str, Any]:
    if isinstance(item, Shot):
        return {"shot": item.to_message()}
    return {"row": item.to_dict()}


def _decode(item: dict[str, Any], memo: OptionsMemo) -> Shot | Result:
    if "shot" in item:
        return Shot.from_message(item["shot"], memo)
    return Result.from_dict(item["row"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
