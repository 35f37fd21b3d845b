"""The dispatcher in the embedded mode: no broker, local storage, in-process captures."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from PIL import Image

from engines.chromium import our_browser_processes
from screenshots.batch import dispatcher
from screenshots.batch.progress import Progress
from support.site import Site


@pytest.fixture(autouse=True)
def embedded_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENSHOT_BUCKET"):
        monkeypatch.delenv(name, raising=False)


def rows_of(out: Path) -> list[dict]:
    return [json.loads(t) for t in (out / "results.jsonl").read_text().splitlines()]


def image_at(link: str) -> Image.Image:
    assert link.startswith("file://")
    return Image.open(io.BytesIO(Path(unquote(urlsplit(link).path)).read_bytes()))


def test_stub_run_writes_images_manifest_csv_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "http://a.example/\n# comment\n\nhttps://b.example/page\nnot-a-url\n"
        "javascript:alert(1)\nhttp://gone.invalid/\n"
    )
    out = tmp_path / "out"
    status = dispatcher.run([str(urls), "--out", str(out), "--engine", "stub", "--width", "320",
                             "--height", "200", "--format", "jpeg"])
    assert status == 0
    rows = rows_of(out)
    assert sorted(r["line"] for r in rows) == [1, 4, 5, 6, 7]
    by_line = {r["line"]: r for r in rows}
    for line in (1, 4):
        row = by_line[line]
        assert row["status"] == "ok"
        image = image_at(row["link"])
        assert image.size == (320, 200) and image.format == "JPEG"
        assert Path(unquote(urlsplit(row["link"]).path)).is_relative_to(out.resolve())
    assert by_line[5]["status"] == "error" and "no scheme" in by_line[5]["error"]
    assert "unsupported scheme 'javascript'" in by_line[6]["error"]
    assert "ERR_NAME_NOT_RESOLVED" in by_line[7]["error"]
    assert len((out / "results.csv").read_text().splitlines()) == 6
    report = (out / "report.html").read_text()
    block = report.split('<script id="report-data" type="application/json">', 1)[1]
    data = json.loads(block.split("</script>", 1)[0])
    assert sorted(row["line"] for row in data["rows"]) == [1, 4, 5, 6, 7]
    assert "5 URLs: 2 ok, 3 failed" in report
    err = capsys.readouterr().err
    assert "5 URLs: 2 ok, 3 failed" in err


def test_rerun_only_retries_what_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://a.example/\nhttp://b.invalid/\n")
    out = tmp_path / "out"
    assert dispatcher.run([str(urls), "--out", str(out), "--engine", "stub"]) == 0
    first = {r["line"]: r for r in rows_of(out)}
    assert dispatcher.run([str(urls), "--out", str(out), "--engine", "stub"]) == 0
    second = {r["line"]: r for r in rows_of(out)}
    assert len(rows_of(out)) == 2
    assert second[1]["finished_at"] == first[1]["finished_at"]  # not shot again
    assert second[2]["status"] == "error"
    assert "1 already done by an earlier run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, words",
    [
        (["missing.txt"], "cannot read missing.txt"),
        (["URLS", "--format", "gif"], "format must be one of"),
        (["URLS", "--engine", "nope"], "unknown engine 'nope'"),
        (["URLS", "--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://a.example/\n")
    argv = [str(urls) if a == "URLS" else a for a in args] + ["--out", str(tmp_path / "o")]
    assert dispatcher.run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]


def test_bad_settings_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENSHOT_LINK_EXPIRY", "soon")
    urls = tmp_path / "urls.txt"
    urls.write_text("http://a.example/\n")
    assert dispatcher.run([str(urls), "--out", str(tmp_path / "o")]) == 2
    assert "SCREENSHOT_LINK_EXPIRY must be a whole number" in capsys.readouterr().err


def test_progress_line_shows_done_total_rate_eta_failures() -> None:
    now = [0.0]
    progress = Progress(total=40, enabled=False, clock=lambda: now[0])
    now[0] = 10.0
    for ok in [True] * 9 + [False]:
        progress.update(ok)
    line = progress.line()
    assert "10/40" in line and "1.0/s" in line and "ETA 00:30" in line and "failed 1" in line


@pytest.mark.integration
def test_selenium_embedded_run_over_the_test_site(tmp_path: Path, site: Site) -> None:
    urls = tmp_path / "urls.txt"
    pages = [site.url(f"/page/{n}") for n in range(1, 7)] + [site.url("/status/404")]
    refused_url = f"http://127.0.0.1:{closed_port()}/"
    urls.write_text("\n".join(pages) + f"\n{refused_url}\n")
    out = tmp_path / "out"
    assert dispatcher.run([str(urls), "--out", str(out), "--concurrency", "2", "--quiet"]) == 0
    rows = {r["url"]: r for r in rows_of(out)}
    assert len(rows) == 8
    for page in pages[:-1]:
        assert rows[page]["status"] == "ok" and rows[page]["http_status"] == 200
        assert image_at(rows[page]["link"]).size == (1280, 800)
    assert rows[pages[-1]]["status"] == "ok" and rows[pages[-1]]["http_status"] == 404
    refused = rows[refused_url]
    assert refused["status"] == "error" and "ERR_CONNECTION_REFUSED" in refused["error"]
    assert our_browser_processes(owner_pid=os.getpid()) == [], "a browser outlived the run"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_capture_option_is_a_flag_read_like_a_file_cell(tmp_path: Path) -> None:
    from screenshots.core.options import CaptureOptions, option_names

    (tmp_path / "page.css").write_text("body { color: red }")
    cells = {
        "width": "800", "height": "600", "scale": "2", "format": "jpeg", "quality": "70",
        "selector": "main", "hide_selectors": ".a,.b", "css": "body { color: red }",
        "js": "1", "wait_until": "networkidle", "wait_for": "img", "wait_for_js": "ready",
        "delay_ms": "5", "scroll": "true", "user_agent": "UA/1", "headers": "X-A: 1; X-B: 2",
        "cookies": "s=1", "dark_mode": "true", "reduced_motion": "true",
        "timezone": "Europe/Paris", "locale": "fr-FR", "block": "ads,font",
        "isolation": "strict", "fail_on_status": "400-599", "timeout": "12",
        "ignore": "0,0,200,50;10,400,300,20", "changed_above": "2.5",
    }
    argv = ["urls.txt", "--width", "800", "--height", "600", "--scale", "2", "--format", "jpeg",
            "--quality", "70", "--selector", "main", "--hide-selector", ".a",
            "--hide-selector", ".b", "--css", f"@{tmp_path / 'page.css'}", "--js", "1",
            "--wait-until", "networkidle", "--wait-for", "img", "--wait-for-js", "ready",
            "--delay-ms", "5", "--scroll", "--user-agent", "UA/1", "--header", "X-A: 1",
            "--header", "X-B: 2", "--cookie", "s=1", "--dark-mode", "--reduced-motion",
            "--timezone", "Europe/Paris", "--locale", "fr-FR", "--block", "ads",
            "--block", "font", "--isolation", "strict", "--fail-on-status", "400-599",
            "--timeout", "12", "--ignore", "0,0,200,50", "--ignore", "10,400,300,20",
            "--changed-above", "2.5"]
    options = dispatcher.options_from_args(dispatcher.build_parser().parse_args(argv))
    assert options == CaptureOptions.from_dict(cells)
    assert set(cells) | {"full_page", "clip"} == set(option_names())
    full = dispatcher.build_parser().parse_args(["urls.txt", "--full-page"])
    assert dispatcher.options_from_args(full).full_page is True
    clip = dispatcher.build_parser().parse_args(["urls.txt", "--clip", "0,0,300,200"])
    assert dispatcher.options_from_args(clip).clip == (0, 0, 300, 200)
    defaults = dispatcher.build_parser().parse_args(["urls.txt"])
    assert dispatcher.options_from_args(defaults) == CaptureOptions()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--wait-until", "idle"], "wait_until must be one of load, domcontentloaded"),
        (["--header", "X-A"], "headers: 'X-A' has no ':'"),
        (["--fail-on-status", "700"], "fail_on_status: '700' must be within 100-599"),
        (["--width", "0"], "width must be between 1 and 8192, not 0"),
    ],
)
def test_a_bad_capture_flag_is_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], words: str
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://a.example/\n")
    assert dispatcher.run([str(urls), "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


ROOT = Path(__file__).resolve().parent.parent


def run_dispatcher(*args: str) -> subprocess.CompletedProcess[str]:
    """``python dispatcher.py ARGS`` as a user runs it, in the embedded mode."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SCREENSHOT_BUCKET")}
    return subprocess.run(
        [sys.executable, str(ROOT / "dispatcher.py"), *args], capture_output=True, text=True,
        env=env, cwd=ROOT, timeout=120, check=False,
    )


