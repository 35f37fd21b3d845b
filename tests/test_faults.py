"""Fault injection: real processes, a fault in the middle of a run, and nothing lost.

Each test runs the dispatcher and Celery workers as separate processes against the real
RabbitMQ, Redis, SeaweedFS (and Chromium where it matters), injects one fault while URLs are
in flight, and checks what a user would check afterwards:

- every input URL has exactly one row in the manifest;
- every ``ok`` row's object is in the bucket;
- no object in the bucket is left without an ``ok`` row (nothing orphaned).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest

from screenshots.core.keys import thumbnail_key
from screenshots.dev.devservers.seaweedfs import start_seaweedfs, stop_seaweedfs
from support.poison_engine import POISON_HOST
from support.procfile import procfile
from support.redis_server import start_redis
from support.services import ALARM_DISK_LIMIT, rabbitmqctl
from support.tabs import BROWSER_BINARIES
from support.workers import REPO, Worker, script, service_env, start_worker, wait_until_ready

pytestmark = pytest.mark.integration

#: Seconds a whole dispatcher run may take in these tests.
RUN_TIMEOUT = 240


_RUNS: list[Run] = []


@pytest.fixture(autouse=True)
def _no_dispatcher_left_behind():
    yield
    while _RUNS:
        run = _RUNS.pop()
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(10)


class Run:
    """A dispatcher process writing into ``out``; killed after the test if still running."""

    def __init__(self, env: dict[str, str], urls: Path, out: Path, *args: str) -> None:
        self.out = out
        self.log = out.parent / f"{out.name}-dispatcher.log"
        with self.log.open("wb") as handle:  # the dispatcher writes to its own copy
            self.process = subprocess.Popen(
                [sys.executable, "dispatcher.py", str(urls), "--out", str(out), "--quiet", *args],
                cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
            )
        _RUNS.append(self)

    def rows(self) -> list[dict]:
        path = self.out / "results.jsonl"
        if not path.exists():
            return []
        rows = []
        for text in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                rows.append(json.loads(text))
        return rows

    def wait_for_rows(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.rows()) < count:
            if self.process.poll() is not None:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(self.rows())} rows after {timeout}s:\n{self.output()}")
            time.sleep(0.1)

    def finish(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"dispatcher did not finish within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("\n".join(urls) + "\n")
    return path


def assert_complete(run: Run, urls: list[str], s3, bucket: str, all_ok: bool = True) -> list[dict]:
    rows = run.rows()
    lines = Counter(r["line"] for r in rows)
    assert sorted(lines) == list(range(1, len(urls) + 1)), "a URL has no row"
    assert set(lines.values()) == {1}, "a URL has more than one row"
    assert [r["url"] for r in sorted(rows, key=lambda r: r["line"])] == urls
    bad = [r for r in rows if r["status"] != "ok"]
    if all_ok:
        assert not bad, f"{len(bad)} error rows, e.g. {bad[:2]}"
    ok_keys = {r["key"] for r in rows if r["status"] == "ok"}
    stored = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stored.update(item["Key"] for item in page.get("Contents", []))
    assert ok_keys <= stored, f"{len(ok_keys - stored)} ok rows without their object"
    thumbnails = {thumbnail_key(key) for key in ok_keys}
    versions = {r["version_key"] for r in rows if r["status"] == "ok" and r.get("version_key")}
    assert thumbnails | versions <= stored, "an ok row without its thumbnail or version"
    # Orphans among the deterministic keys (images and their thumbnails): nothing stored that
    # no row names. Versions are left out: a worker killed mid-upload may leave one behind, as
    # a redelivered capture adds one (the history of the URL), and neither is lost work.
    depth = min(key.count("/") for key in stored) if stored else 0
    deterministic = {key for key in stored if key.count("/") == depth}
    orphaned = deterministic - ok_keys - thumbnails
    assert not orphaned, f"{len(orphaned)} objects orphaned, e.g. {sorted(orphaned)[:3]}"
    return rows


@pytest.fixture
def cluster(rabbitmq, redis_db, s3_bucket, tmp_path):
    """Environment for one fault test: a fresh queue with its policy, a bucket, a Redis db."""
    server, bucket = s3_bucket
    env = service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis_db.url,
        SCREENSHOT_QUEUE=f"faults-{uuid.uuid4().hex[:8]}",
        SCREENSHOT_S3_READ_TIMEOUT="5",
        **server.env(bucket),
    )
    setup = subprocess.run(
        [script("screenshots-broker"), "setup"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    workers: list[Worker] = []
    yield env, server, bucket, workers
    for worker in workers:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(10)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started (the worker and its Chromium)."""
    parent = psutil.Process(pid)
    family = parent.children(recursive=True) + [parent]
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(family, timeout=10)


