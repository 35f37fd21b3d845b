"""report.html in a real headless Chromium (Playwright driving the system Chromium).

A small run with the stub engine (per-URL options from a JSON Lines file, some errors), then
the report is opened from disk: the status filter, the search box, sorting and the dialog
showing a full image and its metadata are used the way a person would, and what is visible is
checked. Then a run whose input lines are hostile (``javascript:`` and ``data:`` URLs in any
spelling, markup, a ``</script>``) shows each of them as text and never as a link or markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from screenshots.batch import dispatcher
from screenshots.batch.manifest import read_rows
from screenshots.batch.report import write_report
from screenshots.core.result import error_result
from support.browser import chromium  # noqa: F401 - the "browser" fixture

ROWS = [
    {"url": "http://alpha.example/", "width": 320, "height": 200},
    {"url": "http://beta.example/news", "width": 640, "height": 400, "format": "jpeg"},
    {"url": "http://gamma.example/", "width": 1000, "height": 900},
    {"url": "http://gone.invalid/"},
    {"url": "http://delta.example/", "colour": "red"},
    {"url": "not a url"},
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("report")
    urls = base / "urls.jsonl"
    urls.write_text("\n".join(json.dumps(row) for row in ROWS) + "\n")
    out = base / "out"
    status = dispatcher.run([str(urls), "--out", str(out), "--engine", "stub", "--quiet"])
    assert status == 0
    return out / "report.html"


@pytest.fixture
def page(browser: Browser, report: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.goto(report.as_uri())
    yield opened
    context.close()


def visible_urls(page: Page) -> list[str]:
    return page.locator(".card:not([hidden]) .url").all_inner_texts()


@pytest.mark.integration
def test_everything_is_shown_first(page: Page) -> None:
    assert page.locator("#summary").inner_text() == "6 URLs: 3 ok, 3 failed"
    assert len(visible_urls(page)) == 6
    assert page.locator("#shown").inner_text() == "6"
    # every card of an ok row shows its thumbnail (240 pixels wide), from a relative path
    loaded = page.evaluate(
        "Array.from(document.querySelectorAll('.card.ok img')).map(i => [i.complete && "
        "i.naturalWidth, i.getAttribute('src')])"
    )
    assert [width for width, _ in loaded] == [240, 240, 240]
    assert all(src.startswith("./screenshots/") and src.endswith(".thumb.webp")
               for _, src in loaded)


@pytest.mark.integration
def test_status_filter_and_search(page: Page) -> None:
    page.select_option("#status", "error")
    assert sorted(visible_urls(page)) == [
        "http://delta.example/",
        "http://gone.invalid/",
        "not a url",
    ]
    assert page.locator("#shown").inner_text() == "3"
    reasons = " | ".join(page.locator(".card:not([hidden]) .err").all_inner_texts())
    assert "unknown option 'colour'" in reasons and "ERR_NAME_NOT_RESOLVED" in reasons

    page.select_option("#status", "ok")
    page.fill("#search", "BETA")
    assert visible_urls(page) == ["http://beta.example/news"]
    assert page.locator("#shown").inner_text() == "1"

    page.fill("#search", "")
    page.select_option("#status", "all")
    page.fill("#search", ".example/")
    assert len(visible_urls(page)) == 4


@pytest.mark.integration
def test_sort_by_size(page: Page) -> None:
    page.select_option("#status", "ok")
    page.select_option("#sort", "size-desc")
    order = visible_urls(page)
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('.card.ok')).map(c => Number(c.dataset.bytes))"
    )
    assert sizes == sorted(sizes, reverse=True)
    assert len(order) == 3
    page.select_option("#sort", "line")
    assert visible_urls(page) == [
        "http://alpha.example/",
        "http://beta.example/news",
        "http://gamma.example/",
    ]


@pytest.mark.integration
def test_click_shows_the_full_image_and_its_metadata(page: Page) -> None:
    dialog = page.locator("#viewer")
    assert not dialog.is_visible()
    page.locator(".card", has_text="beta.example").locator(".thumb").click()
    assert dialog.is_visible()
    assert page.locator("#viewer-title").inner_text() == "http://beta.example/news"
    size = page.evaluate("[document.getElementById('viewer-img').naturalWidth, "
                         "document.getElementById('viewer-img').naturalHeight]")
    assert size == [640, 400]
    fields = dict(
        zip(
            page.locator("#viewer-meta dt").all_inner_texts(),
            page.locator("#viewer-meta dd").all_inner_texts(),
            strict=True,
        )
    )
    assert fields["Status"] == "ok"
    assert fields["HTTP status"] == "200"
    assert fields["Engine"] == "stub"
    assert fields["Image"].startswith("640×400 jpeg")
    assert "navigation 0" in fields["Timings (ms)"] and "upload" in fields["Timings (ms)"]
    page.keyboard.press("Escape")
    assert not dialog.is_visible()

    page.locator(".card", has_text="gone.invalid").locator(".thumb").click()
    assert dialog.is_visible()
    assert not page.locator("#viewer-img").is_visible()
    assert "ERR_NAME_NOT_RESOLVED" in page.locator("#viewer-meta").inner_text()


#: Input lines that must never become links (nor markup, nor script).
HOSTILE_LINES = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;vascript&colon;alert(1)",
    "</script><script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
]
#: Rows a manifest may hold that no input reader produces today (readers strip white space):
#: what browsers skip before a scheme, or inside one.
RAW_ROWS = [
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\nscript:alert(1)",
    "\u00a0javascript:alert(1)",
]


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A stub run over the hostile lines plus one good URL, then rows written by hand."""
    base = tmp_path_factory.mktemp("hostile")
    urls = base / "urls.jsonl"
    lines = [*HOSTILE_LINES, "http://ok.example/"]
    urls.write_text("".join(json.dumps({"url": line}) + "\n" for line in lines))
    out = base / "out"
    status = dispatcher.run([str(urls), "--out", str(out), "--engine", "stub", "--quiet"])
    assert status == 0
    manifest = out / "results.jsonl"
    first = len(lines) + 1
    with manifest.open("a", encoding="utf-8") as handle:
        for offset, url in enumerate(RAW_ROWS):
            row = error_result(first + offset, url, "not a URL").to_dict()
            handle.write(json.dumps(row) + "\n")
    write_report(out, manifest)
    return out / "report.html", [str(row["url"]) for row in read_rows(manifest)]


