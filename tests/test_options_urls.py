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


# The messages users see for a bad value, pinned before the options moved to pydantic: scripts
# and people read them, so they stay word for word.
MESSAGES = [
    ({'colour': 'red'}, "unknown option 'colour'"),
    ({'width': 0}, 'width must be between 1 and 8192, not 0'),
    ({'width': 'wide'}, "width must be a whole number, not 'wide'"),
    ({'width': 1.5}, 'width must be a whole number, not 1.5'),
    ({'width': True}, 'width must be a whole number, not True'),
    ({'height': 9000}, 'height must be between 1 and 8192, not 9000'),
    ({'full_page': 'maybe'}, "full_page must be true or false, not 'maybe'"),
    ({'full_page': 3}, 'full_page must be true or false, not 3'),
    ({'scale': 5}, 'scale must be between 0.25 and 4, not 5'),
    ({'scale': 'big'}, "scale must be a number, not 'big'"),
    ({'scale': 0.1}, 'scale must be between 0.25 and 4, not 0.1'),
    ({'format': 'gif'}, "format must be one of png, jpeg, webp, not 'gif'"),
    ({'quality': 0}, 'quality must be between 1 and 100, not 0'),
    ({'quality': 'high'}, "quality must be a whole number, not 'high'"),
    ({'selector': '  '}, 'selector must not be empty'),
    ({'selector': 5}, 'selector must be text, not 5'),
    ({'clip': '1,2,3'}, 'clip must be 4 numbers x,y,width,height, not 3'),
    ({'clip': 'a,0,10,10'}, "clip x must be a whole number, not 'a'"),
    ({'clip': [0, 0, 0, 10]}, 'clip width must be between 1 and 100000, not 0'),
    ({'clip': [0, 0, 9000, 10]}, 'clip must be at most 8192 wide and 16384 high'),
    ({'clip': 5}, 'clip must be x,y,width,height, not 5'),
    ({'hide_selectors': 5}, 'hide_selectors must be a list of text, not 5'),
    ({'hide_selectors': ['a\nb']}, 'hide_selectors must be one line'),
    ({'hide_selectors': '[1,'}, "hide_selectors is not valid JSON: '[1,'"),
    (
        {'wait_until': 'idle'},
        "wait_until must be one of load, domcontentloaded, networkidle, not 'idle'",
    ),
    ({'delay_ms': 70000}, 'delay_ms must be between 0 and 60000, not 70000'),
    ({'delay_ms': -1}, 'delay_ms must be between 0 and 60000, not -1'),
    ({'scroll': 'sometimes'}, "scroll must be true or false, not 'sometimes'"),
    ({'user_agent': 'a\nb'}, 'user_agent must be one line'),
    ({'headers': 'X-A'}, "headers entry 'X-A' has no ':'"),
    ({'headers': {'Host': 'x'}}, 'headers: Host cannot be set (use cookies for cookies)'),
    ({'headers': {'bad name': 'x'}}, "headers: 'bad name' is not a valid header name"),
    ({'headers': {'X': 'a\nb'}}, 'headers: the value of X must be one line'),
    ({'headers': {'X': True}}, "headers: 'X' must have a text value, not True"),
    ({'headers': 5}, 'headers must be an object of names and values, not 5'),
    ({'headers': ['abc']}, 'headers must be an object of names and values'),
    ({'cookies': {'a': 'b;c'}}, "cookies: the value of a must not contain ';' or line breaks"),
    ({'cookies': 'a'}, "cookies entry 'a' has no '='"),
    ({'cookies': {'a b': '1'}}, "cookies: 'a b' is not a valid cookie name"),
    ({'dark_mode': 'dark'}, "dark_mode must be true or false, not 'dark'"),
    ({'timezone': 'Mars/Base'}, "timezone 'Mars/Base' is not a known IANA time zone"),
    ({'timezone': '../etc'}, "timezone must be an IANA name such as Europe/Paris, not '../etc'"),
    ({'locale': 'f'}, "locale must be a language tag such as fr-FR, not 'f'"),
    ({'locale': 5}, 'locale must be a language tag such as fr-FR, not 5'),
    (
        {'block': ['nonsense']},
        "block: 'nonsense' is not a resource type (font, image, media, stylesheet, script, xhr, "
        "fetch, websocket), 'ads', a host name or a URL pattern with *",
    ),
    ({'block': 5}, 'block must be a list of text, not 5'),
    ({'fail_on_status': '600'}, "fail_on_status: '600' must be within 100-599, low first"),
    ({'fail_on_status': 'abc'}, "fail_on_status: 'abc' is not a status or a range such as 400-599"),
    ({'fail_on_status': [True]}, 'fail_on_status: True is not a status or a range'),
    (
        {'fail_on_status': [[500, 400]]},
        'fail_on_status: [500, 400] must be within 100-599, low first',
    ),
    ({'fail_on_status': 5}, 'fail_on_status: 5 must be within 100-599, low first'),
    ({'timeout': 0}, 'timeout must be between 0 and 300, not 0'),
    ({'timeout': 301}, 'timeout must be between 0 and 300, not 301'),
    ({'timeout': 'soon'}, "timeout must be a number, not 'soon'"),
    ({'selector': 'a', 'clip': '0,0,1,1'}, 'selector and clip cannot be used together: choose one'),
    ({'full_page': True, 'selector': 'a'}, 'full_page cannot be used with selector'),
    ({'full_page': True, 'clip': '0,0,1,1'}, 'full_page cannot be used with clip'),
    ({'width': 8192, 'scale': 4}, 'width × scale must be at most 16384 pixels'),
    ({'headers': '[1'}, "headers is not valid JSON: '[1'"),
    ({'cookies': [['a', '1', '2']]}, 'cookies must be an object of names and values'),
    ({"css": "x" * 40000}, "css is longer than 32768 characters"),
    ({"block": ["a.example"] * 101}, "block has more than 100 entries"),
    ({"timeout": float("nan")}, "timeout must be a number, not nan"),
]


@pytest.mark.parametrize("values, message", MESSAGES)
def test_a_bad_value_has_the_same_message_as_before(values, message):
    with pytest.raises(InvalidOption) as caught:
        CaptureOptions.from_dict(values)
    assert caught.value.message == message