@pytest.mark.parametrize("engine", ["selenium", "playwright"])
def test_a_worker_killed_with_its_chromium_loses_nothing(cluster, site, tmp_path, engine):
    env, server, bucket, workers = cluster
    urls = [site.url(f"/page/{n}") for n in range(1, 41)]
    workers += [start_worker(env, tmp_path, f"k{i}", concurrency=1) for i in (1, 2)]
    run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out", "--engine", engine)
    run.wait_for_rows(10)
    kill_tree(workers[0].process.pid)
    workers.append(start_worker(env, tmp_path, "k1-again", concurrency=1))
    assert run.finish() == 0, run.output()
    rows = assert_complete(run, urls, server.client(), bucket)
    assert {r["engine"] for r in rows} == {engine}


def test_broker_connections_closed_twice_and_a_broker_restart(cluster, rabbitmq, tmp_path):
    env, server, bucket, workers = cluster
    env = dict(env, SCREENSHOT_STUB_LATENCY_MS="40")
    urls = [f"http://broker-fault-{n}.example/" for n in range(400)]
    workers += [start_worker(env, tmp_path, f"b{i}", concurrency=2) for i in (1, 2)]
    run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out",
              "--engine", "stub", "--max-in-flight", "60")
    for target in (60, 140):
        run.wait_for_rows(target)
        rabbitmqctl("close_all_connections", "-p", rabbitmq.vhost, "fault test")
    run.wait_for_rows(220)
    rabbitmqctl("stop_app")
    time.sleep(2)
    rabbitmqctl("start_app")
    assert run.finish() == 0, run.output()
    assert_complete(run, urls, server.client(), bucket)


def test_s3_frozen_for_20_seconds_then_down(rabbitmq, redis_db, tmp_path):
    weed = start_seaweedfs(tmp_path / "s3")
    bucket = "frozen"
    weed.client().create_bucket(Bucket=bucket)
    env = service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis_db.url,
        SCREENSHOT_QUEUE=f"faults-{uuid.uuid4().hex[:8]}",
        SCREENSHOT_S3_READ_TIMEOUT="5",
        SCREENSHOT_STUB_LATENCY_MS="20",
        **weed.env(bucket),
    )
    urls = [f"http://s3-fault-{n}.example/" for n in range(300)]
    worker = start_worker(env, tmp_path, "s3", concurrency=2)
    try:
        run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out",
                  "--engine", "stub", "--max-in-flight", "40")
        run.wait_for_rows(50)
        os.killpg(weed.process.pid, signal.SIGSTOP)  # connections hang rather than fail
        time.sleep(20)
        os.killpg(weed.process.pid, signal.SIGCONT)
        run.wait_for_rows(180)
        ports = weed.ports
        stop_seaweedfs(weed, remove_data=False)  # connections are refused
        time.sleep(8)
        weed = start_seaweedfs(tmp_path / "s3", ports=ports)
        assert run.finish() == 0, run.output()
        assert_complete(run, urls, weed.client(), bucket)
    finally:
        worker.stop(30)
        stop_seaweedfs(weed)


