"""A real headless Chromium for the page tests: Playwright driving the system Chromium.

One browser per test module (the fixture ``browser``; import ``chromium`` to use it, named
so that a test's ``browser`` parameter does not shadow the import); each test opens its own
page or context in it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from screenshots.core.settings import load_settings


@pytest.fixture(scope="module", name="browser")
def chromium() -> Iterator[Browser]:
    """The system Chromium (``SCREENSHOT_CHROMIUM``), headless, closed after the module."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=load_settings().chromium_path,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()
