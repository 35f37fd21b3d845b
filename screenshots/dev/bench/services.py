"""The distributed pipeline's services for the benchmark, without pytest.

A private RabbitMQ vhost (deleted afterwards), Redis db 9 (flushed before and after), a
throw-away SeaweedFS with one bucket, and ``celery -A tasks worker`` processes started as the
Procfile starts them. Every failure is a :class:`~screenshots.dev.bench.corpus.BenchError` with one
line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from screenshots.dev.bench.corpus import BenchError

if TYPE_CHECKING:
    from screenshots.dev.devservers.seaweedfs import S3Server

REPO = Path(__file__).resolve().parents[3]
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The Redis database the benchmark owns (flushed before and after use).
REDIS_DB = 9
BUCKET = "bench-shots"
#: Seconds a worker may take to say "ready".
WORKER_READY_TIMEOUT = 60.0
#: Session ids of the workers this process started (each runs in its own session, and so do
#: its pool processes, ChromeDriver and Chromium): what :func:`leftovers` may kill.
WORKER_SESSIONS: set[int] = set()


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        raise BenchError("rabbitmqctl not found: the benchmark needs a local RabbitMQ")
    try:
        done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"rabbitmqctl {' '.join(args)} timed out after 60 s") from None
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise BenchError(f"rabbitmqctl {' '.join(args)} failed: {reason[-1] if reason else '?'}")
    return done.stdout


class Vhost:
    """A private RabbitMQ vhost for this run."""

    def __init__(self) -> None:
        self.name = f"bench-{uuid.uuid4().hex[:8]}"
        self.created = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{self.name}"

    def create(self) -> Vhost:
        if not reachable(RABBIT_HOST, RABBIT_PORT):
            raise BenchError(
                f"RabbitMQ is not answering on {RABBIT_HOST}:{RABBIT_PORT}: "
                "start it with `rabbitmq-server -detached`"
            )
        rabbitmqctl("add_vhost", self.name)
        self.created = True
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        if self.created:
            self.created = False
            rabbitmqctl("delete_vhost", self.name)


class RedisDb:
    """Redis database :data:`REDIS_DB`, flushed."""

    def __init__(self, db: int = REDIS_DB) -> None:
        self.db = db

    @property
    def url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.db}"

    def flush(self) -> RedisDb:
        import redis

        try:
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.db, socket_timeout=5).flushdb()
        except redis.RedisError as exc:
            raise BenchError(
                f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT} ({exc}): start it with "
                '`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""`'
            ) from None
        return self


class S3:
    """A SeaweedFS with the bucket :data:`BUCKET`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.server: S3Server | None = None

    def start(self) -> S3:
        from screenshots.dev.devservers.seaweedfs import SeaweedFSError, start_seaweedfs

        try:
            server = self.server = start_seaweedfs(self.base)
            server.client().create_bucket(Bucket=BUCKET)
        except SeaweedFSError as exc:
            raise BenchError(f"SeaweedFS did not start: {str(exc).splitlines()[0]}") from None
        except Exception as exc:  # noqa: BLE001 - boto errors: one line
            raise BenchError(f"SeaweedFS bucket creation failed: {exc}") from None
        return self

    def env(self) -> dict[str, str]:
        assert self.server is not None
        return self.server.env(BUCKET)

    def object_count(self, limit: int = 1000) -> int:
        assert self.server is not None
        listed = self.server.client().list_objects_v2(Bucket=BUCKET, MaxKeys=limit)
        return int(listed.get("KeyCount", 0))

    def stop(self) -> None:
        from screenshots.dev.devservers.seaweedfs import stop_seaweedfs

        if self.server is not None:
            server, self.server = self.server, None
            stop_seaweedfs(server)


def service_env(
    *variables: Mapping[str, str], repo: Path = REPO, **extra: str
) -> dict[str, str]:
    """Our environment minus any CELERY_*/SCREENSHOT_* the user set, plus ``variables`` and
    ``extra``; ``repo`` is the source tree the processes run (another copy for A/B tests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "SCREENSHOT_"))}
    for more in variables:
        env.update(more)
    env.update(extra)
    env["PYTHONPATH"] = str(repo)
    return env


@dataclass
class Worker:
    """A ``celery -A tasks worker`` process (and its pool)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown (SIGTERM: browsers are closed), then SIGKILL the whole group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool children, if any are left
        if self.process.poll() is None:
            self.process.wait(10)