def test_redis_restart_that_loses_everything(rabbitmq, s3_bucket, tmp_path):
    server, bucket = s3_bucket
    redis = start_redis(tmp_path)
    env = service_env(
        CELERY_BROKER_URL=rabbitmq.url,
        CELERY_RESULT_BACKEND=redis.url,
        SCREENSHOT_QUEUE=f"faults-{uuid.uuid4().hex[:8]}",
        SCREENSHOT_STUB_LATENCY_MS="40",
        **server.env(bucket),
    )
    urls = [f"http://redis-fault-{n}.example/" for n in range(300)]
    worker = start_worker(env, tmp_path, "r", concurrency=2)
    try:
        run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out",
                  "--engine", "stub", "--max-in-flight", "60")
        run.wait_for_rows(80)
        redis.restart_empty(down_for=2)
        assert run.finish() == 0, run.output()
        assert "Redis lost its data; publishing" in run.output()
        assert_complete(run, urls, server.client(), bucket)
    finally:
        worker.stop(30)
        redis.stop()


def live_browsers(parent: psutil.Process) -> list[psutil.Process]:
    """The Chromium browser processes below ``parent`` that are alive: a browser killed a moment
    ago stays a zombie until its parent reaps it, and one may exit while we look."""
    found = []
    for process in parent.children(recursive=True):
        try:
            # exe, not name: the kernel cuts a name to 15 characters ("chromium-headle").
            if os.path.basename(process.exe()) in BROWSER_BINARIES and "--type=" not in " ".join(
                process.cmdline()
            ):
                found.append(process)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


@pytest.mark.parametrize("engine", ["selenium", "playwright"])
def test_chromium_killed_under_running_captures(cluster, site, tmp_path, engine):
    env, server, bucket, workers = cluster
    urls = [site.url(f"/page/{n}") for n in range(1, 31)]
    workers.append(start_worker(env, tmp_path, "c", concurrency=1))
    urls_file = write_urls(tmp_path / "urls.txt", urls)
    run = Run(env, urls_file, tmp_path / "out", "--engine", engine)
    killed = 0
    deadline = time.monotonic() + 60
    while killed < 3 and time.monotonic() < deadline and run.process.poll() is None:
        run.wait_for_rows(5 + 7 * killed)
        browsers = live_browsers(psutil.Process(workers[0].process.pid))
        for browser in browsers:
            browser.kill()
        killed += bool(browsers)
    assert killed >= 1, "no Chromium was found to kill"
    assert run.finish() == 0, run.output()
    rows = assert_complete(run, urls, server.client(), bucket)
    assert {r["engine"] for r in rows} == {engine}
    assert any(r["attempts"] > 1 for r in rows), "no capture needed a second attempt"


#: The process that drives each engine's browser, a child of the pool process.
DRIVERS = {"selenium": "chromedriver", "playwright": "node"}


@pytest.mark.parametrize("engine", ["selenium", "playwright"])
def test_browsers_of_a_killed_pool_process_are_killed_at_shutdown(cluster, site, tmp_path, engine):
    """A pool process killed with SIGKILL cannot close its browser. Its driver (ChromeDriver,
    Playwright's Node.js) dies with it; Chromium may not. The worker's warm shutdown kills
    such orphans and deletes their profiles: no browser and no profile outlives the worker."""
    env, server, bucket, workers = cluster
    workers.append(worker := start_worker(env, tmp_path, "o", concurrency=1))
    urls = [site.url(f"/page/{n}") for n in (1, 2)]
    run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out", "--engine", engine)
    assert run.finish() == 0, run.output()
    (child,) = psutil.Process(worker.process.pid).children()
    browsers = live_browsers(child)
    assert len(browsers) == 1, "the pool process should have one browser"
    browser = browsers[0]
    (profile,) = [
        Path(arg.split("=", 1)[1]) for arg in browser.cmdline()
        if arg.startswith("--user-data-dir=")
    ]
    assert profile.is_dir()
    drivers = [p for p in child.children() if DRIVERS[engine] in p.name()]
    assert drivers, f"no {DRIVERS[engine]} below the pool process"
    child.kill()
    gone, alive = psutil.wait_procs(drivers, timeout=10)
    assert not alive, f"{DRIVERS[engine]} outlived its pool process"
    orphaned = psutil.wait_procs([browser], timeout=1)[1]
    if engine == "selenium":  # ChromeDriver leaves its Chromium: the case the reaper is for
        assert orphaned, "the browser died with its pool process: nothing left to test"
    assert worker.stop(60) == 0, worker.log()[-2000:]
    gone, alive = psutil.wait_procs([browser], timeout=5)
    assert not alive, f"browser {browser.pid} outlived the worker"
    assert not profile.exists(), f"the dead pool process's profile {profile} is left on disk"
    if orphaned:
        assert "browser processes left by dead pool processes" in worker.log()


