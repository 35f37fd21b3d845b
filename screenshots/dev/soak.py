"""``python -m screenshots.dev.soak``: a worker under steady load for a long time, checked for
stalls and lost URLs (issue #15: prove the pool does not stall).

One Celery worker, started as users start it (the ``celery`` console script, ``-P POOL -c N``,
``SCREENSHOT_TABS``), on its own RabbitMQ vhost, Redis db and SeaweedFS, shoots rounds of real
pages (Debian's python3.11-doc, served on loopback) mixed with URLs that fail (a missing page,
a refused port) until ``--minutes`` have passed. Each round is one ``dispatcher.py`` run. It
fails (exit 1) when:

- a round takes longer than ``--stall-seconds`` beyond what its URLs may take (a stall: a
  worker that stops consuming, heartbeats lost, a tab that never answers);
- a line of a round does not end with exactly one row, or a page that should be ``ok`` is an
  ``error`` (or a failing URL is ``ok``);
- the worker exits, or its log shows a traceback or a lost broker connection.

It prints one line per round (rate, ok, errors) and a verdict; ``--json`` writes them.
Not part of ``make test`` (it runs for half an hour): run it after a change to the engine or
the pool, on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from screenshots.dev.bench.corpus import (
    DOC_ROOT,
    BenchError,
    CorpusServer,
    list_pages,
    page_urls,
    write_url_file,
)
from screenshots.dev.bench.services import S3, RedisDb, Vhost, dispatch, service_env

#: Log lines that mean the worker is in trouble even if rounds still finish.
TROUBLE = ("Traceback (most recent call last)", "Connection to broker lost", "missed heartbeat")
#: URLs per round: real pages, plus two that must fail.
DEFAULT_ROUND = 60
#: Seconds a round may take beyond its pages' own time before it counts as a stall.
DEFAULT_STALL = 120.0


@dataclass
class Round:
    number: int
    urls: int
    ok: int
    errors: int
    wall: float
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--pool", default="prefork", help="celery -P (default prefork)")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="celery -c (default 1, as the Procfile)"
    )
    parser.add_argument("--tabs", type=int, default=None, help="SCREENSHOT_TABS of the worker")
    parser.add_argument("--batch-size", type=int, default=None, help="dispatcher --batch-size")
    parser.add_argument("--round", type=int, default=DEFAULT_ROUND, help="URLs per round")
    parser.add_argument(
        "--stall-seconds", type=float, default=DEFAULT_STALL,
        help="a round slower than this beyond its pages' timeouts is a stall",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the rounds here")
    parser.add_argument(
        "--keep-log", type=Path, default=Path("soak-worker.log"),
        help="where the worker's log is copied when the soak fails (default soak-worker.log)",
    )
    return parser.parse_args(argv)


def start_worker(
    env: dict[str, str], work: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    """The worker, as a user starts it: the console script, outside the checkout."""
    celery = Path(sys.executable).with_name("celery")
    log = (work / "worker.log").open("wb")
    with log:
        process = subprocess.Popen(
            [str(celery), "-A", "tasks", "worker", "--loglevel=INFO", f"-P{args.pool}",
             f"-c{args.concurrency}", "--hostname=soak@%h", "--without-mingle"],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while " ready." not in worker_log(work):
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the worker did not start: {worker_log(work)[-500:]}")
        time.sleep(0.2)
    return process


def worker_log(work: Path) -> str:
    with contextlib.suppress(OSError):
        return (work / "worker.log").read_text(errors="replace")
    return ""


def check_round(number: int, out: Path, good: set[str], wall: float) -> Round:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    lines = Counter(row["line"] for row in rows)
    problems = [f"line {line}: {count} rows" for line, count in lines.items() if count != 1]
    urls = len(good) + 2
    if len(lines) != urls:
        problems.append(f"{len(lines)} lines have rows, {urls} expected")
    ok = sum(1 for row in rows if row["status"] == "ok")
    for row in rows:
        should = row["url"] in good
        if should and row["status"] != "ok":
            problems.append(f"{row['url']}: {row['error']}")
        if not should and row["status"] == "ok":
            problems.append(f"{row['url']}: ok, should have failed")
    return Round(number, urls, ok, len(rows) - ok, wall, problems[:5])


def soak(args: argparse.Namespace, work: Path) -> list[Round]:
    rounds: list[Round] = []
    with contextlib.ExitStack() as stack:
        server = CorpusServer(DOC_ROOT)
        stack.callback(server.stop)
        server.start()
        vhost = Vhost().create()
        stack.callback(vhost.delete)
        redis_db = RedisDb().flush()
        stack.callback(redis_db.flush)
        s3 = S3(work).start()
        stack.callback(s3.stop)
        extra = {"SCREENSHOT_TABS": str(args.tabs)} if args.tabs else {}
        env = service_env(
            s3.env(), extra, CELERY_BROKER_URL=vhost.url, CELERY_RESULT_BACKEND=redis_db.url,
            SCREENSHOT_EGRESS_ALLOW="127.0.0.1",
        )
        env.pop("PYTHONPATH", None)  # the installed package, as users run it
        worker = start_worker(env, work, args)

        def stop_worker() -> None:
            worker.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)

        stack.callback(stop_worker)
        pages = page_urls(server.base, list_pages(DOC_ROOT))
        bad = [f"{server.base}/no-such-page-{os.getpid()}.html", "http://127.0.0.1:9/"]
        end = time.monotonic() + args.minutes * 60
        batch = ("--batch-size", str(args.batch_size)) if args.batch_size else ()
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # dispatch()'s cwd
        number = 0
        while time.monotonic() < end:
            number += 1
            start = (number - 1) * args.round % len(pages)
            good = (pages + pages)[start : start + args.round]
            file = write_url_file(work / f"round-{number}.txt", [*good[:5], *bad, *good[5:]])
            began = time.monotonic()
            out = work / f"round-{number}"
            dispatch(env, file, out, "--quiet", "--fail-on-status", "400-599", *batch,
                     timeout=args.stall_seconds + 30 * 3 * 2)
            found = check_round(number, out, set(good), time.monotonic() - began)
            shutil.rmtree(out, ignore_errors=True)
            if worker.poll() is not None:
                found.problems.append(f"the worker exited with status {worker.returncode}")
            log = worker_log(work)
            found.problems += [f"worker log: {word!r}" for word in TROUBLE if word in log]
            rounds.append(found)
            print(
                f"round {number}: {found.ok}/{found.urls} ok, {found.rate:.2f} shots/s"
                + (f", PROBLEMS: {'; '.join(found.problems)}" if found.problems else ""),
                flush=True,
            )
            if found.problems:
                break
    return rounds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    began = time.monotonic()
    try:
        rounds = soak(args, work)
    except BenchError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        rounds = [Round(0, 0, 0, 0, 0.0, [str(exc)])]
    if any(r.problems for r in rounds) and (work / "worker.log").exists():
        shutil.copyfile(work / "worker.log", args.keep_log)
        print(f"soak: the worker's log is in {args.keep_log}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    minutes = (time.monotonic() - began) / 60
    rates = [r.rate for r in rounds] or [0.0]
    failed = [r for r in rounds if r.problems]
    print(
        f"soak: {len(rounds)} rounds, {sum(r.urls for r in rounds)} URLs in {minutes:.1f} min, "
        f"-P {args.pool} -c {args.concurrency}, tabs {args.tabs or 'default'}; shots/s per "
        f"round min {min(rates):.2f} median {statistics.median(rates):.2f} max {max(rates):.2f}; "
        + ("no stall, every line one row" if not failed else f"FAILED in round {failed[0].number}")
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rounds], indent=2))
    return 1 if failed or not rounds else 0


if __name__ == "__main__":
    sys.exit(main())
