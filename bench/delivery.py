"""Benchmarks of the delivery pipeline at scale (issue 3): ``python -m bench.delivery``.

- ``publish``: the dispatcher alone publishing into RabbitMQ with publisher confirms;
- ``scaling``: a latency-only stub (each capture sleeps 200 ms) with 1, 2, 4 … 32 worker
  slots: throughput (steady rate, from the rows' finish times) should grow in proportion,
  i.e. nothing central caps a larger fleet;
- ``memory``: the dispatcher's peak RSS over URL files of growing length;
- ``soak``: a Selenium worker's memory (its Python processes and its Chromium) at 0, 1,000
  and 2,000 captures, with browser recycling on.

Everything runs against the real RabbitMQ (a private vhost), Redis (db 9) and SeaweedFS.
Results: ``bench-output/delivery.json`` and ``bench-output/delivery.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from bench.services import (
    REPO,
    S3,
    BenchError,
    RedisDb,
    Vhost,
    service_env,
    start_worker,
)

OUT = REPO / "bench-output"
#: Seconds each latency-only stub capture sleeps in the scaling benchmark.
SCALING_LATENCY_MS = 200


def write_urls(path: Path, count: int, prefix: str) -> Path:
    with path.open("w") as handle:
        for n in range(count):
            handle.write(f"http://{prefix}-{n}.example/\n")
    return path


def sampled_dispatch(env: dict[str, str], urls: Path, out: Path, *args: str) -> dict[str, Any]:
    """Run the dispatcher on a fresh ``out``, sampling its RSS every 50 ms."""
    shutil.rmtree(out, ignore_errors=True)  # a new job, not a resumed one
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "dispatcher.py", str(urls), "--out", str(out), "--quiet", *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise BenchError(f"dispatcher failed: {stderr.strip().splitlines()[-1:]}")
    stamps = sorted(
        datetime.fromisoformat(json.loads(line)["finished_at"]).timestamp()
        for line in (out / "results.jsonl").open()
    )
    rows = len(stamps)
    steady = (rows - 1) / (stamps[-1] - stamps[0]) if rows > 1 and stamps[-1] > stamps[0] else 0
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "rows": rows,
        "steady_per_s": round(steady, 1),
    }


def bench_publish(env: dict[str, str]) -> list[dict[str, Any]]:
    results = []
    for count, batch in ((3000, 1), (100_000, 50)):
        done = subprocess.run(
            [sys.executable, "-m", "bench.publish_rate", str(count), str(batch)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise BenchError(f"publish benchmark failed: {done.stderr.strip()[-300:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"publish: {results[-1]}", file=sys.stderr)
    return results


def bench_scaling(env: dict[str, str], work: Path, slots: Sequence[int]) -> list[dict[str, Any]]:
    results = []
    for count in slots:
        urls = write_urls(work / f"scaling-{count}.txt", max(50, count * 30), f"scale{count}")
        env_n = dict(env, SCREENSHOT_STUB_LATENCY_MS=str(SCALING_LATENCY_MS))
        worker = start_worker(env_n, work / "logs", count, pool="threads")
        try:
            run = sampled_dispatch(env_n, urls, work / f"scaling-{count}", "--engine", "stub")
        finally:
            worker.stop()
        rate = run["steady_per_s"]
        ideal = count * 1000 / SCALING_LATENCY_MS
        results.append({
            "slots": count, "urls": run["rows"], "wall_s": run["wall_s"],
            "urls_per_s": round(rate, 1), "ideal_per_s": ideal,
            "efficiency": round(rate / ideal, 2),
        })
        print(f"scaling: {results[-1]}", file=sys.stderr)
    return results


def bench_memory(env: dict[str, str], work: Path, sizes: Sequence[int]) -> list[dict[str, Any]]:
    results = []
    worker = start_worker(env, work / "logs", 16, pool="threads")
    try:
        for size in sizes:
            urls = write_urls(work / f"memory-{size}.txt", size, f"mem{size}")
            run = sampled_dispatch(env, urls, work / f"memory-{size}", "--engine", "stub",
                                   "--batch-size", "100")
            run.update(lines=size, urls_per_s=round(size / run["wall_s"], 1))
            results.append(run)
            print(f"memory: {results[-1]}", file=sys.stderr)
    finally:
        worker.stop()
    return results


def _tree_memory(pid: int) -> dict[str, float]:
    """PSS (MB) of a worker's Python processes and of its browsers, summed.

    PSS, not RSS: Chromium's processes share most of their pages, and summing their RSS
    would count those pages once per process.
    """
    python = browser = 0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            rss = proc.memory_full_info().pss
            name = proc.name()
        except psutil.NoSuchProcess:
            continue
        if "chrom" in name:
            browser += rss
        else:
            python += rss
    return {"python_pss_mb": round(python / 2**20, 1), "chromium_pss_mb": round(browser / 2**20, 1)}


def bench_soak(env: dict[str, str], work: Path, captures: int) -> list[dict[str, Any]]:
    from demo.__main__ import serve

    server = serve(REPO / "demo" / "pages")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages = ["index.html", "pricing.html", "blog.html", "dashboard.html", "long.html"]
    env_s = dict(env, SCREENSHOT_EGRESS_ALLOW="127.0.0.1/32")
    worker = start_worker(env_s, work / "logs", 1, pool="prefork")
    samples = []
    try:
        # Samples just after 5, N/2 + 5 and N + 5 captures: a browser is alive at each (it is
        # replaced every SCREENSHOT_RECYCLE_AFTER captures and started again on demand).
        half = captures // 2
        steps = ((0, 5), (5, half + 5), (half + 5, captures + 5))
        for step, (start, end) in enumerate(steps):
            urls = work / f"soak-{step}.txt"
            urls.write_text("".join(
                f"{base}/{pages[n % len(pages)]}?n={n}\n" for n in range(start, end)
            ))
            sampled_dispatch(env_s, urls, work / f"soak-{step}", "--engine", "selenium")
            samples.append({"captures": end, **_tree_memory(worker.process.pid)})
            print(f"soak: {samples[-1]}", file=sys.stderr)
    finally:
        worker.stop()
        server.shutdown()
    return samples


def to_markdown(results: dict[str, Any]) -> str:
    lines = ["### Delivery at scale (`python -m bench.delivery`)", ""]
    if "publish" in results:
        lines += ["| publish (no workers, confirms) | URLs | msgs | URLs/s | msgs/s |",
                  "|---|---|---|---|---|"]
        for r in results["publish"]:
            lines.append(f"| batch {r['batch_size']} | {r['urls']} | {r['messages']} | "
                         f"{r['urls_per_s']:.0f} | {r['messages_per_s']:.0f} |")
        lines.append("")
    if "scaling" in results:
        lines += [f"| worker slots (stub sleeping {SCALING_LATENCY_MS} ms) | URLs/s | ideal | "
                  "efficiency |", "|---|---|---|---|"]
        for r in results["scaling"]:
            lines.append(f"| {r['slots']} | {r['urls_per_s']} | {r['ideal_per_s']:.0f} | "
                         f"{r['efficiency']:.0%} |")
        lines.append("")
    if "memory" in results:
        lines += ["| URL lines | dispatcher peak RSS | URLs/s (stub, real S3) |", "|---|---|---|"]
        for r in results["memory"]:
            lines.append(f"| {r['lines']:,} | {r['peak_rss_mb']} MB | {r['urls_per_s']} |")
        lines.append("")
    if "soak" in results:
        lines += ["| captures (one Selenium worker) | Python PSS | Chromium PSS |",
                  "|---|---|---|"]
        for r in results["soak"]:
            lines.append(f"| {r['captures']} | {r['python_pss_mb']} MB | "
                         f"{r['chromium_pss_mb']} MB |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery")
    parser.add_argument("--only", default="publish,scaling,memory,soak")
    parser.add_argument("--slots", default="1,2,4,8,16,32")
    parser.add_argument("--memory-lines", default="10000,100000")
    parser.add_argument("--soak-captures", type=int, default=2000)
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    work = OUT / "delivery"
    work.mkdir(parents=True, exist_ok=True)
    vhost, redis, s3 = Vhost(), RedisDb(), S3(work / "s3")
    results: dict[str, Any] = {}
    try:
        vhost.create()
        redis.flush()
        s3.start()
        env = service_env(
            CELERY_BROKER_URL=vhost.url,
            CELERY_RESULT_BACKEND=redis.url,
            SCREENSHOT_QUEUE="delivery-bench",
            **s3.env(),
        )
        if "publish" in wanted:
            results["publish"] = bench_publish(env)
        if "scaling" in wanted:
            results["scaling"] = bench_scaling(env, work, [int(s) for s in args.slots.split(",")])
        if "memory" in wanted:
            sizes = [int(s) for s in args.memory_lines.split(",")]
            results["memory"] = bench_memory(env, work, sizes)
        if "soak" in wanted:
            results["soak"] = bench_soak(env, work, args.soak_captures)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        s3.stop()
        vhost.delete()
    (OUT / "delivery.json").write_text(json.dumps(results, indent=2))
    (OUT / "delivery.md").write_text(to_markdown(results))
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
