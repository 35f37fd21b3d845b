"""The page at ``/`` in a real headless Chromium (Playwright driving the system Chromium).

A person types the API key, pastes three URLs of the local test site, picks a size and
submits; the page follows the job and shows three thumbnails taken by the real Selenium
engine in the broker-less pool. Hostile input lines (``javascript:`` and ``data:`` URLs in any
spelling) and hostile rows the API hands back are shown as text, never as links.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import load_api_config
from screenshots.core.settings import load_settings
from screenshots.storage.memory import MemoryStorage
from support.apiserver import serve
from support.browser import chromium  # noqa: F401 - the "browser" fixture

pytestmark = pytest.mark.integration

KEY = "web-page-key-0123456789"


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    settings = load_settings()
    config = load_api_config({"SCREENSHOT_API_KEYS": f"person:{KEY}"})
    backend = PoolBackend(
        lambda: create_engine("selenium", settings), "selenium", MemoryStorage(),
        tabs=2, wait_queue=4, uploads=2,
    )
    with serve(create_app(config, backend, settings, job_poll_interval=0.1)) as base:
        yield base


def test_three_urls_pasted_in_the_page_become_three_thumbnails(
    browser: Browser, api_url: str, site, tmp_path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(api_url + "/")
        expect(page.locator("h1")).to_have_text("Screenshots")
        page.fill("#key", KEY)
        urls = [site.url("/page/1"), site.url("/page/2"), site.url("/index.html")]
        page.fill("#urls", "\n".join(urls))
        page.fill("#width", "400")
        page.fill("#height", "300")
        page.click("#submit")

        thumbs = page.locator("#gallery img.thumb[data-loaded='1']")
        expect(thumbs).to_have_count(3, timeout=60_000)
        expect(page.locator("#progress-text")).to_contain_text("Done: 3 / 3 — 3 ok, 0 errors")
        sizes = thumbs.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
        assert sizes == [[400, 300]] * 3
        captions = page.locator("#gallery figcaption .url").all_inner_texts()
        assert sorted(captions) == sorted(urls)

        # the filter and the search act on the gallery
        page.select_option("#filter", "error")
        expect(page.locator("#gallery .card:visible")).to_have_count(0)
        page.select_option("#filter", "all")
        page.fill("#search", "page/2")
        expect(page.locator("#gallery .card:visible")).to_have_count(1)
        page.fill("#search", "")

        # a thumbnail opens the full image with its metadata
        thumbs.first.click()
        expect(page.locator("#viewer")).to_be_visible()
        expect(page.locator("#viewer-meta")).to_contain_text("http_status")
        page.screenshot(path=str(tmp_path / "web-page.png"), full_page=True)
    finally:
        page.close()


def test_a_wrong_key_is_shown_to_the_person(browser: Browser, api_url: str) -> None:
    page = browser.new_page()
    try:
        page.goto(api_url + "/")
        page.fill("#key", "not-the-right-key-at-all")
        page.fill("#urls", "http://a.example/")
        page.click("#submit")
        expect(page.locator("#message")).to_contain_text("401: invalid API key")
    finally:
        page.close()


def test_a_bad_line_is_an_error_card_and_never_a_link(browser: Browser, api_url: str) -> None:
    page = browser.new_page()
    try:
        page.goto(api_url + "/")
        page.fill("#key", KEY)
        page.fill("#urls", "javascript:alert(document.cookie)")
        page.click("#submit")
        card = page.locator("#gallery .card.error")
        expect(card).to_have_count(1, timeout=30_000)
        expect(card.locator(".meta")).to_contain_text("unsupported scheme 'javascript'")
        assert card.locator("a").count() == 0
    finally:
        page.close()


#: Lines a person may submit that must never become links, each on its own line of a file
#: (the page sends a file as it is, white space included).
HOSTILE_LINES = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(document.cookie)",
    "  javascript:alert(document.cookie)",
    "\tjavascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript&colon;alert(1)",
    "<img src=x onerror=alert(1)>",
]


def links_and_urls(page: Page) -> tuple[list[str], list[str]]:
    """The addresses of the gallery's links, and the URL text of every card."""
    links = page.locator("#gallery a[href]").evaluate_all("els => els.map(a => a.href)")
    urls = page.locator("#gallery .url").evaluate_all("els => els.map(e => e.textContent)")
    return links, urls


