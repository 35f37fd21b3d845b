"""The HTTP cache rules of issue #15, on the browser engines.

The test site counts the requests of ``/cached.css`` (cacheable for an hour), which every
``state.html`` page loads: a capture served from the cache makes no request. The rules:

- anonymous captures share the cache (the second capture of the site makes no request);
- a capture with credentials (cookies, headers, ``user:pass@``) or ``isolation: strict``
  neither reads the shared cache nor leaves what it fetched in it;
- ``SCREENSHOT_ISOLATION=strict`` gives every capture an empty cache (the old behaviour).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engines import chromium, create_engine
from engines.base import Engine
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import Settings, load_settings
from support.site import Site

pytestmark = pytest.mark.integration

BROWSERS = ["selenium", "playwright"]
#: The page is captured once it has reported what it found.
SETTLED: dict[str, Any] = {"wait_for_js": "document.title != 'pending'", "timeout": 20}
#: The credentials a capture can carry, each making it private.
PRIVATE: dict[str, dict[str, Any]] = {
    "cookies": {"cookies": {"session": "secret"}},
    "headers": {"headers": {"Authorization": "Bearer secret"}},
    "strict": {"isolation": "strict"},
}

Engines = Callable[..., Engine]


@pytest.fixture
def engines() -> Iterator[Engines]:
    """Fresh engines (an empty cache each), closed after the test."""
    made: list[Engine] = []

    def make(name: str, settings: Settings | None = None) -> Engine:
        engine = create_engine(name, settings or load_settings())
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


def fetched(site: Site, engine: Engine, url: str, **options: Any) -> int:
    """How many times capturing ``url`` requested the cacheable style sheet (0: from cache)."""
    before = site.cached_requests
    capture = engine.capture(url, CaptureOptions.from_dict({**SETTLED, **options}))
    assert capture.title and capture.title.startswith("{")  # the page reported
    return site.cached_requests - before


@pytest.mark.parametrize("name", BROWSERS)
def test_anonymous_captures_share_the_cache(site: Site, engines: Engines, name: str) -> None:
    engine = engines(name)
    assert fetched(site, engine, site.url("/state.html")) == 1
    assert fetched(site, engine, site.url("/state.html?again")) == 0


@pytest.mark.parametrize("name", BROWSERS)
@pytest.mark.parametrize("private", sorted(PRIVATE))
def test_a_private_capture_does_not_read_the_cache(
    site: Site, engines: Engines, name: str, private: str
) -> None:
    engine = engines(name)
    assert fetched(site, engine, site.url("/state.html")) == 1
    assert fetched(site, engine, site.url("/state.html"), **PRIVATE[private]) == 1


@pytest.mark.parametrize("name", BROWSERS)
@pytest.mark.parametrize("private", sorted(PRIVATE))
def test_a_private_capture_leaves_nothing_in_the_cache(
    site: Site, engines: Engines, name: str, private: str
) -> None:
    engine = engines(name)
    assert fetched(site, engine, site.url("/state.html"), **PRIVATE[private]) == 1
    assert fetched(site, engine, site.url("/state.html")) == 1  # nothing was kept
    assert fetched(site, engine, site.url("/state.html")) == 0  # anonymous ones share again


@pytest.mark.parametrize("name", BROWSERS)
def test_a_url_with_a_password_is_private(site: Site, engines: Engines, name: str) -> None:
    engine = engines(name)
    with_password = site.url("/state.html").replace("http://", "http://user:secret@")
    assert fetched(site, engine, with_password) == 1
    assert fetched(site, engine, site.url("/state.html")) == 1
    assert fetched(site, engine, with_password) == 1


@pytest.mark.parametrize("name", BROWSERS)
def test_the_fleet_setting_strict_empties_every_capture_s_cache(
    site: Site, engines: Engines, name: str
) -> None:
    engine = engines(name, dataclasses.replace(load_settings(), isolation="strict"))
    for _ in range(3):
        assert fetched(site, engine, site.url("/state.html")) == 1
