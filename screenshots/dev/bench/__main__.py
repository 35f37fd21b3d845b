"""``python -m screenshots.dev.bench`` (``make bench``): the service's throughput and CPU cost on
this machine.

(a) the distributed pipeline (RabbitMQ vhost, Redis db 9, SeaweedFS, one Celery worker with the
    selenium engine, prefork -c 2 and -c 3) over the python3.11-doc pages served locally;
(b) the bare-browser reference: Playwright, one Chromium, 3 tabs, the same pages and server;
    and (b') the same with the HTTP cache off, as the pipeline's browsers run (informational);
(c) the pipeline with the stub engine and the real S3 over synthetic URLs, several pools and
    batch sizes.

(a) and (b) are interleaved: the pages are cut into ``--rounds`` parts, and each round shoots
its part with every system in turn (all of them up and warm), so a slow spell of the machine
weighs on every system alike. Each system's figures are the sums over the rounds.

Results: ``bench-output/results.json`` and ``bench-output/results.md``. Exit status 0 when
every part ran, 1 when a service failed (one line on stderr says which), 2 for bad arguments,
3 with ``--check-floors`` when a floor is not met.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from screenshots.core.settings import DEFAULT_CHROMIUM, FULL_CHROMIUM
from screenshots.dev.bench import machine, report
from screenshots.dev.bench.corpus import (
    DOC_ROOT,
    BenchError,
    CorpusServer,
    list_pages,
    page_urls,
    spread,
    stub_urls,
    warmup_urls,
    write_url_file,
)
from screenshots.dev.bench.machine import background_load
from screenshots.dev.bench.stats import RunStats, chunks, combine

PARTS = ("a", "b", "c")
#: Share of a window's CPU not used by the bench above which its figures are flagged.
NOISY = 0.10
#: Seconds one dispatcher run may take before the benchmark gives up.
DISPATCH_TIMEOUT = 600.0


def worker_shape(text: str) -> tuple[int, int | None]:
    """``"2"`` → (2, None): ``-c 2``, the default tabs; ``"1x4"`` → (1, 4)."""
    concurrency, _, tabs = text.strip().partition("x")
    return int(concurrency), (int(tabs) if tabs else None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.bench",
    description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="a,b,c", help="parts to run, e.g. a,b (default a,b,c)")
    parser.add_argument("--pages", type=int, default=None, help="use N corpus pages (default all)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up pages before (a) and (b)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of (a) and (b) (default 3)"
    )
    parser.add_argument(
        "--concurrency", default="1",
        help="worker -c values for (a) (default 1: the Procfile's, one browser with the default "
        "SCREENSHOT_TABS); CxT also sets SCREENSHOT_TABS=T (1x4: one process, one browser, 4 tabs)",
    )
    parser.add_argument(
        "--engine", default="selenium", help="the workers' engine for (a) (default selenium)"
    )
    parser.add_argument(
        "--strict-concurrency", default="1",
        help="worker -c values for (a strict): (a) again with SCREENSHOT_ISOLATION=strict, "
        "judged against (b') (default 1, as (a); empty for none)",
    )
    parser.add_argument("--tabs", type=int, default=3, help="parallel tabs for (b) (default 3)")
    parser.add_argument(
        "--isolated-reference", choices=("on", "off"), default="on",
        help="with (b), also run (b'): the reference with the HTTP cache off, as the pipeline "
        "isolates captures (default on)",
    )
    parser.add_argument(
        "--stub-urls", type=int, default=20000, help="URLs of the best stub run (default 20000)"
    )
    parser.add_argument(
        "--stub-sweep-urls", type=int, default=2000,
        help="URLs of each run of the stub sweep (default 2000)",
    )
    parser.add_argument(
        "--stub-pools", default="prefork:2,prefork:8,threads:8",
        help="pool:concurrency list for (c) (default prefork:2,prefork:8,threads:8: on 2 "
        "cores, 8 processes keep both busy while others wait for S3)",
    )
    parser.add_argument(
        "--batch-sizes", default="1,10,50", help="dispatcher --batch-size values for (c)"
    )
    parser.add_argument(
        "--egress-policy", choices=("on", "off"), default="on",
        help="SCREENSHOT_EGRESS_POLICY of the workers (default on, as deployed; the corpus "
        "server's 127.0.0.1 is put in SCREENSHOT_EGRESS_ALLOW)",
    )
    parser.add_argument(
        "--chromium", default=DEFAULT_CHROMIUM,
        help=f"Chromium binary of (a)'s workers (SCREENSHOT_CHROMIUM) and of (b) and (b') alike "
        f"(default {DEFAULT_CHROMIUM}; the full browser: {FULL_CHROMIUM})",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=10.0,
        help="seconds to wait for an idle machine before each measured run (default 10)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="output directory")
    parser.add_argument(
        "--check-floors", action="store_true", help="exit 3 when a floor is not met"
    )
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error(f"--only takes a comma-separated subset of {','.join(PARTS)}")
    try:
        args.concurrencies = [worker_shape(c) for c in args.concurrency.split(",")]
        args.strict_concurrencies = [
            worker_shape(c) for c in args.strict_concurrency.split(",") if c.strip()
        ]
        args.batches = [int(b) for b in args.batch_sizes.split(",")]
        args.pools = [
            (pool, int(count))
            for pool, count in (item.split(":") for item in args.stub_pools.split(","))
        ]
    except ValueError:
        parser.error("--concurrency, --batch-sizes and --stub-pools take numbers")
    if args.pages is not None and args.pages < 1:
        parser.error("--pages must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def noise(run: RunStats) -> str:
    """A warning when > 10% of the window's CPU was not the bench's (other jobs)."""
    if run.not_own > NOISY:
        return f" (WARNING: {100 * run.not_own:.0f}% of the CPU was not the bench's)"
    return ""


def summary(run: RunStats, unit: str = "shots") -> str:
    per = run.cpu_per_item or 0.0
    own = run.own_per_item or 0.0
    return (
        f"{run.ok}/{run.urls} ok in {run.wall:.1f} s: {run.rate:.2f} {unit}/s, "
        f"{per:.3f} CPU-s per item ({own:.3f} own){noise(run)}"
    )


def chromium_version(binary: str = DEFAULT_CHROMIUM) -> str:
    """The version of the Chromium ``binary`` measured, with its path (the headless shell
    prints the same "Chromium 156..." as the full browser, and the default depends on whether
    the shell is installed)."""
    where = f" ({binary})"
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20)
        return (done.stdout.strip() or "Chromium (version unknown)") + where
    except (OSError, subprocess.TimeoutExpired):
        return f"Chromium (not found){where}"


def source_version() -> str:
    """The commit measured, with ``+dirty`` when tracked files have uncommitted changes."""
    repo = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


def kill_leftovers() -> None:
    """Kill what this benchmark started and is still alive (nothing else on the machine)."""
    import psutil

    from screenshots.dev.bench.reference import PROFILE_PREFIX
    from screenshots.dev.bench.services import leftovers

    pids = leftovers((PROFILE_PREFIX,))
    if not pids:
        return
    log(f"warning: killing {len(pids)} leftover processes it started")
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.Error:
            continue
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=5)


def run_ab(
    args: argparse.Namespace,
    env: dict[str, str] | None,
    urls: list[str],
    warmup: list[str],
    stack: contextlib.ExitStack,
) -> dict[str, Any]:
    """(a), (b) and (b'), interleaved in rounds; every system up and warm before the first
    round."""
    from screenshots.dev.bench.pipeline import BrowserWorker
    from screenshots.dev.bench.reference import Reference

    systems: list[Any] = []
    reference: Reference | None = None
    isolated: Reference | None = None
    if "b" in args.parts:
        log(f"(b) starting Playwright: 1 Chromium, {args.tabs} tabs")
        reference = Reference(args.tabs, chromium=args.chromium)
        stack.callback(reference.stop)
        systems.append(reference.start(warmup))
        if args.isolated_reference == "on":
            log(f"(b') starting Playwright: 1 Chromium, {args.tabs} tabs, HTTP cache off")
            isolated = Reference(args.tabs, http_cache=False, chromium=args.chromium)
            stack.callback(isolated.stop)
            systems.append(isolated.start(warmup))
    if "a" in args.parts:
        assert env is not None
        for concurrency, tabs in args.concurrencies:
            log(f"(a) starting a worker: {args.engine}, prefork -c {concurrency}")
            worker = BrowserWorker(
                env, args.out, concurrency, DISPATCH_TIMEOUT, engine=args.engine, tabs=tabs
            )
            stack.callback(worker.stop)
            systems.append(worker.start(warmup))
        for concurrency, tabs in args.strict_concurrencies:
            log(f"(a strict) starting a worker: {args.engine}, prefork -c {concurrency}")
            worker = BrowserWorker(
                env, args.out, concurrency, DISPATCH_TIMEOUT, engine=args.engine,
                isolation="strict", tabs=tabs,
            )
            stack.callback(worker.stop)
            systems.append(worker.start(warmup))
    parts = chunks(urls, args.rounds)
    runs: dict[str, list[RunStats]] = {system.label: [] for system in systems}
    for number, part in enumerate(parts, start=1):
        # Rotate the order so no system always follows the same one.
        shift = (number - 1) % len(systems)
        for system in systems[shift:] + systems[:shift]:
            stats = system.shoot(part)
            if stats.ok == 0:
                raise BenchError(f"{system.label} shot nothing: {stats.error_samples[:1]}")
            log(f"round {number}/{len(parts)}, {system.label}: {summary(stats)}")
            runs[system.label].append(stats)
    totals = {label: combine(stats) for label, stats in runs.items()}
    for label, total in totals.items():
        log(f"total, {label}: {summary(total)}")
    result: dict[str, Any] = {"rounds": len(parts)}
    if reference is not None:
        # "run" stays the reference as the issue defines it (HTTP cache kept across pages).
        result["b"] = {"run": totals[reference.label].to_dict()}
        if isolated is not None:
            result["b"]["isolated_run"] = totals[isolated.label].to_dict()
    if "a" in args.parts:
        result["a"] = {
            "runs": [totals[s.label].to_dict() for s in systems if not isinstance(s, Reference)]
        }
    return result


def run_c(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from screenshots.dev.bench.pipeline import run_stub_pipeline

    sweep_count = min(args.stub_sweep_urls, args.stub_urls)
    runs: list[dict[str, Any]] = []
    first = 1  # every measured run gets URLs of its own

    def url_file(name: str, count: int) -> Path:
        nonlocal first
        path = write_url_file(args.out / name, stub_urls(count, first))
        first += count
        return path

    for pool, concurrency in args.pools:
        log(f"(c) stub, {pool} -c {concurrency}, batch sizes {args.batches}, "
            f"{sweep_count} URLs each")
        plan = [
            (url_file(f"stub-{pool}{concurrency}-b{batch}.txt", sweep_count), sweep_count, batch)
            for batch in args.batches
        ]
        for stats in run_stub_pipeline(
            env, args.out, pool, concurrency, plan, timeout=DISPATCH_TIMEOUT
        ):
            log(f"(c) {stats.label}: {summary(stats, 'URLs')}")
            runs.append(stats.to_dict())
    top = report.best(runs)
    final = top  # the figure checked against the floor: the long run of the best settings
    if top is not None and args.stub_urls > sweep_count:
        settings = top["settings"]
        full_file = url_file("stub-full.txt", args.stub_urls)
        log(f"(c) the best of the sweep again over {args.stub_urls} URLs: {top['label']}")
        for stats in run_stub_pipeline(
            env, args.out, settings["pool"], settings["concurrency"],
            [(full_file, args.stub_urls, settings["batch_size"])], timeout=DISPATCH_TIMEOUT,
        ):
            log(f"(c) {stats.label}: {summary(stats, 'URLs')}")
            runs.append(stats.to_dict())
            final = runs[-1]
    return {"runs": runs, "final": final}


#: The floors ``--check-floors`` judges (issue #15). Other ratios are informational.
JUDGED_FLOORS = ("a_over_b_rate", "a_over_b_cpu", "a_strict_over_b_isolated_rate", "stub_rate")


def _at_least(value: float | None, floor: float) -> dict[str, Any]:
    return {"value": value, "met": value is not None and value >= floor}


def floors(results: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    a_runs = results.get("a", {}).get("runs", [])
    # (a) as shipped: standard isolation (anonymous captures share the HTTP cache), judged
    # against (b); (a strict), every capture with an empty cache, against (b').
    a_best = report.best([r for r in a_runs if _isolation(r) != "strict"])
    strict = report.best([r for r in a_runs if _isolation(r) == "strict"])
    b_run = results.get("b", {}).get("run")
    if a_best and b_run:
        found["a_over_b_rate"] = _at_least(
            report.ratio(a_best["rate"], b_run["rate"]), report.FLOOR_RATIO
        )
        cpu = report.ratio(a_best["cpu_per_item"], b_run["cpu_per_item"])
        found["a_over_b_cpu"] = {
            "value": cpu, "met": cpu is not None and cpu <= report.CEILING_CPU_RATIO
        }
        found["a_over_b_own_cpu"] = report.ratio(a_best["own_per_item"], b_run["own_per_item"])
    isolated = results.get("b", {}).get("isolated_run")
    if strict and isolated:
        found["a_strict_over_b_isolated_rate"] = _at_least(
            report.ratio(strict["rate"], isolated["rate"]), report.FLOOR_RATIO
        )
        found["a_strict_over_b_isolated_cpu"] = report.ratio(
            strict["cpu_per_item"], isolated["cpu_per_item"]
        )
    if a_best and isolated:  # informational: how much the shared cache gains
        found["a_over_b_isolated_rate"] = report.ratio(a_best["rate"], isolated["rate"])
    c_final = results.get("c", {}).get("final")
    if c_final:
        found["stub_rate"] = {
            "value": c_final["rate"], "met": c_final["rate"] >= report.FLOOR_STUB_RATE,
            "urls": c_final["urls"], "label": c_final["label"],
        }
    return found


def _isolation(run: dict[str, Any]) -> str:
    return str(run["settings"].get("isolation", "standard"))


def missed_floors(found: dict[str, Any]) -> list[str]:
    """The judged floors of :func:`floors` not met (what ``--check-floors`` exits 3 on)."""
    return [name for name in JUDGED_FLOORS if name in found and not found[name]["met"]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine.QUIET_WAIT = args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log("measuring the machine's background load (2 s)")
    results: dict[str, Any] = {
        "machine": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "chromium": chromium_version(args.chromium),
            "python": platform.python_version(),
            "background_cores_busy": background_load(2.0),
        },
        "command": "python -m screenshots.dev.bench " + " ".join(argv if argv is not None else
        sys.argv[1:]),
        "source": source_version(),
        "egress_policy": args.egress_policy,
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    status = 0
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(kill_leftovers)
            stack.callback(shutil.rmtree, tmp, True)
            urls: list[str] = []
            warmup: list[str] = []
            if "a" in args.parts or "b" in args.parts:
                pages = spread(list_pages(DOC_ROOT), args.pages)
                server = CorpusServer(DOC_ROOT)
                stack.callback(server.stop)
                server.start()
                urls = page_urls(server.base, pages)
                warmup = warmup_urls(urls[: args.warmup])
                results["corpus"] = {
                    "root": str(DOC_ROOT), "pages": len(pages), "server": "python-threading",
                    "width": 1280, "height": 800, "format": "png", "warmup": len(warmup),
                    "rounds": min(args.rounds, len(pages)),
                }
                log(f"serving {len(pages)} pages at {server.base}")
            env = None
            if "a" in args.parts or "c" in args.parts:
                from screenshots.dev.bench.services import S3, RedisDb, Vhost, service_env

                vhost = Vhost()
                stack.callback(vhost.delete)
                vhost.create()
                redis_db = RedisDb()
                stack.callback(redis_db.flush)
                redis_db.flush()
                s3 = S3(tmp)
                stack.callback(s3.stop)
                s3.start()
                env = service_env(
                    s3.env(),
                    CELERY_BROKER_URL=vhost.url,
                    CELERY_RESULT_BACKEND=redis_db.url,
                    # The corpus is on loopback, which the egress policy refuses unless
                    # allowed: allow exactly that address, keep the policy (and its proxy).
                    SCREENSHOT_EGRESS_POLICY=args.egress_policy,
                    SCREENSHOT_EGRESS_ALLOW="127.0.0.1",
                    SCREENSHOT_CHROMIUM=args.chromium,
                )
                endpoint = s3.env()["AWS_ENDPOINT_URL_S3"]
                log(f"services: vhost {vhost.name}, Redis db {redis_db.db}, S3 {endpoint}")
            if "a" in args.parts or "b" in args.parts:
                with contextlib.ExitStack() as browsers:  # stopped before (c) starts
                    results.update(run_ab(args, env, urls, warmup, browsers))
            if "c" in args.parts:
                assert env is not None
                results["c"] = run_c(args, env)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    if status:
        return status

    results["floors"] = floors(results)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    json_path, md_path = report.write(results, args.out)
    print(md_path.read_text(encoding="utf-8"))
    log(f"results in {json_path} and {md_path} ({results['elapsed_s']:.0f} s)")
    missed = missed_floors(results["floors"])
    if missed and args.check_floors:
        log(f"floors not met: {', '.join(missed)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