@pytest.mark.parametrize("engine", ["stub", "selenium", "playwright"])
def test_sigterm_is_a_warm_shutdown(cluster, site, tmp_path, engine):
    """SIGTERM mid-run: the worker finishes its running captures, closes its browsers and
    exits 0; nothing is redelivered as lost, and no browser outlives it."""
    env, server, bucket, workers = cluster
    if engine == "stub":
        env = dict(env, SCREENSHOT_STUB_LATENCY_MS="300")
        urls = [f"http://sigterm-{n}.example/" for n in range(60)]
        concurrency = 2
    else:  # each page answers after a second: captures are in flight when the signal comes
        urls = [site.url(f"/slow?seconds=1&n={n}") for n in range(40)]
        concurrency = 1
    workers += [start_worker(env, tmp_path, f"t{i}", concurrency=concurrency) for i in (1, 2)]
    run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out", "--engine", engine)
    run.wait_for_rows(10)
    browsers = [
        browser for child in psutil.Process(workers[0].process.pid).children()
        for browser in live_browsers(child)
    ]
    if engine != "stub":
        assert browsers, "the worker had no browser running when it was stopped"
    assert workers[0].stop(timeout=60) == 0, workers[0].log()[-2000:]
    log = workers[0].log()
    assert "WorkerLostError" not in log and "Restoring" not in log
    assert "Traceback" not in log, log[-3000:]
    gone, alive = psutil.wait_procs(browsers, timeout=5)
    assert not alive, f"browsers {[b.pid for b in alive]} outlived their worker"
    assert run.finish() == 0, run.output()
    rows = assert_complete(run, urls, server.client(), bucket)
    assert {r["engine"] for r in rows} == {engine}


