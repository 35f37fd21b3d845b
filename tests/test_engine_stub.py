"""The stub engine and the engine registry: no browser needed."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from engines import ENGINES, create_engine, engine_names
from engines.base import Engine
from engines.stub import StubEngine
from screenshots.core.errors import ConfigurationError, NavigationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings

PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("size", [(800, 600), (1280, 800), (1, 1)])
def test_image_has_the_asked_size_and_format(fmt: str, size: tuple[int, int]) -> None:
    width, height = size
    capture = StubEngine().capture(
        "http://example.com/", CaptureOptions(width=width, height=height, format=fmt)
    )
    with Image.open(io.BytesIO(capture.image)) as image:
        assert image.format == PIL_NAMES[fmt]
        assert image.size == (width, height)
    assert (capture.width, capture.height) == (width, height)
    assert capture.http_status == 200
    assert capture.final_url == "http://example.com/"
    assert capture.title == "stub"


def test_full_page_is_the_viewport_size() -> None:
    capture = StubEngine().capture("http://example.com/", CaptureOptions(full_page=True))
    with Image.open(io.BytesIO(capture.image)) as image:
        assert image.size == (1280, 800)


def test_images_are_cached_per_size_format_and_quality() -> None:
    engine = StubEngine()
    first = engine.capture("http://a.example/", CaptureOptions(format="jpeg"))
    again = engine.capture("http://b.example/", CaptureOptions(format="jpeg", quality=80))
    other = engine.capture("http://a.example/", CaptureOptions(format="jpeg", quality=20))
    assert again.image is first.image  # quality None means 80: same image
    assert other.image != first.image


@pytest.mark.parametrize(
    "url", ["http://nosuch.invalid/", "https://a.b.invalid:8443/x?y", "http://INVALID./"]
)
def test_invalid_host_is_a_navigation_error(url: str) -> None:
    with pytest.raises(NavigationError) as caught:
        StubEngine().capture(url, CaptureOptions())
    assert caught.value.code == "net::ERR_NAME_NOT_RESOLVED"
    assert "unknown host" in caught.value.message
    assert "(net::ERR_NAME_NOT_RESOLVED)" in caught.value.message


def test_latency_is_slept_per_capture() -> None:
    engine = StubEngine(latency=0.05)
    started = time.monotonic()
    engine.capture("http://example.com/", CaptureOptions())
    assert time.monotonic() - started >= 0.05
    with pytest.raises(ValueError):
        StubEngine(latency=-1)


def test_close_is_a_no_op_and_context_manager_works() -> None:
    with StubEngine() as engine:
        engine.capture("http://example.com/", CaptureOptions())
    engine.close()
    engine.close()


def test_registry_names() -> None:
    assert engine_names() == ["playwright", "selenium", "stub"]
    assert set(ENGINES) == {"playwright", "selenium", "stub"}


def test_create_stub_with_kwargs_and_settings() -> None:
    engine = create_engine("stub", Settings(), latency=0.01)
    assert isinstance(engine, StubEngine)
    assert isinstance(engine, Engine)
    assert engine.name == "stub"
    assert engine.latency == 0.01


def test_create_selenium_starts_nothing() -> None:
    engine = create_engine("selenium", Settings(), recycle_after=5)
    try:
        assert engine.name == "selenium"
        assert engine.recycle_after == 5
        assert engine.browser_pid is None
    finally:
        engine.close()


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_engine("x")
    assert str(caught.value) == "unknown engine 'x': choose one of playwright, selenium, stub"
