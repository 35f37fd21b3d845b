"""Golden storage keys: the keys of today's screenshots, written down before the options moved
to pydantic, so no stored screenshot ever changes its key (issue #11).

Each case is a URL and options as a user writes them (defaults, every option at a non-default
value, the loose forms of files and flags); the expected key was computed by the code of commit
825dbdb and is a literal here. A failure means stored screenshots would be captured again under
a new key: fix the code, never the literal.
"""

from __future__ import annotations

from typing import Any

import pytest

from screenshots.core.keys import capture_digest, storage_key
from screenshots.core.options import CaptureOptions

CASES = [
    pytest.param(
        "https://example.com/",
        {},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="defaults",
    ),
    pytest.param(
        "http://xn--bcher-kva.example/a?b=c#d",
        {},
        "screenshots/73/7364c2e1b04dd256e437fca3a66f7b6f5024d22f33e8686546004cb306ad1eb4.png",
        id="defaults-other-url",
    ),
    pytest.param(
        "https://example.com/",
        {
            "width": 1280,
            "height": 800,
            "format": "png",
            "quality": None,
            "scale": 1,
            "wait_until": "load",
            "timeout": 30,
            "block": [],
            "headers": {},
        },
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="explicit-defaults",
    ),
    pytest.param(
        "https://example.com/",
        {"width": "", "full_page": "", "block": "", "clip": None},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="empty-cells",
    ),
    pytest.param(
        "https://example.com/",
        {"width": 800},
        "screenshots/0e/0e01b2d9b6029e2152cfba617719d16c218d1cab7394e371e887b2b78f63ee85.png",
        id="width",
    ),
    pytest.param(
        "https://example.com/",
        {"width": "800"},
        "screenshots/0e/0e01b2d9b6029e2152cfba617719d16c218d1cab7394e371e887b2b78f63ee85.png",
        id="width-text",
    ),
    pytest.param(
        "https://example.com/",
        {"width": 800.0},
        "screenshots/0e/0e01b2d9b6029e2152cfba617719d16c218d1cab7394e371e887b2b78f63ee85.png",
        id="width-float",
    ),
    pytest.param(
        "https://example.com/",
        {"height": 600},
        "screenshots/c7/c7701548c1caf69e6ce081916f7a2c7d0c851a63e9f6f7f692fc24f879f6234e.png",
        id="height",
    ),
    pytest.param(
        "https://example.com/",
        {"full_page": True},
        "screenshots/00/001de615271be7f4477f4cc6ea2576e4bfc33cc741ef056192323d51b8d7f8b8.png",
        id="full_page",
    ),
    pytest.param(
        "https://example.com/",
        {"full_page": "true"},
        "screenshots/00/001de615271be7f4477f4cc6ea2576e4bfc33cc741ef056192323d51b8d7f8b8.png",
        id="full_page-text",
    ),
    pytest.param(
        "https://example.com/",
        {"full_page": " Yes "},
        "screenshots/00/001de615271be7f4477f4cc6ea2576e4bfc33cc741ef056192323d51b8d7f8b8.png",
        id="full_page-yes",
    ),
    pytest.param(
        "https://example.com/",
        {"scale": 2},
        "screenshots/92/92acee90be0e5b8a11d79658a48dc16fa4743c3d99919a6ac207b9cc711aa542.png",
        id="scale",
    ),
    pytest.param(
        "https://example.com/",
        {"scale": "0.5"},
        "screenshots/ea/ea003fa5c6409c11a3edbf045296f97e64bd85813b32931537155ed869073d6f.png",
        id="scale-text",
    ),
    pytest.param(
        "https://example.com/",
        {"format": "jpeg"},
        "screenshots/fe/fe1ae4c884ab6844206318d98a35c6343b681c416dc71e12674698695a6d3237.jpg",
        id="format-jpeg",
    ),
    pytest.param(
        "https://example.com/",
        {"format": "webp", "quality": 55},
        "screenshots/8e/8eb452f5f54d9d58db83318ddba35bf17a3d9823444c046f0368375340746ebd.webp",
        id="format-webp-quality",
    ),
    pytest.param(
        "https://example.com/",
        {"quality": 90},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="png-quality",
    ),
    pytest.param(
        "https://example.com/",
        {"format": "jpeg", "quality": "80"},
        "screenshots/fe/fe1ae4c884ab6844206318d98a35c6343b681c416dc71e12674698695a6d3237.jpg",
        id="jpeg-quality-80",
    ),
    pytest.param(
        "https://example.com/",
        {"selector": "#main"},
        "screenshots/bc/bc899781575fa22ffc90bd81ba780ce7e2a041b678f6733c053e45ed8a33a669.png",
        id="selector",
    ),
    pytest.param(
        "https://example.com/",
        {"clip": [0, 0, 300, 200]},
        "screenshots/05/05ce5f9963e146dfa909dc66297892275f7a495e117325aec761a3649b9f543d.png",
        id="clip",
    ),
    pytest.param(
        "https://example.com/",
        {"clip": "0,0,300,200"},
        "screenshots/05/05ce5f9963e146dfa909dc66297892275f7a495e117325aec761a3649b9f543d.png",
        id="clip-text",
    ),
    pytest.param(
        "https://example.com/",
        {"clip": " 10, 20 ,300, 200"},
        "screenshots/28/28c85b8316b100465045d6f090c52d19721a33707b9da897823b6673c38210c3.png",
        id="clip-text-spaces",
    ),
    pytest.param(
        "https://example.com/",
        {"hide_selectors": [".a", "#b"]},
        "screenshots/62/62480962ae65e360ab9f82262f1d3f5298d6255407adf334427034ac835859b5.png",
        id="hide_selectors",
    ),
    pytest.param(
        "https://example.com/",
        {"hide_selectors": ".a,#b"},
        "screenshots/62/62480962ae65e360ab9f82262f1d3f5298d6255407adf334427034ac835859b5.png",
        id="hide_selectors-text",
    ),
    pytest.param(
        "https://example.com/",
        {"hide_selectors": '[".a", "#b"]'},
        "screenshots/62/62480962ae65e360ab9f82262f1d3f5298d6255407adf334427034ac835859b5.png",
        id="hide_selectors-json",
    ),
    pytest.param(
        "https://example.com/",
        {"hide_selectors": ".a\n#b"},
        "screenshots/62/62480962ae65e360ab9f82262f1d3f5298d6255407adf334427034ac835859b5.png",
        id="hide_selectors-lines",
    ),
    pytest.param(
        "https://example.com/",
        {"css": "body { background: red }"},
        "screenshots/bf/bf349d5c7a2ffefc630dfdf0e704aec2cc50552231adf0a281e68b0bfc7423b0.png",
        id="css",
    ),
    pytest.param(
        "https://example.com/",
        {"js": "document.title = 'x'"},
        "screenshots/b8/b831499bd254d358e445c0ec67ce1f3a2f15e28683f505431131e07050557e9f.png",
        id="js",
    ),
    pytest.param(
        "https://example.com/",
        {"wait_until": "networkidle"},
        "screenshots/b7/b78de7a1bf836e9ef73d8a69b7566d20c27e8c87884ff28670f5326bd0205a90.png",
        id="wait_until",
    ),
    pytest.param(
        "https://example.com/",
        {"wait_for": "#chart"},
        "screenshots/37/379e5e92230f40989e650a3a1937972ccdcd03d70aea69ff76ed98df4868e54b.png",
        id="wait_for",
    ),
    pytest.param(
        "https://example.com/",
        {"wait_for_js": "window.ready"},
        "screenshots/f7/f7c51d20d270fd9d95c6a58867831091a382af31d2fb94da0e7050488d94bc87.png",
        id="wait_for_js",
    ),
    pytest.param(
        "https://example.com/",
        {"delay_ms": 500},
        "screenshots/66/66d1fde809a1ee0764e4718cce26e8fe62eec6022efbbc47184bda65a2aaac76.png",
        id="delay_ms",
    ),
    pytest.param(
        "https://example.com/",
        {"delay_ms": "500"},
        "screenshots/66/66d1fde809a1ee0764e4718cce26e8fe62eec6022efbbc47184bda65a2aaac76.png",
        id="delay_ms-text",
    ),
    pytest.param(
        "https://example.com/",
        {"scroll": "on"},
        "screenshots/c8/c8f18fd1f029baa97055b4371603d0cb7a598e91e254306d49bc8946a5385279.png",
        id="scroll",
    ),
    pytest.param(
        "https://example.com/",
        {"user_agent": "Bot/1.0"},
        "screenshots/fc/fc2d3e2c1260c401e9fdc16391953562f721fffbb276cd505568ccc3e98304b9.png",
        id="user_agent",
    ),
    pytest.param(
        "https://example.com/",
        {"headers": {"X-B": "2", "X-A": "1"}},
        "screenshots/49/49d2aa43858d178587f10935ad435e8397129d4c9d3235fa0cbe0aee93bccfe3.png",
        id="headers",
    ),
    pytest.param(
        "https://example.com/",
        {"headers": "X-A: 1; X-B: 2"},
        "screenshots/49/49d2aa43858d178587f10935ad435e8397129d4c9d3235fa0cbe0aee93bccfe3.png",
        id="headers-text",
    ),
    pytest.param(
        "https://example.com/",
        {"headers": '{"X-A": "1", "X-B": 2}'},
        "screenshots/49/49d2aa43858d178587f10935ad435e8397129d4c9d3235fa0cbe0aee93bccfe3.png",
        id="headers-json",
    ),
    pytest.param(
        "https://example.com/",
        {"headers": [["X-A", "1"], {"name": "X-B", "value": "2"}]},
        "screenshots/49/49d2aa43858d178587f10935ad435e8397129d4c9d3235fa0cbe0aee93bccfe3.png",
        id="headers-pairs",
    ),
    pytest.param(
        "https://example.com/",
        {"cookies": {"session": "abc"}},
        "screenshots/c5/c5ddc67694ba612ba869ccfae0bd2b7aa7c6634df4cd8da470e8c1835ca7bb44.png",
        id="cookies",
    ),
    pytest.param(
        "https://example.com/",
        {"cookies": "session=abc; b=2"},
        "screenshots/f3/f31e197df7208fd323284e79ea8479e3a352286accaf50c4f89515c1b864ad94.png",
        id="cookies-text",
    ),
    pytest.param(
        "https://example.com/",
        {"dark_mode": "1"},
        "screenshots/ab/abc9703f5c13b5e6a9923b69b8e659b155e409c60cdb8c2a985fde6d1dda001a.png",
        id="dark_mode",
    ),
    pytest.param(
        "https://example.com/",
        {"reduced_motion": True},
        "screenshots/e0/e0330a400d48c51478a13641215e013cb4386f92412dc504557a224060927faa.png",
        id="reduced_motion",
    ),
    pytest.param(
        "https://example.com/",
        {"timezone": "Europe/Paris"},
        "screenshots/54/541160488371224965822b19d0f1eb48efda3f1d2240d8ef3fcbe7626c3de11d.png",
        id="timezone",
    ),
    pytest.param(
        "https://example.com/",
        {"locale": "fr-FR"},
        "screenshots/b6/b61ee43474ce637ba13f8a23f2cce8497b8f182ecf66c0858a9210fd0e8141cf.png",
        id="locale",
    ),
    pytest.param(
        "https://example.com/",
        {"block": ["ads", "font"]},
        "screenshots/31/31d8803af8f2db3ab01c88a69c7371a068775bc7e7737e8fd50a2797e0e9995c.png",
        id="block",
    ),
    pytest.param(
        "https://example.com/",
        {"block": "fonts, ADS,images"},
        "screenshots/38/381e92319b1f60569d97dd9cd393159dfd0f1d7666a7a75831f46a8598f280e2.png",
        id="block-text",
    ),
    pytest.param(
        "https://example.com/",
        {"block": '["css", "tracker.example", "*/ads/*"]'},
        "screenshots/e6/e6068fe7898d1f18bbc2fdf816e77c0032c68f4989bfc4ec56d2b47864adc05c.png",
        id="block-json",
    ),
    pytest.param(
        "https://example.com/",
        {"block": ["font", "fonts", "Example.COM"]},
        "screenshots/ea/ea704a90720aaa8e9d870af489c6d35e61dc5dfa6a6f4f5b3038dec827a7d0eb.png",
        id="block-dupes",
    ),
    pytest.param(
        "https://example.com/",
        {"fail_on_status": "400-599"},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="fail_on_status",
    ),
    pytest.param(
        "https://example.com/",
        {"fail_on_status": [404, "5xx", [300, 399]]},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="fail_on_status-list",
    ),
    pytest.param(
        "https://example.com/",
        {"fail_on_status": 404},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="fail_on_status-int",
    ),
    pytest.param(
        "https://example.com/",
        {"timeout": 5},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="timeout",
    ),
    pytest.param(
        "https://example.com/",
        {"timeout": "12.5"},
        "screenshots/bc/bcb0e630505449b02703031494feff0b36d0c0fcd090fe892653d02a7f1598f4.png",
        id="timeout-text",
    ),
    pytest.param(
        "https://example.org/page",
        {
            "width": "1024",
            "height": 768,
            "full_page": "false",
            "scale": "2",
            "format": "jpeg",
            "quality": 70,
            "selector": "main",
            "hide_selectors": ".cookie,.ad",
            "css": "a{}",
            "js": "1",
            "wait_until": "domcontentloaded",
            "wait_for": "main img",
            "wait_for_js": "window.done",
            "delay_ms": 250,
            "scroll": "yes",
            "user_agent": "UA/2",
            "headers": "X-Team: web",
            "cookies": '{"s": "1"}',
            "dark_mode": "true",
            "reduced_motion": "true",
            "timezone": "Asia/Tokyo",
            "locale": "ja-JP",
            "block": "ads,media",
            "fail_on_status": "400-499,5xx",
            "timeout": "60",
        },
        "screenshots/4e/4e90825a7ca4d3e0f0ea34dbc4e794e21742e282ff6ddcb9b2d755643fba07eb.jpg",
        id="everything",
    ),
    pytest.param(
        "https://example.org/page",
        {
            "width": 800,
            "height": 600,
            "full_page": True,
            "scale": 1.5,
            "format": "webp",
            "quality": 90,
            "delay_ms": 0,
            "scroll": True,
            "block": ["image"],
            "wait_until": "load",
        },
        "screenshots/b2/b2f0e67a2b38182877b37a809d15f8f747844f17875b458d3ad533f66bb00db5.webp",
        id="everything-full-page",
    ),
    pytest.param(
        "https://example.org/",
        {"clip": "0,0,800,600", "format": "png", "dark_mode": True, "timeout": 1},
        "screenshots/a6/a67f3d2f968c6f020e1f0f6188959437291192bec0fa63dccf9941ccd978aed1.png",
        id="clip-with-options",
    ),
]


