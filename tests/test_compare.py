"""Run against run, in real Chromium: pages this test serves change between two runs (text, an
image, a layout shift, a clock in an ignored region), and ``--compare`` says exactly what
changed, by how much, and where."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from screenshots.batch import compare, dispatcher

pytestmark = pytest.mark.integration

#: Every page: no margin, no scroll bars, so pixels are where the styles put them.
HEAD = (
    "<!doctype html><html><head><meta charset='utf-8'><style>html,body{margin:0;"
    "overflow:hidden;background:#fff} div,img{display:block}</style></head><body>"
)
AREA = 1280 * 800


def png(color: str, size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


class ChangingSite:
    """Pages whose content depends on :attr:`run` (1 or 2)."""

    def __init__(self) -> None:
        self.run = 1
        self.clock = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                body, kind = site.page(urlsplit(self.path).path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def page(self, path: str) -> tuple[bytes, str]:
        two = self.run == 2
        blue = "<div style='width:1280px;height:200px;background:#00f'></div>"
        html = {
            "/same": blue,
            "/text": "<p style='margin:0;width:400px;height:100px;font:24px sans-serif'>"
            + ("Goodbye moon" if two else "Hello world") + "</p>",
            "/image": f"<img src='/img-{self.run}.png' width=200 height=100>",
            "/image-tolerant": f"<img src='/img-{self.run}.png' width=200 height=100>",
            "/layout": ("<div style='height:100px;background:#f00'></div>" if two else "") + blue,
            "/clock": "<div style='width:200px;height:50px;font:20px monospace'>"
            f"{self.next_time()}</div>" + blue,
            # A clock ignored by selector that also moves between the runs.
            "/clock-moving": "<div id='clock' style='position:absolute;top:0;left:"
            f"{600 if two else 0}px;width:200px;height:50px;font:20px monospace'>"
            f"{self.next_time()}</div>",
            "/bad-selector": blue,
            "/old": blue,
            "/new": blue,
        }.get(path)
        if html is not None:
            return (HEAD + html + "</body></html>").encode(), "text/html; charset=utf-8"
        if path in ("/img-1.png", "/img-2.png"):
            return png("#f00" if path == "/img-1.png" else "#0a0", (200, 100)), "image/png"
        return b"", "text/plain"

    def next_time(self) -> str:
        self.clock += 1
        return f"12:00:{self.clock:02d}.{self.clock * 37 % 1000:03d}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def changing_site() -> Iterator[ChangingSite]:
    site = ChangingSite()
    yield site
    site.close()


@pytest.fixture(autouse=True)
def embedded_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENSHOT_BUCKET"):
        monkeypatch.delenv(name, raising=False)


def write_urls(path: Path, site: ChangingSite, paths: list[str]) -> Path:
    options: dict[str, dict[str, object]] = {
        "/clock": {"ignore": ["0,0,200,50"]}, "/image-tolerant": {"changed_above": 5},
        "/clock-moving": {"ignore": ["#clock", ".absent"]}, "/bad-selector": {"ignore": ["div["]},
    }
    rows = [{"url": site.url(p), **options.get(p, {})} for p in paths]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rows_of(out: Path) -> dict[str, dict]:
    rows = [json.loads(t) for t in (out / "results.jsonl").read_text().splitlines()]
    return {urlsplit(r["url"]).path: r for r in rows}


def image_at(link: str) -> Image.Image:
    return Image.open(io.BytesIO(Path(unquote(urlsplit(link).path)).read_bytes()))


def red_box(link: str) -> tuple[int, int, int, int]:
    """The bounding box (left, top, right, bottom) of the diff image's red pixels."""
    pixels = np.asarray(image_at(link).convert("RGB"), dtype=np.int16)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    ys, xs = np.nonzero(red)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_a_second_run_says_what_changed_by_how_much_and_where(
    tmp_path: Path, changing_site: ChangingSite
) -> None:
    common = ["/same", "/text", "/image", "/image-tolerant", "/layout", "/clock", "/clock-moving"]
    first, second = tmp_path / "run1", tmp_path / "run2"
    changing_site.run = 1
    urls1 = write_urls(tmp_path / "urls1.jsonl", changing_site, [*common, "/old"])
    assert dispatcher.run([str(urls1), "--out", str(first), "--concurrency", "2", "--quiet"]) == 0
    changing_site.run = 2
    urls2 = write_urls(tmp_path / "urls2.jsonl", changing_site, [*common, "/new", "/bad-selector"])
    argv = [str(urls2), "--out", str(second), "--concurrency", "2", "--quiet",
            "--compare", str(first)]
    assert dispatcher.run(argv) == 0

    rows = rows_of(second)
    states = {path: (row["change"], row["changed_pct"]) for path, row in rows.items()}
    assert states["/same"] == ("unchanged", 0.0)
    assert states["/clock"] == ("unchanged", 0.0)  # its clock is in the ignored region
    # Its clock is ignored by selector: measured where it was in run 1 and where it is now.
    assert states["/clock-moving"] == ("unchanged", 0.0)
    assert rows["/clock-moving"]["ignored_regions"] == ["600,0,200,50"]
    assert rows_of(first)["/clock-moving"]["ignored_regions"] == ["0,0,200,50"]
    assert rows["/same"]["ignored_regions"] == []
    bad = rows["/bad-selector"]
    assert bad["status"] == "error" and "'div[' is not a valid CSS selector" in bad["error"]
    assert states["/image"] == ("changed", 1.953)  # 200×100 of 1280×800 pixels
    assert states["/image-tolerant"] == ("unchanged", 1.953)  # under its changed_above: 5
    assert states["/layout"] == ("changed", 25.0)  # rows 0-99 blue→red, 200-299 white→blue
    assert states["/text"][0] == "changed" and 0 < states["/text"][1] <= 100 * 400 * 100 / AREA
    assert states["/new"] == ("new", None)
    gone = rows["/old"]
    assert gone["change"] == "gone" and gone["status"] == "error"
    assert len(rows) == 10

    assert red_box(rows["/image"]["diff_link"]) == (0, 0, 200, 100)
    assert red_box(rows["/layout"]["diff_link"]) == (0, 0, 1280, 300)
    left, top, right, bottom = red_box(rows["/text"]["diff_link"])
    assert right <= 400 and bottom <= 100
    assert rows["/same"]["diff_link"] is None and rows["/clock"]["diff_link"] is None
    for path in common:
        assert rows[path]["phash"] and len(rows[path]["phash"]) == 16
        assert image_at(rows[path]["thumbnail_link"]).format == "WEBP"

    alerts = [json.loads(t) for t in (second / compare.CHANGES_NAME).read_text().splitlines()]
    assert sorted(urlsplit(a["url"]).path for a in alerts) == ["/image", "/layout", "/text"]
    image_alert = next(a for a in alerts if a["url"].endswith("/image"))
    assert image_alert["changed_pct"] == 1.953 and image_alert["changed_above"] == 0.1

    # The standalone command over the two manifests says the same, given the URL file...
    assert compare.run([str(first), str(second), "--quiet", "--urls", str(urls2)]) == 0
    again = rows_of(second)
    assert {p: (r["change"], r["changed_pct"]) for p, r in again.items()} == states
    assert len(again) == 10  # the gone row is made again, not doubled
    # ...and without it, its flags apply to every URL: the clock changed, the image too.
    flags = ["--ignore", "0,300,10,10", "--changed-above", "0"]
    assert compare.run([str(first), str(second), "--quiet", *flags]) == 0
    flagged = rows_of(second)
    assert flagged["/clock"]["change"] == "changed" and flagged["/clock"]["changed_pct"] > 0
    assert flagged["/image-tolerant"]["change"] == "changed"