@pytest.mark.integration
def test_only_http_urls_become_links(browser: Browser, hostile_report) -> None:
    report, urls = hostile_report
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(report.as_uri())
        # every row is a card whose URL is the row's text exactly, as the manifest holds it
        assert page.locator(".card").count() == len(urls)
        shown = page.locator(".card .url").evaluate_all("els => els.map(e => e.textContent)")
        assert sorted(shown) == sorted(urls)
        assert any("javascript" in url.lower() for url in urls)
        # one link only, the http one; no other anchor has an address
        links = page.evaluate(
            "Array.from(document.querySelectorAll('a[href]')).map(a => [a.protocol, a.href])"
        )
        assert links == [["http:", "http://ok.example/"]]
        # nothing the rows held became markup or ran
        assert page.title() == "Screenshots"
        assert page.locator(".grid script, .grid img[src='x']").count() == 0
        # the dialog shows each hostile row as text too, with no image link
        for card in page.locator(".card.error").all():
            card.locator(".thumb").click()
            title = page.locator("#viewer-title").evaluate("e => e.textContent")
            assert title == card.locator(".url").evaluate("e => e.textContent")
            assert page.locator("#viewer a[href]").count() == 0
            assert page.locator("#viewer-meta a, #viewer-meta img").count() == 0
            page.keyboard.press("Escape")
            assert not page.locator("#viewer").is_visible()
        assert page.title() == "Screenshots" and dialogs == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def triage_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """450 rows written by hand: 300 parked pages (one look), 100 default pages (another),
    50 distinct pages; a comparison with an earlier run marked some changed (with a diff
    image), some new, one gone."""
    import io as _io

    from PIL import Image

    from screenshots.core.result import Result

    out = tmp_path_factory.mktemp("triage")
    diff = out / "diff.png"
    buffer = _io.BytesIO()
    Image.new("RGB", (64, 40), "red").save(buffer, "PNG")
    diff.write_bytes(buffer.getvalue())
    rows = []
    for line in range(1, 451):
        if line <= 300:
            phash = f"{0xF0F0F0F0F0F0F0F0 ^ (1 << (line % 3)):016x}"  # 1 bit apart
        elif line <= 400:
            phash = "0f0f0f0f0f0f0f0f"
        else:
            phash = f"{line * 0x9E3779B97F4A7C15 % (1 << 64):016x}"  # far apart
        change = "changed" if line % 50 == 0 else "new" if line > 440 else "unchanged"
        rows.append(Result(
            line=line, url=f"http://host{line}.example/", status="ok", width=64, height=40,
            bytes=1000 + line, duration_ms=line, phash=phash, change=change,
            changed_pct=12.5 if change == "changed" else 0.0 if change == "unchanged" else None,
            diff_link=diff.as_uri() if change == "changed" else None,
        ))
    rows.append(Result(line=500, url="http://old.example/", status="error",
                       error="gone: not in this run's input", change="gone"))
    manifest = out / "results.jsonl"
    manifest.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in rows))
    return write_report(out, manifest)


@pytest.mark.integration
def test_look_alike_groups_changes_and_pages(browser: Browser, triage_report: Path) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(triage_report.as_uri())
        assert page.locator("#shown").inner_text() == "451"
        assert page.locator(".card").count() == 200  # one page of cards at a time
        assert page.locator("#page").inner_text() == "page 1 of 3"
        assert "9 changed" in page.locator("#changes").inner_text()
        page.click("#next")
        page.click("#next")
        assert page.locator("#page").inner_text() == "page 3 of 3"
        assert page.locator(".card").count() == 51
        assert page.locator("#next").is_disabled()

        # One card per look-alike group: 300 parked, 100 default, 50 unique, and the gone row.
        page.check("#grouped")
        assert page.locator("#shown").inner_text() == "53"
        page.select_option("#sort", "group-desc")
        groups = page.locator(".card .group").all_inner_texts()
        assert groups == ["300 look-alikes", "100 look-alikes"]
        # Hiding the biggest groups leaves the distinct pages and the gone row.
        page.fill("#hide-over", "10")
        assert page.locator("#shown").inner_text() == "51"
        assert page.locator(".card .group").count() == 0
        page.fill("#hide-over", "")
        page.uncheck("#grouped")

        page.select_option("#change", "changed")
        assert page.locator("#shown").inner_text() == "9"
        assert page.locator(".card.change-changed").count() == 9
        page.locator(".card .thumb").first.click()
        assert page.locator("#viewer-diff").is_visible()
        page.wait_for_function("document.getElementById('viewer-diff').naturalWidth > 0")
        assert page.evaluate("document.getElementById('viewer-diff').naturalWidth") == 64
        assert "12.5" in page.locator("#viewer-meta").inner_text()
        page.keyboard.press("Escape")
        page.select_option("#change", "gone")
        assert visible_urls(page) == ["http://old.example/"]
        page.select_option("#change", "new")
        assert page.locator("#shown").inner_text() == "9"  # lines 441-449
    finally:
        context.close()
