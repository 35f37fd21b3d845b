"""The pipeline's logic, with the stub engine and memory storage (no browser, no servers)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engines.base import Capture, Engine
from engines.stub import StubEngine
from screenshots.core.errors import BrowserCrashed, EngineUnavailable, NavigationError
from screenshots.core.keys import storage_key
from screenshots.core.options import CaptureOptions
from screenshots.core.shot import Shot
from screenshots.pipeline.screenshot import backoff_delay, take_screenshot
from screenshots.storage.memory import MemoryStorage


def shot(url="http://example.test/", line=1, **options) -> Shot:
    return Shot(line=line, url=url, options=CaptureOptions(**options))


class ScriptedEngine(Engine):
    """Raises the scripted errors in turn, then delegates to the stub."""

    name = "scripted"

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.stub = StubEngine()

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.stub.capture(url, options)

    def close(self) -> None:
        pass


def no_sleep(seconds: float) -> None:
    pass


def test_ok_row_has_the_stored_image_of_the_asked_size():
    storage = MemoryStorage()
    row = take_screenshot(shot(width=640, height=480), StubEngine(), storage, sleep=no_sleep)
    assert row.status == "ok" and row.error is None
    key = storage_key("http://example.test/", CaptureOptions(width=640, height=480))
    assert row.key == key and row.storage_uri == storage.uri(key)
    image = Image.open(io.BytesIO(storage.objects[key][0]))
    assert image.size == (640, 480) and image.format == "PNG"
    assert (row.width, row.height, row.bytes) == (640, 480, len(storage.objects[key][0]))
    assert storage.objects[key][1] == "image/png"
    assert row.link and row.engine == "stub" and row.attempts == 1


def test_navigation_error_is_an_error_row_at_once():
    engine = ScriptedEngine(NavigationError("unknown host x.invalid", "net::ERR_NAME_NOT_RESOLVED"))
    row = take_screenshot(shot(), engine, MemoryStorage(), sleep=no_sleep)
    assert row.status == "error" and row.error == "unknown host x.invalid"
    assert engine.calls == 1 and row.storage_uri is None and row.link is None


def test_transient_failures_are_retried_with_backoff():
    waits: list[float] = []
    engine = ScriptedEngine(BrowserCrashed("browser died"))
    row = take_screenshot(shot(), engine, MemoryStorage(), sleep=waits.append, max_attempts=3)
    assert row.status == "ok" and row.attempts == 2 and len(waits) == 1


def test_transient_failures_give_up_after_max_attempts():
    engine = ScriptedEngine(*[BrowserCrashed("browser died")] * 5)
    row = take_screenshot(shot(), engine, MemoryStorage(), sleep=no_sleep, max_attempts=3)
    assert row.status == "error" and engine.calls == 3
    assert row.error == "browser died (gave up after 3 attempts)"


def test_storage_hiccup_retries_the_upload_not_the_capture():
    engine = ScriptedEngine()
    storage = MemoryStorage(fail_times=2)
    row = take_screenshot(shot(), engine, storage, sleep=no_sleep, max_attempts=3)
    assert row.status == "ok" and row.attempts == 3 and engine.calls == 1


def test_configuration_errors_are_raised_not_recorded():
    engine = ScriptedEngine(EngineUnavailable("chromium not found"))
    with pytest.raises(EngineUnavailable):
        take_screenshot(shot(), engine, MemoryStorage(), sleep=no_sleep)


def test_backoff_grows_and_is_capped():
    assert backoff_delay(1, rand=lambda: 0.0) == 0.5
    assert backoff_delay(2, rand=lambda: 1.0) == 2.0
    assert backoff_delay(10, rand=lambda: 1.0) == 10.0