@pytest.mark.parametrize("url, values, key", CASES)
def test_storage_key_is_unchanged(url: str, values: dict[str, Any], key: str) -> None:
    options = CaptureOptions.from_dict(values)
    assert storage_key(url, options) == key
    digest = key.rsplit("/", 1)[1].split(".")[0]
    assert capture_digest(url, options) == digest


def test_the_job_digest_of_a_run_is_unchanged() -> None:
    # the dispatcher derives a rerun's job id from capture_digest("", options)
    assert capture_digest("", CaptureOptions()) == (
        "d456189183db8715c32fd372ec805e4513359a7f0031566b169eaa839276c90f"
    )


def test_the_canonical_form_of_every_option_is_unchanged() -> None:
    # the form task messages carry between a dispatcher and workers of another version
    everything = next(p.values[1] for p in CASES if p.id == "everything")
    options = CaptureOptions.from_dict(everything)
    assert options.to_dict() == {
        "width": 1024,
        "height": 768,
        "full_page": False,
        "scale": 2.0,
        "format": "jpeg",
        "quality": 70,
        "selector": "main",
        "clip": None,
        "hide_selectors": [".cookie", ".ad"],
        "css": "a{}",
        "js": "1",
        "wait_until": "domcontentloaded",
        "wait_for": "main img",
        "wait_for_js": "window.done",
        "delay_ms": 250,
        "scroll": True,
        "user_agent": "UA/2",
        "headers": {"X-Team": "web"},
        "cookies": {"s": "1"},
        "dark_mode": True,
        "reduced_motion": True,
        "timezone": "Asia/Tokyo",
        "locale": "ja-JP",
        "block": ["ads", "media"],
        "fail_on_status": ["400-499", "500-599"],
        "timeout": 60.0,
    }
    assert capture_digest("", options) == (
        "7083ae00d145f8bf83613f11934a7c64eba057a6d99f3d2dc8b5ddab1f18799a"
    )
    assert CaptureOptions.from_dict(options.to_dict()) == options
    assert hash(CaptureOptions.from_dict(options.to_dict())) == hash(options)
    ranges = CaptureOptions.from_dict({"fail_on_status": [404, "5xx", [300, 399]]})
    assert ranges.to_dict()["fail_on_status"] == ["300-399", "404", "500-599"]
    blocked = CaptureOptions.from_dict({"block": '["css", "tracker.example", "*/ads/*"]'})
    assert blocked.block == ("*/ads/*", "stylesheet", "tracker.example")
