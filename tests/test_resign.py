"""``screenshots-resign OUT/``: an old run's expired links made to work again, nothing shot.

Run as a user runs it: the dispatcher and the command are the installed console scripts, the
storage a real SeaweedFS, the links downloaded over HTTP.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from support.seaweedfs import S3Server
from support.workers import REPO, script, service_env


def rows_of(out: Path) -> list[dict[str, object]]:
    return [json.loads(text) for text in (out / "results.jsonl").read_text().splitlines()]


def run_script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(name), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def shoot(urls: list[str], out: Path, env: dict[str, str]) -> None:
    url_file = out.parent / f"{out.name}-urls.txt"
    url_file.write_text("".join(url + "\n" for url in urls))
    done = run_script(
        "screenshots", str(url_file), "--out", str(out), "--engine", "stub", "--quiet", env=env
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.integration
def test_expired_links_are_re_signed_and_download_the_same_bytes(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    client = server.client()
    out = tmp_path / "run"
    # Given a run whose links expire after one second
    shoot(
        [f"http://page{number}.example/" for number in range(5)],
        out,
        service_env(**server.env(bucket), SCREENSHOT_LINK_EXPIRY="1"),
    )
    rows = rows_of(out)
    assert [row["status"] for row in rows] == ["ok"] * 5
    stored = {
        str(row["key"]): client.get_object(Bucket=bucket, Key=str(row["key"]))["Body"].read()
        for row in rows
    }
    # ... and whose links have expired by now
    deadline = time.monotonic() + 30
    while any(httpx2.get(str(row["link"]), timeout=10).status_code == 200 for row in rows):
        assert time.monotonic() < deadline, "the one-second links never expired"
        time.sleep(0.2)
    # ... and one of whose images was deleted since
    gone = rows[2]
    client.delete_object(Bucket=bucket, Key=str(gone["key"]))

    # When the run is re-signed with the default expiry
    done = run_script("screenshots-resign", str(out), env=service_env(**server.env(bucket)))

    # Then it says what it did in one line (and exits 1: an image is gone)
    assert done.returncode == 1, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and line.startswith(f"re-signed 4 links in {out} (valid for 7 days)")
    assert "1 images are gone from storage" in line
    # ... every remaining link downloads the same bytes as stored
    after = rows_of(out)
    assert [row["line"] for row in after] == [row["line"] for row in rows]
    for row in after:
        if row["line"] == gone["line"]:
            continue
        assert row["status"] == "ok" and row["link"] != rows[0]["link"]
        answer = httpx2.get(str(row["link"]), timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.content == stored[str(row["key"])]
    # ... the gone image's row is an error that says so (a rerun will shoot it again)
    lost = next(row for row in after if row["line"] == gone["line"])
    assert lost["status"] == "error" and lost["link"] is None
    assert "no longer in storage" in str(lost["error"]) and str(gone["key"]) in str(lost["error"])
    # ... and the CSV and the report carry the new links
    with (out / "results.csv").open(newline="") as handle:
        csv_links = {int(r["line"]): r["link"] for r in csv.DictReader(handle)}
    report = (out / "report.html").read_text()
    block = report.split('<script id="report-data" type="application/json">', 1)[1]
    shown = {r["line"]: r for r in json.loads(block.split("</script>", 1)[0])["rows"]}
    for row in after:
        assert csv_links[int(str(row["line"]))] == (row["link"] or "")
        if row["link"]:  # the page's row holds the fresh link (the full image's address)
            assert row["link"] in shown[row["line"]].values()
    assert not list(out.glob("*.tmp"))


def test_a_local_run_is_left_as_it_is(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = service_env()
    shoot(["http://a.example/", "http://b.example/"], out, env)
    before = {name: (out / name).read_bytes() for name in ("results.jsonl", "results.csv")}

    done = run_script("screenshots-resign", str(out), env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"re-signed 0 links in {out} (valid for 7 days); 2 local files left as they are "
        "(they need no signing); nothing rewritten"
    )
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_directory_without_a_run_is_one_clear_error(tmp_path: Path) -> None:
    done = run_script("screenshots-resign", str(tmp_path), env=service_env())
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: {tmp_path / 'results.jsonl'} not found: give the --out directory of a run"
    )