def test_a_csv_file_that_cannot_be_parsed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # bare CR line ends (an old spreadsheet's export): the csv module cannot read it; the same
    # file uploaded to POST /v1/jobs was a 500 (tests/test_api_untrusted_input.py)
    urls = tmp_path / "urls.csv"
    urls.write_bytes(b"url,width\rhttps://a.example/,100\rhttps://b.example/,200\r")
    done = run_dispatcher(str(urls), "--out", str(tmp_path / "out"), "--engine", "stub")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {urls}: line 1: not readable as CSV")


def test_records_that_are_not_text_are_error_rows_not_a_traceback(tmp_path: Path) -> None:
    urls = tmp_path / "urls.jsonl"
    urls.write_text(
        '{"url": "https://a.example/\\ud800"}\n'  # a lone surrogate in the URL
        '{"url": "https://b.example/", "user_agent": "x\\udc00"}\n'  # ... in an option
        '{"url": "https://c.example/", "x": ' + "[" * 5000 + "]" * 5000 + "}\n"  # too deep
        '{"url": "https://d.example/"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    done = run_dispatcher(str(urls), "--out", str(out), "--engine", "stub", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    by_line = {row["line"]: row for row in rows_of(out)}
    assert sorted(by_line) == [1, 2, 3, 4]
    assert "lone surrogate" in by_line[1]["error"] and "\\ud800" in by_line[1]["url"]
    assert "lone surrogate" in by_line[2]["error"]
    assert by_line[3]["error"] == "line is nested too deeply"
    assert by_line[4]["status"] == "ok"
    assert "4 URLs: 1 ok, 3 failed" in (out / "report.html").read_text()


def test_dispatcher_publishes_without_importing_the_capture_pipeline_or_the_report() -> None:
    """What the dispatcher imports before its first URL is published is time every worker waits:
    not the workers' capture pipeline (``tasks.capture``: numpy, Pillow, imagehash, the engines'
    drivers) nor the report's numpy and scipy, which come later, in the background."""
    script = (
        "import sys, screenshots.batch.dispatcher, screenshots.delivery.distributed, tasks;"
        "heavy = {'tasks.capture', 'screenshots.pipeline.screenshot', 'numpy', 'scipy', 'PIL',"
        " 'screenshots.batch.report', 'screenshots.batch.compare'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_late_imports_run_on_their_own_thread_once_and_only_when_given_modules() -> None:
    """An embedded run gives no modules (its capture threads import scipy themselves): no thread
    starts; a distributed run's modules are imported by one thread, started once."""
    nothing = dispatcher.LateImports(())
    nothing.start()
    nothing.wait()
    assert nothing._thread.ident is None

    late = dispatcher.LateImports(("screenshots.batch.report",))
    late.start()
    first = late._thread.ident
    late.start()
    late.wait()
    assert first is not None and late._thread.ident == first
    assert "screenshots.batch.report" in sys.modules


def test_dispatcher_process_starts_no_blas_threads() -> None:
    """numpy's OpenBLAS would start a spinning thread per core in every dispatcher run (0.2 s
    of CPU on 2 cores, for nothing: see ``screenshots/__init__.py``)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: OpenBLAS starts no extra thread anyway")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    script = (  # the report's modules: the dispatcher imports them once its run is under way
        "import os, sys, screenshots.batch.dispatcher, screenshots.batch.report;"
        "assert 'numpy' in sys.modules;"
        "print(len(os.listdir('/proc/self/task')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the main thread alone