def test_hostile_lines_are_error_cards_and_never_links(browser: Browser, api_url: str) -> None:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(api_url + "/")
        page.fill("#key", KEY)
        page.set_input_files(
            "#file",
            files=[{
                "name": "urls.txt",
                "mimeType": "text/plain",
                "buffer": "\n".join(HOSTILE_LINES).encode(),
            }],
        )
        page.click("#submit")
        cards = page.locator("#gallery .card.error")
        expect(cards).to_have_count(len(HOSTILE_LINES), timeout=30_000)
        expect(page.locator("#progress-text")).to_contain_text("Done")
        links, urls = links_and_urls(page)
        assert links == []
        # each card shows its line as text (the API drops the surrounding white space)
        assert sorted(urls) == sorted(line.strip() for line in HOSTILE_LINES)
        assert page.locator("#gallery img, #gallery script").count() == 0
        assert dialogs == []
    finally:
        page.close()


#: Rows as a results.jsonl may hold them, beyond what today's input readers produce: white
#: space and control characters that browsers skip before or inside a scheme.
RAW_ROWS = [
    " javascript:alert(1)",
    "\njavascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "http://gone.example/",
    " https://spaced.example/path",
]


Row = dict[str, object]


def submit_answered_by(page: Page, api_url: str, job_id: str, rows: list[Row]) -> None:
    """Submit a job in the page, the API's answers replaced by a finished job of ``rows``
    (and no image: 404)."""
    errors = sum(1 for row in rows if row["status"] == "error")
    summary = {"id": job_id, "state": "done", "total": len(rows), "done": len(rows),
               "ok": len(rows) - errors, "error": errors}

    def answer(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=202, json={**summary, "state": "running", "done": 0})
        elif route.request.url.endswith("/results.jsonl"):
            route.fulfill(body="".join(json.dumps(r) + "\n" for r in rows))
        elif "/images/" in route.request.url:
            route.fulfill(status=404, json={"detail": "no image here"})
        else:
            route.fulfill(json=summary)

    page.route("**/v1/jobs**", answer)
    page.goto(api_url + "/")
    page.fill("#key", KEY)
    page.fill("#urls", "http://a.example/")
    page.click("#submit")


def test_rows_the_api_returns_are_links_only_when_http(browser: Browser, api_url: str) -> None:
    """The page renders whatever rows the API returns: only http(s) URLs become links."""
    rows = [
        {"line": n, "url": url, "status": "error", "error": "not captured"}
        for n, url in enumerate(RAW_ROWS, start=1)
    ]
    page = browser.new_page()
    try:
        submit_answered_by(page, api_url, "raw", rows)
        expect(page.locator("#gallery .card")).to_have_count(len(rows), timeout=30_000)
        links, urls = links_and_urls(page)
        assert urls == RAW_ROWS
        assert links == ["http://gone.example/", "https://spaced.example/path"]
    finally:
        page.close()


def test_look_alike_rows_fold_into_one_card_per_group(browser: Browser, api_url: str) -> None:
    """Rows whose perceptual hashes are a few bits apart are one group: one card, its size."""
    parked = 0xF0F0F0F0F0F0F0F0
    hashes = [parked, parked ^ 1, parked ^ 2, parked ^ 3, parked ^ 0x11,  # 5 alike
              0x0F0F0F0F0F0F0F0F, 0x0F0F0F0F0F0F0F0E, 0x0F0F0F0F0F0F0F0C,  # 3 alike
              0x123456789ABCDEF0]  # 1 on its own
    rows: list[dict[str, object]] = [
        {"line": n, "url": f"http://host{n}.example/", "status": "ok", "width": 64,
         "height": 40, "bytes": 100, "http_status": 200, "phash": f"{h:016x}"}
        for n, h in enumerate(hashes, start=1)
    ]
    rows.append({"line": 10, "url": "http://down.example/", "status": "error", "error": "x"})
    page = browser.new_page()
    try:
        submit_answered_by(page, api_url, "looks", rows)
        visible = page.locator("#gallery .card:visible")
        expect(visible).to_have_count(10, timeout=30_000)
        page.check("#grouped")
        expect(visible).to_have_count(4)  # two groups, the lone page, the error
        sizes = page.locator("#gallery .card:visible .group:visible").all_inner_texts()
        assert sizes == ["5 look-alikes", "3 look-alikes"]
        urls = page.locator("#gallery .card:visible .url").all_inner_texts()
        assert urls == ["http://host1.example/", "http://host6.example/",
                        "http://host9.example/", "http://down.example/"]
        page.fill("#hide-over", "2")  # the biggest groups out of the way
        expect(visible).to_have_count(2)
        page.uncheck("#grouped")
        expect(visible).to_have_count(2)
        page.fill("#hide-over", "")
        expect(visible).to_have_count(10)
    finally:
        page.close()
