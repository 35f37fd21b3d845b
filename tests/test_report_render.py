"""report.html as text, without a browser: which URLs become links, and the JSON block.

The browser tests (``test_report_browser.py``) check what a person sees; these check the two
rules that keep a hostile input line inert, for every spelling, in milliseconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from screenshots.batch.report import link_target, render_report
from screenshots.core.result import error_result

NEVER_LINKS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\nscript:alert(1)",
    "java\tscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript&colon;alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "//evil.example/",
    "not a url",
    "",
]


@pytest.mark.parametrize("line", NEVER_LINKS)
def test_only_http_urls_are_link_targets(line: str) -> None:
    assert link_target(line) is None


@pytest.mark.parametrize(
    ("line", "target"),
    [
        ("http://a.example/", "http://a.example/"),
        ("HTTPS://A.Example/path?q=1", "https://a.example/path?q=1"),
        (" http://a.example/", "http://a.example/"),
    ],
)
def test_http_urls_link_to_the_url_a_capture_would_use(line: str, target: str) -> None:
    assert link_target(line) == target


def test_rows_are_text_and_the_json_block_cannot_be_closed(tmp_path: Path) -> None:
    hostile = "</script><script>alert(1)</script><!--"
    rows = [error_result(n, url, hostile) for n, url in enumerate([*NEVER_LINKS, hostile], 1)]
    page = render_report(rows, len(rows), 0, tmp_path, title="<b>run</b>")
    assert "<b>run</b>" not in page and "&lt;b&gt;run&lt;/b&gt;" in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == []
    block = re.search(
        r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert block is not None
    data = json.loads(block.group(1))  # the whole block parses: nothing closed it early
    assert [row["url"] for row in data["rows"]] == [r.url for r in rows]
    assert all(row["error"] == hostile for row in data["rows"])
    assert page.count("<script") == 2  # the data block and the page's own script
