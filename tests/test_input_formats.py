"""URL files with per-URL options: text, JSON Lines and CSV; defaults from flags, rows override."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image

from screenshots.batch import dispatcher
from screenshots.batch.inputs import count_lines, detect_format, read_shots
from screenshots.core.errors import InvalidOption
from screenshots.core.keys import storage_key
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result
from screenshots.core.shot import Shot

DEFAULTS = CaptureOptions(width=640, height=480, format="jpeg")


def items(path: Path, defaults: CaptureOptions = DEFAULTS) -> list[Shot | Result]:
    found = list(read_shots(path, defaults))
    assert count_lines(path) == len(found)  # the progress total matches what is yielded
    return found


@pytest.mark.parametrize(
    "name, text, kind",
    [
        ("urls.txt", "http://a.example/\n", "text"),
        ("urls.jsonl", "http://a.example/\n", "jsonl"),
        ("urls.ndjson", '{"url": "http://a.example/"}\n', "jsonl"),
        ("urls.csv", "url\nhttp://a.example/\n", "csv"),
        ("urls", '\n# comment\n{"url": "http://a.example/"}\n', "jsonl"),
        ("urls", "URL,width\nhttp://a.example/,300\n", "csv"),
        ("urls.txt", "url\nhttp://a.example/\n", "text"),  # one column: a URL list
        ("urls", "http://a.example/,x\n", "text"),
    ],
)
def test_format_detection(tmp_path: Path, name: str, text: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert detect_format(path) == kind


def test_jsonl_rows_override_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "urls.jsonl"
    path.write_text(
        '{"url": "http://a.example/"}\n'
        "\n"
        "# a comment\n"
        '{"url": "https://b.example/x", "width": 800, "full_page": true, "block": ["ads"],'
        ' "headers": {"X-A": "1"}, "clip": null}\n'
        '{"url": "http://c.example/", "colour": "red"}\n'
        '{"url": "http://d.example/", "width": "wide"}\n'
        '{"url": "ftp://e.example/"}\n'
        '{"width": 5}\n'
        "[1, 2]\n"
        "{not json\n"
    )
    found = items(path)
    shots = {i.line: i for i in found if isinstance(i, Shot)}
    errors = {i.line: i.error for i in found if isinstance(i, Result)}
    assert shots[1].options == DEFAULTS
    assert shots[4].url == "https://b.example/x"
    assert shots[4].options == DEFAULTS.replace(
        width=800, full_page=True, block=("ads",), headers=(("X-A", "1"),)
    )
    assert errors == {
        5: "unknown option 'colour'",
        6: "width must be a whole number, not 'wide'",
        7: "unsupported scheme 'ftp': only http and https are captured",
        8: 'the object has no "url" text',
        9: "line is not a JSON object",
        10: "line is not valid JSON (Expecting property name enclosed in double quotes)",
    }


def test_csv_columns_are_options_and_empty_cells_are_defaults(tmp_path: Path) -> None:
    path = tmp_path / "urls.csv"
    path.write_text(
        "url,width,full_page,clip,block,fail_on_status,css\n"
        "http://a.example/,,,,,,\n"
        'http://b.example/,300,false,"0,0,100,50","font,ads",400-599,"body {\n color: red }"\n'
        "# http://commented.example/,,,,,,\n"
        "\n"
        "http://c.example/,-3,,,,,\n"
        "http://d.example/,,maybe,,,,\n"
        ",100,,,,,\n"
        "http://e.example/,1,2,3,4,5,6,7\n"
    )
    found = items(path)
    shots = {i.line: i for i in found if isinstance(i, Shot)}
    errors = {i.line: i.error for i in found if isinstance(i, Result)}
    assert shots[2].options == DEFAULTS
    assert shots[3].options == DEFAULTS.replace(
        width=300,
        clip=(0, 0, 100, 50),
        block=("ads", "font"),
        fail_on_status=((400, 599),),
        css="body {\n color: red }",
    )
    # the row spanning two lines is line 3; the next row is numbered by the line it starts on
    assert errors == {
        7: "width must be between 1 and 8192, not -3",
        8: "full_page must be true or false, not 'maybe'",
        9: "the row has no url",
        10: "the row has 8 cells, the header 7",
    }


def test_csv_with_full_page_and_clip_names_the_conflict(tmp_path: Path) -> None:
    path = tmp_path / "urls.csv"
    path.write_text('url,full_page,clip\nhttp://b.example/,true,"0,0,100,50"\n')
    (row,) = items(path)
    assert isinstance(row, Result) and row.error == "full_page cannot be used with clip"


def test_csv_without_url_column_is_an_error_per_row(tmp_path: Path) -> None:
    path = tmp_path / "urls.csv"
    path.write_text("address,width\nhttp://a.example/,100\nhttp://b.example/,200\n")
    found = items(path)
    assert [(r.line, r.error) for r in found if isinstance(r, Result)] == [
        (2, "the CSV header has no 'url' column"),
        (3, "the CSV header has no 'url' column"),
    ]


def test_options_survive_a_task_message(tmp_path: Path) -> None:
    path = tmp_path / "urls.jsonl"
    row = {
        "url": "http://a.example/",
        "clip": [1, 2, 3, 4],
        "headers": {"X-A": "1"},
        "cookies": {"a": "b"},
        "block": ["ads", "*.mp4"],
        "fail_on_status": ["404", "500-599"],
        "dark_mode": True,
        "timezone": "Europe/Paris",
        "scale": 2,
    }
    path.write_text(json.dumps(row) + "\n")
    (shot,) = items(path)
    assert isinstance(shot, Shot)
    message = json.loads(json.dumps(shot.to_message()))
    again = Shot.from_message(message)
    assert again.options == shot.options and hash(again.options) == hash(shot.options)
    assert again.queued_at == shot.queued_at
    assert storage_key(again.url, again.options) == storage_key(shot.url, shot.options)


def test_a_batch_parses_its_shared_options_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = CaptureOptions.from_dict

    def counting(raw: dict[str, object]) -> CaptureOptions:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(CaptureOptions, "from_dict", staticmethod(counting))
    shared = {"width": 640, "height": 480}
    other = {"width": 320, "height": 200}
    messages = [{"line": n, "url": f"http://a.example/{n}", "options": shared} for n in (1, 2)]
    messages += [
        {"line": 3, "url": "http://a.example/3", "options": other},
        {"line": 4, "url": "http://a.example/4"},
        {"line": 5, "url": "http://a.example/5", "options": dict(shared)},  # equal, not shared
    ]
    parsed: dict[int, tuple[object, CaptureOptions]] = {}
    shots = [Shot.from_message(m, parsed) for m in messages]
    assert [(s.options.width, s.options.height) for s in shots] == [
        (640, 480), (640, 480), (320, 200), (1280, 800), (640, 480)
    ]
    assert len(calls) == 4  # the shared dict once; the others each once
    bad = {"width": "wide"}
    for line in (6, 7):  # a bad options dict fails every shot that carries it
        with pytest.raises(InvalidOption, match="width must be a whole number"):
            Shot.from_message({"line": line, "url": "http://a.example/", "options": bad}, parsed)


def test_every_image_option_changes_the_key_and_the_others_do_not() -> None:
    url = "http://a.example/"
    base = storage_key(url, CaptureOptions())
    changes = {
        "scale": 2, "selector": "#x", "clip": (0, 0, 5, 5), "hide_selectors": ("#a",),
        "css": "a{}", "js": "1", "wait_until": "networkidle", "wait_for": "#x",
        "wait_for_js": "true", "scroll": True, "user_agent": "x", "headers": (("X-A", "1"),),
        "cookies": (("a", "1"),), "dark_mode": True, "reduced_motion": True,
        "timezone": "UTC", "locale": "fr", "block": ("ads",),
    }
    keys = {storage_key(url, CaptureOptions(**{name: value})) for name, value in changes.items()}
    assert base not in keys and len(keys) == len(changes)
    assert storage_key(url, CaptureOptions(fail_on_status=((400, 599),), timeout=5)) == base


def test_memory_stays_flat_with_file_length(tmp_path: Path) -> None:
    path = tmp_path / "urls.jsonl"
    with path.open("w") as handle:
        for n in range(30_000):
            handle.write(json.dumps({"url": f"http://h{n}.example/", "width": 100 + n % 50}) + "\n")
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_shots(path, CaptureOptions()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert peak < 2_000_000  # bytes: a few rows at a time, never the file


def _image(link: str) -> Image.Image:
    return Image.open(io.BytesIO(Path(unquote(urlsplit(link).path)).read_bytes()))


def test_dispatcher_run_with_a_csv_of_per_url_options(tmp_path: Path, monkeypatch) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENSHOT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    urls = tmp_path / "urls.csv"
    urls.write_text(
        "url,width,height,format,selector\n"
        "http://a.example/,,,,\n"
        "http://b.example/,320,100,png,\n"
        "http://c.example/,,,,#main\n"
        "http://d.example/,,,gif,\n"
    )
    out = tmp_path / "out"
    argv = [str(urls), "--out", str(out), "--engine", "stub", "--quiet", "--width", "200",
            "--height", "150", "--format", "webp"]
    assert dispatcher.run(argv) == 0
    rows = {r["line"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert _image(rows[2]["link"]).size == (200, 150) and rows[2]["format"] == "webp"
    assert _image(rows[3]["link"]).size == (320, 100) and rows[3]["format"] == "png"
    assert rows[4]["error"] == "option selector is not supported by engine stub"
    assert rows[5]["error"] == "format must be one of png, jpeg, webp, not 'gif'"
    assert rows[2]["queued_ms"] is not None and rows[2]["upload_ms"] is not None
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["line", "url", "status", "storage_uri", "link", "error", "width",
                          "height"]
    timings = header.index("wait_ms")
    assert header[timings:timings + 3] == ["wait_ms", "capture_ms", "upload_ms"]


def test_bad_default_flag_is_a_usage_error(tmp_path: Path, capsys) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://a.example/\n")
    argv = [str(urls), "--out", str(tmp_path / "out"), "--engine", "stub", "--block", "fontz"]
    assert dispatcher.run(argv) == 2
    assert "block: 'fontz' is not a resource type" in capsys.readouterr().err


def test_header_and_cookie_flags(tmp_path: Path) -> None:
    args = dispatcher.build_parser().parse_args(
        ["u.txt", "--header", "X-A: 1; 2", "--cookie", "a=b", "--cookie", "c=d=e",
         "--block", "ads", "--block", "font", "--fail-on-status", "5xx", "--dark-mode",
         "--clip", "0,0,10,10", "--scale", "2"]
    )
    options = dispatcher.options_from_args(args)
    assert options.headers == (("X-A", "1; 2"),)
    assert options.cookies == (("a", "b"), ("c", "d=e"))
    assert options.block == ("ads", "font") and options.fail_on_status == ((500, 599),)
    assert options.dark_mode and options.clip == (0, 0, 10, 10) and options.scale == 2.0


def test_every_declared_option_is_a_csv_column_and_a_jsonl_key(tmp_path):
    from screenshots.core.options import option_names

    cells = {
        "width": "1024", "height": "768", "full_page": "false", "scale": "2", "format": "jpeg",
        "quality": "70", "selector": "main", "clip": "", "hide_selectors": ".cookie,.ad",
        "css": "a{}", "js": "1", "wait_until": "domcontentloaded", "wait_for": "main img",
        "wait_for_js": "window.done", "delay_ms": "250", "scroll": "yes", "user_agent": "UA/2",
        "headers": "X-Team: web", "cookies": '{"s": "1"}', "dark_mode": "true",
        "reduced_motion": "true", "timezone": "Asia/Tokyo", "locale": "ja-JP",
        "block": "ads,media", "isolation": "strict", "fail_on_status": "400-499,5xx",
        "timeout": "60", "ignore": "0,0,100,50", "changed_above": "2.5",
    }
    assert tuple(cells) == option_names()
    csv_file = tmp_path / "urls.csv"
    quoted = ",".join('"' + value.replace('"', '""') + '"' for value in cells.values())
    csv_file.write_text(f"url,{','.join(cells)}\nhttps://example.org/page,{quoted}\n")
    jsonl_file = tmp_path / "urls.jsonl"
    row = {"url": "https://example.org/page", **{k: v for k, v in cells.items() if v}}
    jsonl_file.write_text(json.dumps(row) + "\n")
    (from_csv,) = items(csv_file)
    (from_jsonl,) = items(jsonl_file)
    assert isinstance(from_csv, Shot) and isinstance(from_jsonl, Shot)
    assert from_csv.options == from_jsonl.options
    # the key pinned by tests/test_keys_golden.py for these values
    assert storage_key(from_csv.url, from_csv.options) == (
        "screenshots/4e/4e90825a7ca4d3e0f0ea34dbc4e794e21742e282ff6ddcb9b2d755643fba07eb.jpg"
    )
