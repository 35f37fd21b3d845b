"""``SCREENSHOT_ISOLATION`` and the variable it supersedes, ``SCREENSHOT_KEEP_HTTP_CACHE``."""

from __future__ import annotations

import pytest

from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import load_settings


def test_standard_isolation_is_the_default() -> None:
    assert load_settings({}).isolation == "standard"


@pytest.mark.parametrize("value", ["strict", "STRICT", "standard"])
def test_isolation_is_read(value: str) -> None:
    assert load_settings({"SCREENSHOT_ISOLATION": value}).isolation == value.lower()


def test_a_bad_isolation_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="SCREENSHOT_ISOLATION must be standard or strict"):
        load_settings({"SCREENSHOT_ISOLATION": "paranoid"})


@pytest.mark.parametrize(("kept", "isolation"), [("true", "standard"), ("false", "strict")])
def test_keep_http_cache_still_works_as_an_alias(kept: str, isolation: str) -> None:
    settings = load_settings({"SCREENSHOT_KEEP_HTTP_CACHE": kept})
    assert settings.isolation == isolation
    both = {"SCREENSHOT_KEEP_HTTP_CACHE": kept, "SCREENSHOT_ISOLATION": isolation}
    assert load_settings(both).isolation == isolation


def test_keep_http_cache_contradicting_isolation_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="drop SCREENSHOT_KEEP_HTTP_CACHE"):
        load_settings({"SCREENSHOT_KEEP_HTTP_CACHE": "false", "SCREENSHOT_ISOLATION": "standard"})
    with pytest.raises(ConfigurationError, match="SCREENSHOT_KEEP_HTTP_CACHE must be true or"):
        load_settings({"SCREENSHOT_KEEP_HTTP_CACHE": "maybe"})
