"""A Celery task's batch captured concurrently on the process's one engine (issue #15).

:func:`tasks.capture.capture_batch` with a real Selenium engine of three tabs against the local
test site, real Redis for the job's row store, storage in memory: the shots are in flight
together, the rows come back in input order, each row is recorded in the row store, and a shot
whose upload finds the storage down is left pending (in order) while the others finish.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import redis

from engines import chromium
from engines.base import Capture
from engines.selenium import SeleniumEngine
from screenshots.core.errors import StorageUnavailable
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings
from screenshots.delivery.rowstore import RowStore
from screenshots.storage.memory import MemoryStorage
from support.services import RedisDb
from support.site import Site
from tasks import capture as task
from tasks import resources

pytestmark = pytest.mark.integration

TABS = 3
_doomed = threading.local()  # set by the engine for a shot whose upload must fail


class CountingEngine(SeleniumEngine):
    """The Selenium engine, counting the captures in its tabs at once (the batch has more
    threads than tabs: the extra ones wait for a tab, or store an image meanwhile)."""

    def __init__(self) -> None:
        super().__init__(load_settings(), tabs=TABS)
        self.most = 0
        self._now = 0
        self._count = threading.Lock()

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        _doomed.value = "doomed" in url
        return super().capture(url, options)

    def _capture_in_tab(self, *args: Any, **kwargs: Any) -> Capture:
        with self._count:
            self._now += 1
            self.most = max(self.most, self._now)
        try:
            return super()._capture_in_tab(*args, **kwargs)
        finally:
            with self._count:
                self._now -= 1


class DownForSome(MemoryStorage):
    """Memory storage that is unreachable for the uploads of doomed shots."""

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        if getattr(_doomed, "value", False):
            raise StorageUnavailable("storage down for this shot")
        return super().put(key, data, content_type, metadata, tags)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingEngine]:
    shared = CountingEngine()
    monkeypatch.setattr(resources, "engine", lambda name=None: shared)
    storage = DownForSome()
    monkeypatch.setattr(resources, "storage", lambda: storage)
    yield shared
    shared.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


def test_a_batch_is_captured_concurrently_in_input_order(
    engine: CountingEngine, site: Site, redis_db: RedisDb
) -> None:
    client = redis.Redis.from_url(redis_db.url)
    store = RowStore(client, "tabs-batch")
    shots: list[dict[str, Any]] = [
        {"line": n, "url": site.url(f"/page/{n}"), "options": {"delay_ms": 300}}
        for n in range(1, 10)
    ]
    shots.insert(3, {"line": 100, "url": site.url("/page/100?doomed")})
    shots.insert(6, {"line": 101, "url": "not a url"})
    shots.append({"line": 102, "url": site.url("/page/102?doomed")})
    try:
        rows, pending = task.capture_batch(shots, "selenium", store=store)
        assert engine.most == TABS  # the batch kept every tab busy, never more
        expected = [m["line"] for m in shots if "doomed" not in m["url"]]
        assert [row.line for row in rows] == expected
        by_line = {row.line: row for row in rows}
        assert by_line[101].status == "error"
        for n in range(1, 10):
            assert by_line[n].status == "ok", by_line[n].error
            assert by_line[n].title == f"Page {n}"
        # the storage outage left its shots for the task's retry, in input order
        assert [m["line"] for m in pending] == [100, 102]
        # every finished row is in the job's row store (a redelivery does not shoot it again)
        recorded = store.get_many(range(1, 10))
        assert sorted(recorded) == list(range(1, 10))
        assert recorded[5]["title"] == "Page 5"
    finally:
        client.delete(store.key)
        client.close()