def start_worker(
    env: dict[str, str],
    log_dir: Path,
    concurrency: int,
    pool: str = "prefork",
    name: str | None = None,
) -> Worker:
    """Start a worker as the Procfile does (INFO logs, max 1000 tasks per child)."""
    return wait_ready(launch_worker(env, log_dir, concurrency, pool, name))


def start_fleet(
    env: dict[str, str], log_dir: Path, concurrencies: list[int], pool: str = "threads"
) -> list[Worker]:
    """Start one worker per entry of ``concurrencies`` (its slots), all at once, and wait
    until every one is ready; stop them all if one fails."""
    workers: list[Worker] = []
    try:
        for concurrency in concurrencies:
            workers.append(launch_worker(env, log_dir, concurrency, pool))
        for worker in workers:
            wait_ready(worker)
    except BaseException:
        for worker in workers:
            worker.stop(5)
        raise
    return workers


def launch_worker(
    env: dict[str, str],
    log_dir: Path,
    concurrency: int,
    pool: str = "prefork",
    name: str | None = None,
) -> Worker:
    """Start a worker as the Procfile does (INFO logs, max 1000 tasks per child); do not
    wait for it (see :func:`wait_ready`)."""
    name = name or f"bench-{pool}-{concurrency}-{uuid.uuid4().hex[:4]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "tasks", "worker",
                "--loglevel=INFO", f"--concurrency={concurrency}", f"--pool={pool}",
                f"--hostname={name}@%h", "--max-tasks-per-child=1000",
            ],
            cwd=env.get("PYTHONPATH", str(REPO)),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    WORKER_SESSIONS.add(process.pid)
    return Worker(name, process, log_path)


def wait_ready(worker: Worker) -> Worker:
    """``worker`` once its log says "ready"; a :class:`BenchError` if it exits or takes
    longer than :data:`WORKER_READY_TIMEOUT` seconds (then it is stopped)."""
    name, process, log_path = worker.name, worker.process, worker.log_path
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = worker.log().strip().splitlines()
            raise BenchError(
                f"worker {name} exited with status {process.returncode}: "
                f"{tail[-1] if tail else 'no output'} (log: {log_path})"
            )
        if " ready." in worker.log():
            return worker
        time.sleep(0.2)
    worker.stop(5)
    raise BenchError(
        f"worker {name} was not ready within {WORKER_READY_TIMEOUT:.0f} s ({log_path})"
    )


@dataclass
class DispatchRun:
    """One ``python dispatcher.py`` run."""

    returncode: int
    stderr: str
    out: Path


def dispatch(
    env: dict[str, str], urls: Path, out: Path, *args: str, timeout: float = 900.0
) -> DispatchRun:
    """Run the dispatcher as a user would; fail with its last stderr line if it fails."""
    if out.exists():
        shutil.rmtree(out)  # a fresh job: no resume
    out.mkdir(parents=True)
    try:
        done = subprocess.run(
            [sys.executable, "dispatcher.py", str(urls), "--out", str(out), *args],
            cwd=env.get("PYTHONPATH", str(REPO)), env=env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"the dispatcher did not finish {urls.name} within {timeout:.0f} s"
        ) from None
    (out / "dispatcher.log").write_text(done.stderr, encoding="utf-8")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise BenchError(
            f"dispatcher exited with status {done.returncode}: {lines[-1] if lines else '?'}"
        )
    return DispatchRun(done.returncode, done.stderr, out)


def leftovers(markers: tuple[str, ...] = ()) -> list[int]:
    """Pids of live processes this benchmark started and did not stop: anything in a worker's
    session, or whose command line holds one of ``markers`` (e.g. a private profile path).

    Never anything else: other jobs on the machine (a test run's browsers) are left alone.
    """
    import psutil

    found = []
    me = os.getpid()
    for process in psutil.process_iter(["cmdline"]):
        if process.pid == me:
            continue
        try:
            in_session = os.getsid(process.pid) in WORKER_SESSIONS
        except OSError:
            continue
        cmdline = " ".join(process.info.get("cmdline") or [])
        if in_session or any(marker in cmdline for marker in markers):
            found.append(process.pid)
    return found
