"""The pipeline's composition point and its parts, with the stub engine and memory storage.

What a caller sees: one row per shot whatever splits the phases (the API's pool captures in a
tab and stores in another thread), one attempt budget for both phases, reuse of a recent shot,
and one engine per thread kept by :class:`ThreadEngines`.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from engines.base import Capture, Engine
from engines.stub import StubEngine
from screenshots.core.errors import BrowserCrashed, StorageRejected, StorageUnavailable
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result
from screenshots.core.shot import Shot
from screenshots.pipeline.run import Run
from screenshots.pipeline.screenshot import Pipeline
from screenshots.pipeline.threadengines import ThreadEngines
from screenshots.storage.memory import MemoryStorage

URL = "http://example.test/page"


def shot(line: int = 1, **options: object) -> Shot:
    return Shot(line=line, url=URL, options=CaptureOptions(**options))


def pipeline(storage: MemoryStorage, **options: object) -> Pipeline:
    return Pipeline(storage, sleep=lambda _: None, **options)  # type: ignore[arg-type]


class CountingEngine(StubEngine):
    """The stub, failing ``crashes`` times first and counting its captures and closes."""

    def __init__(self, crashes: int = 0, status: int = 200) -> None:
        super().__init__(latency=0.0)
        self.crashes = crashes
        self.status = status
        self.calls = 0
        self.closed = 0
        self.thread = threading.get_ident()

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self.calls += 1
        if self.crashes:
            self.crashes -= 1
            raise BrowserCrashed("browser died")
        captured = super().capture(url, options)
        return Capture(**{**captured.__dict__, "http_status": self.status})

    def close(self) -> None:
        self.closed += 1


def comparable(row: Result) -> dict[str, object]:
    """A row without what differs from run to run (times, and the version key named by one)."""
    data = row.to_dict()
    for name in ("duration_ms", "finished_at", "upload_ms", "queued_ms", "version_key"):
        data.pop(name, None)
    return data


def test_phases_split_across_threads_give_the_row_of_one_take() -> None:
    whole = pipeline(MemoryStorage()).take(shot(width=320, height=200), CountingEngine)
    storage = MemoryStorage()
    split = pipeline(storage)
    step = split.begin(shot(width=320, height=200), CountingEngine)
    assert isinstance(step, Run) and not storage.objects  # captured, nothing stored yet
    with ThreadPoolExecutor(1) as uploader:
        row = uploader.submit(split.store, step).result()
    assert comparable(row) == comparable(whole)
    assert row.status == "ok" and row.attempts == 1 and storage.read(row.key or "")
    assert row.duration_ms is not None and row.upload_ms is not None


def test_capture_and_store_share_one_attempt_budget() -> None:
    engine = CountingEngine(crashes=1)
    row = pipeline(MemoryStorage(fail_times=1), max_attempts=3).take(shot(), lambda: engine)
    assert (row.status, row.attempts, engine.calls) == ("ok", 3, 2)

    engine = CountingEngine(crashes=1)
    row = pipeline(MemoryStorage(fail_times=5), max_attempts=3).take(shot(), lambda: engine)
    assert row.status == "error" and engine.calls == 2
    failing = "memory storage failing on purpose for"
    assert row.error is not None and row.error.startswith(failing)
    assert row.error.endswith(" (gave up after 3 attempts)")
    assert row.attempts == 3 and row.http_status == 200 and row.title == "stub"


def test_a_refused_status_is_an_error_row_that_describes_the_page() -> None:
    storage = MemoryStorage()
    engine = CountingEngine(status=503)
    row = pipeline(storage).take(shot(fail_on_status=[(500, 599)]), lambda: engine)
    assert row.status == "error" and row.error == "HTTP 503 is in fail_on_status (500-599)"
    assert (row.attempts, row.http_status, row.final_url) == (1, 503, URL)
    assert not storage.objects


def test_an_unsupported_option_fails_before_any_attempt() -> None:
    engine = CountingEngine()
    row = pipeline(MemoryStorage()).take(shot(wait_for="#main"), lambda: engine)
    assert row.status == "error" and row.attempts == 0 and engine.calls == 0
    assert row.error == "option wait_for is not supported by engine stub"


def test_a_storage_outage_goes_up_when_the_caller_retries_later() -> None:
    outage = pipeline(MemoryStorage(fail_times=9), max_attempts=2, raise_storage_outage=True)
    with pytest.raises(StorageUnavailable):
        outage.take(shot(), CountingEngine)


def test_refused_storage_goes_up_as_a_configuration_error() -> None:
    class Refusing(MemoryStorage):
        def put(self, *args: object, **kwargs: object) -> str:
            raise StorageRejected("bucket 'x' does not exist")

    with pytest.raises(StorageRejected):
        pipeline(Refusing()).take(shot(), CountingEngine)


def test_a_recent_shot_is_reused_without_an_engine() -> None:
    storage = MemoryStorage()
    first = pipeline(storage).take(shot(), CountingEngine)

    def no_engine() -> Engine:
        raise AssertionError("a reused shot needs no engine")

    again = pipeline(storage, max_age=60).take(shot(line=7), no_engine)
    assert again.status == "ok" and again.attempts == 0 and again.line == 7
    assert (again.key, again.link, again.bytes) == (first.key, first.link, first.bytes)
    # The look of the image comes with it, from the object's metadata.
    assert (again.phash, again.thumbnail_link, again.version_key) == (
        first.phash, first.thumbnail_link, first.version_key
    )
    old = pipeline(storage, max_age=60)
    assert old.reused(shot()) is not None
    storage.stored[first.key or ""] = storage.stored[first.key or ""].__class__(
        datetime(2000, 1, 1, tzinfo=UTC), 1, {}
    )
    assert old.reused(shot()) is None


def test_an_ok_row_has_the_image_s_hash_and_a_webp_thumbnail_stored_beside_it() -> None:
    storage = MemoryStorage()
    row = pipeline(storage).take(shot(width=320, height=200), CountingEngine)
    assert row.phash is not None and len(row.phash) == 16
    thumbnail = (row.key or "").removesuffix(".png") + ".thumb.webp"
    assert row.thumbnail_link == storage.link(thumbnail)
    assert storage.content_type(thumbnail) == "image/webp"


def test_shooting_again_keeps_the_earlier_image_as_a_version() -> None:
    from screenshots.batch.history import history

    storage = MemoryStorage()
    first = pipeline(storage).take(shot(width=320, height=200), CountingEngine)
    second = pipeline(storage).take(shot(width=320, height=200, format="png"), CountingEngine)
    assert first.key == second.key and first.version_key != second.version_key
    versions = history(storage, URL, CaptureOptions(width=320, height=200))
    assert [v.key for v in versions] == [first.version_key, second.version_key]
    assert versions[0].taken_at < versions[1].taken_at
    # The deterministic key holds the latest: the same bytes as the last version.
    assert storage.read(first.key or "") == storage.read(second.version_key or "")
    assert history(storage, "http://other.test/", CaptureOptions()) == []


# -- ThreadEngines ------------------------------------------------------------------------------


def test_each_thread_gets_its_own_engine_once() -> None:
    made: list[CountingEngine] = []

    def factory(name: str) -> Engine:
        made.append(CountingEngine())
        return made[-1]

    engines = ThreadEngines(factory)
    mine = engines.get("stub")
    assert engines.get("stub") is mine
    with ThreadPoolExecutor(2) as pool:
        others = list(pool.map(lambda _: engines.get("stub"), range(2)))
    assert all(other is not mine for other in others) and len(made) in (2, 3)
    engines.close()
    assert all(engine.closed == 1 for engine in made)
    fresh = engines.get("stub")  # after close(), a thread starts a new engine
    assert fresh is not mine and fresh.closed == 0  # type: ignore[attr-defined]


def test_a_thread_closes_its_own_engines_only() -> None:
    engines = ThreadEngines(lambda name: CountingEngine())
    mine = engines.get("stub")
    theirs: list[Engine] = []

    def tab() -> None:
        theirs.append(engines.get("stub"))
        engines.close_thread()

    thread = threading.Thread(target=tab)
    thread.start()
    thread.join()
    assert theirs[0].closed == 1 and mine.closed == 0  # type: ignore[attr-defined]
    engines.close()
    assert mine.closed == 1 and theirs[0].closed == 1  # type: ignore[attr-defined]
