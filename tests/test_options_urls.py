"""Pure input validation: options and URLs."""

import pytest

from screenshots.core.errors import InvalidOption, InvalidURL
from screenshots.core.keys import storage_key
from screenshots.core.options import MAX_FULL_PAGE_HEIGHT, CaptureOptions
from screenshots.core.urls import MAX_URL_LENGTH, normalize_url


def test_defaults_are_1280_by_800_png():
    options = CaptureOptions()
    assert (options.width, options.height, options.format) == (1280, 800, "png")
    assert options.content_type == "image/png"
    assert MAX_FULL_PAGE_HEIGHT >= 8000


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"width": 0}, "width must be between"),
        ({"height": "tall"}, "height must be a whole number"),
        ({"format": "gif"}, "format must be one of png, jpeg, webp"),
        ({"quality": 101}, "quality must be between"),
        ({"timeout": -1}, "timeout must be between"),
        ({"delay_ms": -5}, "delay_ms must be between"),
        ({"full_page": "yes"}, "full_page must be true or false"),
    ],
)
def test_bad_option_names_the_option(changes, words):
    with pytest.raises(InvalidOption, match=words):
        CaptureOptions(**changes)


def test_unknown_option_is_named():
    with pytest.raises(InvalidOption, match="unknown option 'colour'"):
        CaptureOptions.from_dict({"colour": "red"})


def test_key_is_deterministic_and_changes_with_image_options():
    url = "https://example.com/"
    base = storage_key(url, CaptureOptions())
    assert base == storage_key(url, CaptureOptions())
    assert base.startswith("screenshots/") and base.endswith(".png")
    assert storage_key(url, CaptureOptions(width=800)) != base
    assert storage_key(url, CaptureOptions(full_page=True)) != base
    assert storage_key("https://example.com/x", CaptureOptions()) != base
    # the deadline does not change the image, so it does not change the key
    assert storage_key(url, CaptureOptions(timeout=5)) == base
    assert storage_key(url, CaptureOptions(format="jpeg")).endswith(".jpg")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("https://Example.COM", "https://example.com/"),
        ("  http://example.com/a?b=c#d  ", "http://example.com/a?b=c#d"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
    ],
)
def test_accepted_urls_are_normalised(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw, words",
    [
        ("", "empty URL"),
        ("example.com", "no scheme"),
        ("file:///etc/passwd", "unsupported scheme 'file'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("data:text/html,hi", "unsupported scheme 'data'"),
        ("view-source:http://x/", "unsupported scheme 'view-source'"),
        ("chrome://settings", "unsupported scheme 'chrome'"),
        ("ftp://example.com/", "unsupported scheme 'ftp'"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///path", "no host"),
        ("http://exa mple.com/", "white space"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com/" + "a" * MAX_URL_LENGTH, "longer than 2048"),
    ],
)
def test_refused_urls_say_why(raw, words):
    with pytest.raises(InvalidURL, match=words):
        normalize_url(raw)