def test_poison_messages_are_dead_lettered_and_workers_keep_serving(cluster, tmp_path):
    env, server, bucket, workers = cluster
    env = dict(
        env,
        SCREENSHOT_ENGINES="poison=support.poison_engine:PoisonEngine",
        SCREENSHOT_POISON_DELIVERIES="2",
        PYTHONPATH=str(REPO / "tests"),  # the poison engine, a plugin module of the tests
    )
    workers.append(start_worker(env, tmp_path, "p", concurrency=2))
    # A message nobody can decode, and one for a task nobody knows.
    from kombu import Connection, Exchange

    queue = env["SCREENSHOT_QUEUE"]
    with Connection(env["CELERY_BROKER_URL"]) as conn:
        producer = conn.Producer()
        exchange = Exchange(queue, type="topic")
        producer.publish(b"\xff\x00 not json", exchange=exchange, routing_key=queue,
                         content_type="application/json", content_encoding="utf-8",
                         headers={"id": "undecodable", "task": "screenshots.capture"})
        producer.publish(json.dumps([[], {}, {}]), exchange=exchange, routing_key=queue,
                         content_type="application/json", content_encoding="utf-8",
                         headers={"id": "unknown-task", "task": "no.such.task", "lang": "py"})
    urls = [f"http://fine-{n}.example/" for n in range(20)]
    urls.insert(7, f"http://{POISON_HOST}/")
    run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out",
              "--engine", "poison")
    assert run.finish() == 0, run.output()
    rows = assert_complete(run, urls, server.client(), bucket, all_ok=False)
    errors = {r["url"]: r["error"] for r in rows if r["status"] == "error"}
    assert list(errors) == [f"http://{POISON_HOST}/"]
    assert "dead-letter queue" in errors[f"http://{POISON_HOST}/"]

    listed = subprocess.run([script("screenshots-deadletters"), "list", "--json"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {letter["task_id"] for letter in letters} >= {"undecodable", "unknown-task"}
    assert any(f"http://{POISON_HOST}/" in letter["urls"] for letter in letters)
    again = subprocess.run([script("screenshots-deadletters"), "list", "--json"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=60)
    assert len(again.stdout.splitlines()) == len(letters), "list must not remove them"

    for worker in workers:
        worker.stop()
    requeued = subprocess.run([script("screenshots-deadletters"), "requeue"], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)
    assert requeued.returncode == 0 and f"requeued {len(letters)} messages" in requeued.stdout
    empty = subprocess.run([script("screenshots-deadletters"), "list", "--json"], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=60)
    assert empty.stdout.strip() == ""


def objects_with_times(s3, bucket: str) -> dict[str, object]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({item["Key"]: item["LastModified"] for item in page.get("Contents", [])})
    return found


def wait_until_quiet(s3, bucket: str, seconds: float = 3.0, timeout: float = 60) -> None:
    """Wait until no new object appeared for ``seconds`` (the workers drained the queue)."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(objects_with_times(s3, bucket))
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.5)


def test_dispatcher_killed_9_resumes_without_shooting_again(cluster, tmp_path):
    env, server, bucket, workers = cluster
    env = dict(env, SCREENSHOT_STUB_LATENCY_MS="30")
    urls = [f"http://resume-{n}.example/" for n in range(500)]
    urls_file = write_urls(tmp_path / "urls.txt", urls)
    workers.append(start_worker(env, tmp_path, "resume", concurrency=2))
    first = Run(env, urls_file, tmp_path / "out", "--engine", "stub", "--max-in-flight", "100",
                "--batch-size", "5")
    first.wait_for_rows(150)
    first.process.kill()  # kill -9: no chance to clean up
    first.process.wait(10)
    s3 = server.client()
    wait_until_quiet(s3, bucket)  # what was in flight finished meanwhile
    before = objects_with_times(s3, bucket)
    assert len(before) > len(first.rows()), "expected work to finish while the dispatcher was dead"

    second = Run(env, urls_file, tmp_path / "out", "--engine", "stub", "--max-in-flight", "100",
                 "--batch-size", "5")
    assert second.finish() == 0, second.output()
    assert_complete(second, urls, s3, bucket)
    after = objects_with_times(s3, bucket)
    rendered_again = [key for key, stamp in before.items() if after[key] != stamp]
    assert rendered_again == [], f"{len(rendered_again)} URLs were rendered again"


def test_max_age_reuses_recent_screenshots(cluster, tmp_path):
    env, server, bucket, workers = cluster
    urls = [f"http://cached-{n}.example/" for n in range(40)]
    urls_file = write_urls(tmp_path / "urls.txt", urls)
    workers.append(start_worker(env, tmp_path, "cache", concurrency=2))
    first = Run(env, urls_file, tmp_path / "first", "--engine", "stub")
    assert first.finish() == 0, first.output()
    s3 = server.client()
    before = objects_with_times(s3, bucket)
    second = Run(env, urls_file, tmp_path / "second", "--engine", "stub", "--max-age", "3600")
    assert second.finish() == 0, second.output()
    rows = assert_complete(second, urls, s3, bucket)
    assert {r["attempts"] for r in rows} == {0}, "every row should come from the cache"
    assert all(r["width"] == 1280 and r["height"] == 800 for r in rows)
    assert objects_with_times(s3, bucket) == before
    third = Run(env, urls_file, tmp_path / "third", "--engine", "stub", "--max-age", "0.001")
    assert third.finish() == 0, third.output()
    assert {r["attempts"] for r in third.rows()} == {1}, "too old: shot again"


def test_procfile_worker_stopped_by_honcho_loses_nothing(cluster, tmp_path):
    env, server, bucket, workers = cluster
    env = dict(env, SCREENSHOT_STUB_LATENCY_MS="200", WORKER_CONCURRENCY="2",
               FLOWER_BASIC_AUTH="test:secret")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    urls = [f"http://honcho-{n}.example/" for n in range(60)]
    with (tmp_path / "honcho.log").open("wb") as log:
        honcho = subprocess.Popen(
            [str(Path(sys.executable).with_name("honcho")), "start", "worker"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        run = Run(env, write_urls(tmp_path / "urls.txt", urls), tmp_path / "out",
                  "--engine", "stub")
        run.wait_for_rows(10)
        honcho.send_signal(signal.SIGTERM)  # what Ctrl-C or a deploy does
        honcho.wait(30)
        stopped = (tmp_path / "honcho.log").read_text()
        assert "Worker exited prematurely" not in stopped, "the stop was not warm"
        # Started exactly as the Procfile says, the worker logs no traceback (it once logged
        # "Signal handler _declare_dead_letters raised: ModuleNotFoundError" at start).
        assert "Traceback" not in stopped and " raised: " not in stopped, stopped[-3000:]
        assert "worker.1 stopped (rc=0)" in stopped or "rc=0" in stopped, stopped[-2000:]
        workers.append(start_worker(env, tmp_path, "after-honcho", concurrency=2))
        assert run.finish() == 0, run.output()
        assert_complete(run, urls, server.client(), bucket)
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)


def outside_honcho(env: dict[str, str], *dropped: str) -> dict[str, str]:
    """``env`` as a process manager other than honcho runs the Procfile's lines with: no
    ``HONCHO_PROCESS_NAME`` (nor ``dropped``), this environment's console scripts on PATH."""
    env = {k: v for k, v in env.items() if k not in ("HONCHO_PROCESS_NAME", *dropped)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_procfile_worker_line_answers_a_ping_to_celerys_default_node_name(cluster, tmp_path):
    """The Procfile's worker line run by a process manager other than honcho (``sh -c``, as
    Heroku-style runners and the image do) is node ``celery@<host>``, Celery's default, so
    ``celery inspect ping -d celery@<host>`` tells it is ready (it was ``worker@<host>``: a
    check using the default name never saw it ready)."""
    env, _server, _bucket, _workers = cluster
    env = outside_honcho(env)
    line = procfile()["worker"]
    # The two streams apart: a check may read standard output only.
    with (tmp_path / "worker.log").open("wb") as log, (tmp_path / "worker.err").open("wb") as err:
        worker = subprocess.Popen(
            ["sh", "-c", line], cwd=REPO, env=env, stdout=log, stderr=err,
            start_new_session=True,
        )
    try:
        node = f"celery@{os.uname().nodename}"
        deadline = time.monotonic() + 30
        while True:
            ping = subprocess.run(
                [script("celery"), "-A", "tasks", "inspect", "ping", "--timeout", "2",
                 "--destination", node],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
            )
            if ping.returncode == 0 and "pong" in ping.stdout:
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            assert time.monotonic() < deadline, (
                f"{node} not ready in 30 s:\n{(tmp_path / 'worker.log').read_text()[-2000:]}"
            )
        # A check that names the broker on Celery's command line, with no CELERY_* set: it
        # needs no result backend (this was a traceback: "CELERY_RESULT_BACKEND is required").
        bare = {k: v for k, v in env.items() if not k.startswith("CELERY_")}
        ping = subprocess.run(
            [script("celery"), "-A", "tasks", "-b", env["CELERY_BROKER_URL"], "inspect", "ping",
             "--timeout", "5", "--destination", node],
            cwd=REPO, env=bare, capture_output=True, text=True, timeout=60,
        )
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr[-2000:]
        # Ready is also said on standard output, where the banner and "Warm shutdown" are: a
        # check reading stdout for it used to wait 30 s and stop a ready worker.
        said, errors = ((tmp_path / name).read_text() for name in ("worker.log", "worker.err"))
        assert f"{node} ready." in said, said[-2000:] + errors[-2000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        said = (tmp_path / "worker.log").read_text()
        assert "before it was ready" not in said
        # and it says it had been ready, as which node: a check that stops a worker it never saw
        # ready can tell it from one that never was
        lines = said.strip().splitlines()
        line = lines[lines.index("worker: Warm shutdown (MainProcess)") + 1]
        assert line.startswith("worker: stopped ") and "was ready after " in line, line
        assert line.endswith(f"as {node}"), line
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


def test_procfile_worker_line_is_ready_beside_a_worker_of_the_same_node_name(cluster, tmp_path):
    """A worker started by hand (``celery -A tasks worker``: node ``celery@<host>``) and the
    Procfile's line outside honcho (the same name) on one broker: both become ready. With
    Celery's exclusive control queue the second retried RESOURCE_LOCKED forever and a check
    stopped it after 30 s ("worker: Warm shutdown")."""
    env, _server, _bucket, _workers = cluster
    env = outside_honcho(env)
    node = f"celery@{os.uname().nodename}"
    commands = {
        "by-hand": [script("celery"), "-A", "tasks", "worker", "-c", "1", "--loglevel=INFO"],
        "procfile": ["sh", "-c", procfile()["worker"]],
    }
    workers: dict[str, Worker] = {}
    try:
        for name, command in commands.items():
            log_path = tmp_path / f"{name}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            workers[name] = wait_until_ready(Worker(name, process, log_path), timeout=30)
            assert f"{node} ready." in workers[name].log()
        assert "RESOURCE_LOCKED" not in workers["procfile"].log()
        for worker in workers.values():
            worker.process.send_signal(signal.SIGTERM)
        assert [worker.process.wait(30) for worker in workers.values()] == [0, 0]
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGKILL)


def test_procfile_worker_line_without_a_result_backend_stops_and_says_why(cluster, tmp_path):
    """Given a broker but no result backend, the worker would write its rows to its own
    host's Redis: it stops at once with the reason, rather than starting."""
    env, _server, _bucket, _workers = cluster
    env = outside_honcho(env, "CELERY_RESULT_BACKEND")
    line = procfile()["worker"]
    worker = subprocess.run(
        ["sh", "-c", line], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert worker.returncode != 0
    assert "CELERY_RESULT_BACKEND is required with CELERY_BROKER_URL" in worker.stderr
    assert "ready." not in worker.stdout + worker.stderr


@pytest.mark.parametrize("refusal", ["no such vhost", "wrong password"])
def test_procfile_worker_line_refused_by_the_broker_stops_and_says_why(cluster, tmp_path, refusal):
    """A broker that refuses the worker for good (a vhost it does not have, a password it
    rejects) made the worker retry for ever, a traceback a second, never ready, until a check
    stopped it after 30 s ("worker: Warm shutdown"): it stops at once with the broker's reason."""
    env, _server, _bucket, _workers = cluster
    env = outside_honcho(env)
    parts = urlsplit(env["CELERY_BROKER_URL"])
    if refusal == "no such vhost":
        url, said = parts._replace(path=f"/no-such-vhost-{uuid.uuid4().hex[:8]}"), "NOT_ALLOWED"
    else:
        netloc = f"{parts.username}:not-the-password@{parts.hostname}:{parts.port or 5672}"
        url, said = parts._replace(netloc=netloc), "ACCESS_REFUSED"
    env["CELERY_BROKER_URL"] = urlunsplit(url)
    started = time.monotonic()
    worker = subprocess.run(
        ["sh", "-c", procfile()["worker"]], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert worker.returncode != 0
    assert time.monotonic() - started < 30
    assert "the broker at amqp://" in worker.stderr and said in worker.stderr, worker.stderr
    assert "not-the-password" not in worker.stdout + worker.stderr
    assert "ready." not in worker.stdout + worker.stderr


@contextlib.contextmanager
def disk_alarm() -> Iterator[None]:
    """RabbitMQ's disk alarm on (a free-disk limit above any disk) for the block's duration."""
    limit = rabbitmqctl("eval", "rabbit_disk_monitor:get_disk_free_limit().").strip()
    assert limit.isdigit(), limit
    rabbitmqctl("set_disk_free_limit", ALARM_DISK_LIMIT)
    try:
        yield
    finally:
        rabbitmqctl("set_disk_free_limit", limit)


def start_blocked_worker(env: dict[str, str], log_path: Path) -> Worker:
    """The Procfile's worker line under a disk alarm, once its log has said why it waits."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", procfile()["worker"]], cwd=REPO, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    worker = Worker("alarm", process, log_path)
    deadline = time.monotonic() + 30
    while "the broker blocks this connection" not in worker.log():
        assert process.poll() is None, worker.log()[-3000:]
        assert time.monotonic() < deadline, f"no word of the alarm:\n{worker.log()[-3000:]}"
        time.sleep(0.2)
    return worker


def test_procfile_worker_line_under_a_broker_resource_alarm_says_why_then_gets_ready(
    cluster, tmp_path
):
    """A RabbitMQ resource alarm (free disk under its limit, memory over its watermark) blocks
    every publisher: a worker started then waited on its first publish, never ready, in
    silence, until a check stopped it ("worker: Warm shutdown"). Its log now says why at once,
    and it becomes ready when the alarm clears."""
    env, _server, _bucket, _workers = cluster
    with disk_alarm():
        worker = start_blocked_worker(outside_honcho(env), tmp_path / "worker.log")
        assert "rabbitmqctl status" in worker.log() and " ready." not in worker.log()
    try:
        wait_until_ready(worker, timeout=30)
        assert "the broker unblocked this connection" in worker.log()
    finally:
        worker.stop(10)


def test_procfile_worker_line_stopped_under_a_resource_alarm_says_why_after_warm_shutdown(
    cluster, tmp_path
):
    """A warm shutdown only sets a flag a running worker reads: a worker still waiting on a
    publish the broker blocks never reaches Celery's ``worker_shutdown``, and a check kills it
    after its grace period with "worker: Warm shutdown (MainProcess)" as its last line (the
    newcomer's report). The line after it says why, printed from Celery's SIGTERM handler."""
    env, _server, _bucket, _workers = cluster
    with disk_alarm():
        worker = start_blocked_worker(outside_honcho(env), tmp_path / "worker.log")
        try:
            time.sleep(1.5)  # the watch looks once a second
            worker.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while "before it was ready" not in worker.log():
                assert time.monotonic() < deadline, worker.log()[-3000:]
                time.sleep(0.2)
        finally:
            os.killpg(worker.process.pid, signal.SIGKILL)  # the check's grace period is over
            worker.process.wait(10)
    said = worker.log().strip().splitlines()
    shutdown = said.index("worker: Warm shutdown (MainProcess)")
    line = said[shutdown + 1]
    assert line.startswith("worker: stopped ") and "before it was ready" in line, said[-5:]
    assert "the last it logged: " in line and "the broker blocks this connection" in line, line


def test_procfile_worker_line_stopped_before_ready_says_where_it_waited(cluster, tmp_path):
    """A worker stopped before it was ready ends its output with Celery's "worker: Warm shutdown
    (MainProcess)" whatever it waited for, and a check reporting the last line reported only
    that. Here its broker accepts the connection and never answers (a port that is not
    RabbitMQ's, a broker still starting): the worker logged nothing at all for as long as it
    ran. Its last line now says how long it had been starting and where it waited."""
    env, _server, _bucket, _workers = cluster
    env = outside_honcho(env)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(30)
        env["CELERY_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                ["sh", "-c", procfile()["worker"]], cwd=REPO, env=env, stdout=log,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 30
            while "[tasks]" not in log_path.read_text(errors="replace"):
                assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            connection, _ = silent.accept()  # held open, never answered
            time.sleep(3)  # the scenario: a worker that has been starting for a few seconds
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            connection.close()
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
    said = log_path.read_text(errors="replace").strip().splitlines()
    assert "ready." not in "\n".join(said)
    assert said[-2] == "worker: Warm shutdown (MainProcess)", said[-5:]
    last = said[-1]
    assert last.startswith("worker: stopped ") and "before it was ready" in last, last
    assert "it was waiting in amqp/" in last, last
