"""The ``ignore`` option's CSS selectors are measured in the page by both Chromium engines, in
CSS pixels of the image whatever part of the page the image is: the viewport (scrolled), the
full page, a ``clip`` or a ``selector``'s element."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engines import chromium, create_engine
from engines.base import Engine
from screenshots.core.errors import PermanentError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings

pytestmark = pytest.mark.integration

#: Absolutely placed boxes on a 3000 px tall page, no margins, no scroll bars.
PAGE = (
    b"<!doctype html><html><head><style>html,body{margin:0;overflow:hidden}"
    b"div{position:absolute}</style></head><body style='height:3000px'>"
    b"<div id='far' style='left:40px;top:1100px;width:30px;height:20px;background:red'></div>"
    b"<div id='box' style='left:200px;top:300px;width:300px;height:200px;background:#ccc'>"
    b"<div class='ad' style='left:20px;top:10px;width:50px;height:40px;background:blue'></div>"
    b"<div class='ad' style='left:-30px;top:150px;width:50px;height:5.5px'></div>"
    b"</div><div class='none' style='left:0;top:0;width:0;height:10px'></div></body></html>"
)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=["selenium", "playwright"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    created = create_engine(request.param, load_settings())
    yield created
    created.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # The viewport scrolled by 1000 px: #far is 100 px from the image's top, the .ad boxes
        # are above the image: left out.
        ({"js": "scrollTo(0, 1000)"}, ("40,100,30,20",)),
        ({"full_page": True}, ("40,1100,30,20", "220,310,50,40", "170,450,50,6")),
        # A clip: its top left corner is the image's origin.
        ({"clip": [20, 1000, 400, 400]}, ("20,100,30,20",)),
        # The element: the box; the half-outside .ad is cut at the image's left edge.
        ({"selector": "#box"}, ("20,10,50,40", "0,150,20,6")),
    ],
    ids=["viewport-scrolled", "full-page", "clip", "selector"],
)
def test_selectors_are_measured_in_css_pixels_of_the_image(
    engine: Engine, url: str, options: dict[str, object], expected: tuple[str, ...]
) -> None:
    ignore = ["#far", "#box .ad", ".none", ".absent", "3,4,5,6"]
    if options.get("selector"):
        ignore.remove("#far")
    if options.get("clip"):
        ignore = ["#far"]
    capture = engine.capture(url, CaptureOptions.from_dict({**options, "ignore": ignore}))
    assert capture.ignored_regions == expected


def test_no_selector_measures_nothing_and_a_bad_one_is_a_clear_error(
    engine: Engine, url: str
) -> None:
    plain = CaptureOptions.from_dict({"ignore": ["1,2,3,4"]})
    assert engine.capture(url, plain).ignored_regions == ()
    with pytest.raises(PermanentError, match=r"ignore: 'div\[' is not a valid CSS selector"):
        engine.capture(url, CaptureOptions.from_dict({"ignore": ["div["]}))
