"""Benchmarks of the delivery pipeline at scale (issue 3): ``python -m
screenshots.dev.bench.delivery``.

- ``publish``: the dispatcher alone publishing into RabbitMQ with publisher confirms;
- ``scaling``: a latency-only stub (each capture sleeps 200 ms) with 1, 2, 4 … 32 worker
  slots, spread over several worker processes as a fleet would be (and, as contrasts, at 1
  URL a message and all in one process, see :data:`SCALING_CONFIGS`): throughput (steady
  rate, from the rows' finish times) should grow in proportion, i.e. nothing central caps a
  larger fleet. Each run also records where the machine's CPU went while steady (workers,
  SeaweedFS, RabbitMQ, Redis, the dispatcher, other jobs);
- ``memory``: the dispatcher's kernel-measured peak RSS over URL files of growing length,
  checking that every line got exactly one row: 10k and 100k lines of stored captures, then
  10k, 100k and 1M lines of URLs the stub fails at once (see :data:`MEMORY_URL_KINDS`),
  which takes minutes instead of an hour;
- ``soak``: a Selenium worker's memory (its Python processes and its Chromium) at 0, 1,000
  and 2,000 captures, with browser recycling on.

Everything runs against the real RabbitMQ (a private vhost), Redis (db 9) and SeaweedFS.
Results: ``bench-output/delivery.json`` and ``bench-output/delivery.md``; the parts not run
(``--only``) are kept from the previous ``delivery.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from screenshots.dev.bench.machine import (
    FOREIGN,
    CpuTimes,
    ProcSample,
    breakdown,
    clock_ticks,
    cpu_delta,
    process_snapshot,
    read_cpu_times,
    wait_for_quiet,
    with_remainder,
)
from screenshots.dev.bench.services import (
    REPO,
    S3,
    BenchError,
    RedisDb,
    Vhost,
    Worker,
    service_env,
    start_fleet,
    start_worker,
)

OUT = REPO / "bench-output"
#: Milliseconds each latency-only stub capture sleeps in the scaling benchmark.
SCALING_LATENCY_MS = 200
#: The scaling benchmark's configurations (``--scaling``), each ``LAYOUT/BATCH`` (see
#: :func:`parse_config`), run at every slot count:
#:
#: - ``threads:4/10``: a fleet of worker processes with 4 thread slots each (what more
#:   machines or containers are), 10 URLs per task message. At 1 URL a message, the fixed
#:   CPU cost of a Celery task in the worker (~6 ms: task events, state, result, ack) times
#:   160 URLs/s is more than this 2-core machine has beside everything else; on a real fleet
#:   each worker brings its own CPU. 10 URLs (2 s of sleeping) cut it tenfold and still give
#:   every slot several batches;
#: - ``threads:4/1``: the same fleet at 1 URL a message (the dispatcher's default): where the
#:   CPU goes when the co-located fleet, not the centre, runs out of it;
#: - ``threads:all/1``: every slot in one process at 1 URL a message, as the benchmark first
#:   measured it (its GIL and its per-task cost cap it).
SCALING_CONFIGS = "threads:4/10,threads:4/1,threads:all/1"
#: The dispatcher's window in the scaling benchmark is this many times the URLs the slots
#: run at once (slots × batch): every slot always has a batch waiting, so the fleet, never
#: the window, sets the pace.
SCALING_WINDOW_FACTOR = 4
#: Captures per slot in one scaling run (10 s of sleeping per slot at 200 ms).
SCALING_URLS_PER_SLOT = 50
#: Share of a run's rows left out at each end when its steady rate is computed (start-up,
#: and the last batches that leave slots idle).
STEADY_TRIM = 0.1
#: Seconds to wait for a quiet machine before each scaling run (``--quiet-wait``).
QUIET_WAIT = 30.0
#: Seconds the machine must stay under :data:`screenshots.dev.bench.machine.QUIET_THRESHOLD` busy
# cores to
#: count as quiet: longer than the lulls between a neighbour's browser launches.
QUIET_STEP = 5.0
#: Cores used by other jobs (and unattributed) while steady above which a run is flagged.
NOISY_CORES = 0.25
#: Worker slots and layout of the stub fleet behind the memory runs (latency 0).
MEMORY_SLOTS = 16
MEMORY_LAYOUT = "threads:8"
#: URLs per task message in the memory runs.
MEMORY_BATCH = 100
#: The dispatcher's window in the memory runs (URLs in flight).
MEMORY_MAX_IN_FLIGHT = 2000
#: Seconds between two CPU snapshots of the machine during a memory run.
MEMORY_SNAPSHOT_EVERY = 5.0
#: The URLs of the memory runs, by kind: the top-level domain of their hosts. ``stored``: the
#: stub captures each one and the worker stores the image in S3 (an ``ok`` row, as in
#: production). ``unresolvable``: hosts under ``.invalid`` (RFC 6761), which the stub fails at
#: once as a browser fails an unknown host (an ``error`` row, no S3 request): the dispatcher,
#: RabbitMQ and Redis do the same work per URL, without the ~3 ms of worker and SeaweedFS CPU
#: a stored capture costs on this 2-core machine (~4,000 URLs/s instead of ~500), so 1M lines
#: take minutes, not over half an hour. Their rows are shorter (no presigned link), and the
#: dispatcher's peak comes at the end, from the report of up to 5,000 rows: it is ~15 MB lower
#: than with stored captures, so compare kinds at the same size before reading 1M lines.
MEMORY_URL_KINDS = {"stored": "example", "unresolvable": "invalid"}
#: File sizes of the memory runs, by URL kind (``--memory-lines``,
#: ``--memory-unresolvable-lines``): the issue's 10k and 100k lines with stored captures;
#: 10k, 100k and 1M lines with unresolvable hosts (the same dispatcher work, ~8× faster).
MEMORY_LINES = "10000,100000"
MEMORY_UNRESOLVABLE_LINES = "10000,100000,1000000"


@dataclass(frozen=True)
class Layout:
    """How worker slots are spread over worker processes: ``pool`` processes of at most
    ``per_process`` slots each, or every slot in one process (``per_process`` None)."""

    pool: str
    per_process: int | None

    def concurrencies(self, slots: int) -> list[int]:
        """The slots of each process: as few processes as the cap allows, near-equal."""
        if slots < 1:
            raise ValueError("at least one slot")
        if self.per_process is None:
            return [slots]
        processes = math.ceil(slots / self.per_process)
        base, extra = divmod(slots, processes)
        return [base + 1] * extra + [base] * (processes - extra)

    def describe(self, slots: int) -> str:
        """``8 × threads -c 4`` (or ``1 × threads -c 2 + 1 × threads -c 1``)."""
        counts: dict[int, int] = {}
        for concurrency in self.concurrencies(slots):
            counts[concurrency] = counts.get(concurrency, 0) + 1
        return " + ".join(f"{n} × {self.pool} -c {c}" for c, n in counts.items())

    @property
    def name(self) -> str:
        return f"{self.pool}:{self.per_process or 'all'}"


def parse_layout(text: str) -> Layout:
    """``threads:4`` (processes of 4 thread slots), ``prefork:2``, ``threads:all``."""
    pool, _, size = text.strip().partition(":")
    if pool not in ("threads", "prefork") or not size:
        raise ValueError(f"bad layout {text!r}: want threads:N, prefork:N or threads:all")
    if size == "all":
        return Layout(pool, None)
    if not size.isdigit() or int(size) < 1:
        raise ValueError(f"bad layout {text!r}: N must be a whole number ≥ 1")
    return Layout(pool, int(size))


def steady_rate(stamps: Sequence[float], trim: float = STEADY_TRIM) -> float:
    """Rows per second between the rows at ``trim`` and ``1 - trim`` of the sorted finish
    times ``stamps``: the rate once every slot is busy and before the last ones run dry."""
    ordered = sorted(stamps)
    first = int(len(ordered) * trim)
    last = max(first, math.ceil(len(ordered) * (1 - trim)) - 1)
    span = ordered[last] - ordered[first] if ordered else 0.0
    return (last - first) / span if span > 0 else 0.0


@dataclass
class Coverage:
    """How the rows of a manifest cover input lines 1..``total``."""

    total: int
    rows: int = 0
    duplicated: int = 0
    outside: int = 0
    missing: int = 0

    @property
    def exact(self) -> bool:
        """Every line has exactly one row, and no row is for another line."""
        return self.rows == self.total and not (self.duplicated or self.outside or self.missing)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "lines_missing": self.missing,
                "lines_duplicated": self.duplicated, "rows_outside": self.outside,
                "one_row_per_line": self.exact}


def coverage(lines: Iterable[int], total: int) -> Coverage:
    """Count rows per input line (1..``total``) with one byte a line."""
    seen = bytearray(total + 1)
    result = Coverage(total)
    for line in lines:
        result.rows += 1
        if not 1 <= line <= total:
            result.outside += 1
        elif seen[line]:
            result.duplicated += 1
        else:
            seen[line] = 1
    result.missing = total - sum(seen)
    return result


#: How the breakdown of :class:`~screenshots.dev.bench.machine.CpuWindow` is grouped in the report.
CPU_GROUPS = (
    ("workers", ("celery worker",)),
    ("SeaweedFS", ("seaweedfs",)),
    ("RabbitMQ", ("rabbitmq",)),
    ("Redis", ("redis",)),
    # The dispatcher is this process's child, reaped when it exits.
    ("dispatcher", ("dispatcher", "bench (this process) ← exited children")),
    ("bench sampler", ("bench (this process)",)),
    ("other jobs", (FOREIGN,)),
)


def cpu_groups(kinds: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds per group of :data:`CPU_GROUPS` (a kind goes to the first group with an
    exact name or, for ``X ← exited children``, whose name is X); the rest is ``other``."""
    groups: dict[str, float] = {name: 0.0 for name, _ in CPU_GROUPS}
    groups["other (kernel, unattributed)"] = 0.0
    for kind, seconds in kinds.items():
        groups[_group_of(kind)] += seconds
    return groups


def _group_of(kind: str) -> str:
    for exact in (True, False):
        for name, members in CPU_GROUPS:
            for member in members:
                if kind == member or (not exact and kind == f"{member} ← exited children"):
                    return name
    return "other (kernel, unattributed)"


def write_urls(path: Path, count: int, prefix: str, tld: str = "example") -> Path:
    """``count`` distinct URLs on hosts under ``tld``, one a line (input lines 1..``count``)."""
    with path.open("w") as handle:
        for n in range(count):
            handle.write(f"http://{prefix}-{n}.{tld}/\n")
    return path


@dataclass
class ManifestSummary:
    """What a run's ``results.jsonl`` holds: line coverage, ``ok`` rows, finish times."""

    coverage: Coverage
    ok: int
    #: Finish times of the rows (seconds since the epoch), in file order.
    stamps: array[float]


def summarize_manifest(path: Path, total: int) -> ManifestSummary:
    """Stream ``path`` once (1M rows fit: a byte and a float a row)."""
    stamps: array[float] = array("d")
    ok = 0

    def lines() -> Iterable[int]:
        nonlocal ok
        with path.open(encoding="utf-8") as handle:
            for text in handle:
                row = json.loads(text)
                ok += row.get("status") == "ok"
                if row.get("finished_at"):
                    stamps.append(datetime.fromisoformat(row["finished_at"]).timestamp())
                yield int(row.get("line", 0))

    return ManifestSummary(coverage(lines(), total), ok, stamps)


@dataclass
class Snapshot:
    """Machine and per-process CPU at one moment of a run."""

    at: float  # time.time()
    machine: CpuTimes
    processes: dict[int, ProcSample]


def take_snapshot() -> Snapshot:
    return Snapshot(time.time(), read_cpu_times(), process_snapshot())


@dataclass
class DispatchSample:
    """One dispatcher run, watched from outside."""

    wall_s: float
    #: The kernel's peak RSS of the dispatcher (``ru_maxrss`` from ``wait4``): exact.
    peak_rss_mb: float
    #: The highest RSS seen by sampling every 50 ms (a cross-check of the above).
    sampled_rss_mb: float
    #: The highest sampled RSS in the middle half of the run (the publish/collect loop, not
    #: the start or the end, where the CSV and the report are written).
    mid_rss_mb: float
    #: The dispatcher's own CPU (user + system), from ``wait4``.
    cpu_s: float
    manifest: ManifestSummary
    snapshots: list[Snapshot]

    def to_dict(self) -> dict[str, Any]:
        rows = self.manifest.coverage.rows
        return {
            "wall_s": round(self.wall_s, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "sampled_peak_rss_mb": round(self.sampled_rss_mb, 1),
            "mid_run_rss_mb": round(self.mid_rss_mb, 1),
            "dispatcher_cpu_s": round(self.cpu_s, 2),
            "ok_rows": self.manifest.ok,
            **self.manifest.coverage.to_dict(),
            "urls_per_s": round(rows / self.wall_s, 1) if self.wall_s else 0.0,
        }


#: Seconds between two RSS samples of the dispatcher.
SAMPLE_INTERVAL = 0.05


def sampled_dispatch(
    env: dict[str, str],
    urls: Path,
    out: Path,
    total: int,
    *args: str,
    snapshot_every: float | None = None,
) -> DispatchSample:
    """Run the dispatcher on a fresh ``out``: its peak RSS and CPU, its rows, and snapshots
    of the whole machine's CPU every ``snapshot_every`` seconds (if given)."""
    shutil.rmtree(out, ignore_errors=True)  # a new job, not a resumed one
    log = out.with_name(f"{out.name}.dispatcher.log")
    snapshots = [take_snapshot()] if snapshot_every else []
    started = time.perf_counter()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "dispatcher.py", str(urls), "--out", str(out), "--quiet", *args],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    samples: array[float] = array("d")  # (seconds since start, RSS bytes) pairs
    status, usage = None, None
    while status is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss = psutil.Process(process.pid).memory_info().rss
            samples.extend((time.perf_counter() - started, rss))
        if snapshot_every and time.time() - snapshots[-1].at >= snapshot_every:
            snapshots.append(take_snapshot())
        time.sleep(SAMPLE_INTERVAL)
        status, usage = _reaped(process)
    wall = time.perf_counter() - started
    if status != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:]
        raise BenchError(f"dispatcher exited with status {status}: {tail} ({log})")
    manifest = summarize_manifest(out / "results.jsonl", total)
    assert usage is not None
    sampled, mid = peaks(samples[0::2], samples[1::2], wall)
    return DispatchSample(wall, usage.ru_maxrss / 1024, sampled / 2**20, mid / 2**20,
                          usage.ru_utime + usage.ru_stime, manifest, snapshots)


def peaks(times: Sequence[float], values: Sequence[float], wall: float) -> tuple[float, float]:
    """The highest of ``values``, and the highest of those taken in the middle half of
    ``wall`` (0 when none were)."""
    middle = [v for t, v in zip(times, values, strict=True) if wall / 4 <= t <= 3 * wall / 4]
    return max(values, default=0.0), max(middle, default=0.0)


def _reaped(process: subprocess.Popen[bytes]) -> tuple[int | None, Any]:
    """(exit status, rusage) once ``process`` has exited, else (None, None). ``wait4``
    reaps it, so the rusage is its own: peak RSS (``ru_maxrss``, KiB) and CPU."""
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid == 0:
        return None, None
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage


def steady_window(times: Sequence[float], start: float, end: float) -> tuple[int, int]:
    """Indices of the first and last of the sorted ``times`` inside [start, end]; the first
    and last times if fewer than two are inside."""
    inside = [n for n, at in enumerate(times) if start <= at <= end]
    if len(inside) < 2:
        return 0, len(times) - 1
    return inside[0], inside[-1]


def steady_cpu(run: DispatchSample, trim: float = STEADY_TRIM) -> dict[str, Any]:
    """Where the CPU went while the run was steady: between the snapshots inside the span of
    the rows' finish times left by ``trim``, the rows finished, the busy cores and the cores
    and CPU-ms per URL of each group of :data:`CPU_GROUPS`."""
    stamps = sorted(run.manifest.stamps)
    if not stamps or not run.snapshots:
        return {}
    lo = stamps[int(len(stamps) * trim)]
    hi = stamps[max(0, math.ceil(len(stamps) * (1 - trim)) - 1)]
    first, last = steady_window([s.at for s in run.snapshots], lo, hi)
    before, after = run.snapshots[first], run.snapshots[last]
    wall = after.at - before.at
    delta = cpu_delta(before.machine, after.machine, wall, clock_ticks())
    kinds = with_remainder(breakdown(before.processes, after.processes), delta.busy)
    rows = sum(1 for at in stamps if before.at <= at <= after.at)
    groups = cpu_groups(kinds)
    return {
        "window_s": round(wall, 2),
        "rows": rows,
        "busy_cores": round(delta.cores_busy, 2),
        "cores": {k: round(v / wall, 3) for k, v in groups.items()} if wall else {},
        "cpu_ms_per_url": {k: round(1000 * v / rows, 2) for k, v in groups.items()} if rows else {},
    }


def bench_publish(env: dict[str, str]) -> list[dict[str, Any]]:
    results = []
    for count, batch in ((3000, 1), (100_000, 50)):
        done = subprocess.run(
            [sys.executable, "-m", "screenshots.dev.bench.publish_rate", str(count), str(batch)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise BenchError(f"publish benchmark failed: {done.stderr.strip()[-300:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"publish: {results[-1]}", file=sys.stderr)
    return results


def stop_all(workers: Iterable[Worker]) -> None:
    for worker in workers:
        worker.stop()


@dataclass(frozen=True)
class ScalingConfig:
    """A worker layout and the dispatcher's batch size."""

    layout: Layout
    batch: int

    def window(self, slots: int) -> int:
        """The dispatcher's ``--max-in-flight`` for ``slots`` slots."""
        return SCALING_WINDOW_FACTOR * slots * self.batch

    @property
    def name(self) -> str:
        return f"{self.layout.name}/{self.batch}"


def parse_config(text: str) -> ScalingConfig:
    """``threads:4/10``: the layout (:func:`parse_layout`), then URLs per task message."""
    layout, _, batch = text.strip().partition("/")
    if not batch.isdigit() or int(batch) < 1:
        raise ValueError(f"bad configuration {text!r}: want LAYOUT/BATCH, e.g. threads:4/10")
    return ScalingConfig(parse_layout(layout), int(batch))


@dataclass(frozen=True)
class ScalingPlan:
    """What the scaling benchmark runs: every configuration at every slot count."""

    configs: Sequence[ScalingConfig]
    slots: Sequence[int]
    quiet_wait: float = QUIET_WAIT


def bench_scaling(env: dict[str, str], work: Path, plan: ScalingPlan) -> list[dict[str, Any]]:
    env_n = dict(env, SCREENSHOT_STUB_LATENCY_MS=str(SCALING_LATENCY_MS))
    results: list[dict[str, Any]] = []
    for config in plan.configs:
        for count in plan.slots:
            results.append(scaling_run(env_n, work, config, count, plan.quiet_wait))
            print(f"scaling: {_short(results[-1])}", file=sys.stderr)
    return results


def scaling_run(
    env: dict[str, str], work: Path, config: ScalingConfig, slots: int, quiet_wait: float
) -> dict[str, Any]:
    """One fleet of ``slots`` slots shooting ``slots`` × 50 URLs; its steady rate and CPU."""
    total = slots * SCALING_URLS_PER_SLOT
    urls = write_urls(work / f"scaling-{slots}.txt", total, f"scale{slots}")
    layout = config.layout
    workers = start_fleet(env, work / "logs", layout.concurrencies(slots), layout.pool)
    try:
        quiet, load = wait_for_quiet(max_wait=quiet_wait, step=QUIET_STEP)
        run = sampled_dispatch(
            env, urls, work / f"scaling-{slots}", total, "--engine", "stub",
            "--batch-size", str(config.batch), "--max-in-flight", str(config.window(slots)),
            snapshot_every=1.0,
        )
    finally:
        stop_all(workers)
    losses = sum(worker.log().count(BROKER_LOST) for worker in workers)
    rate = steady_rate(run.manifest.stamps)
    ideal = slots * 1000 / SCALING_LATENCY_MS
    return {
        "config": config.name, "layout": layout.name,
        "processes": len(layout.concurrencies(slots)), "fleet": layout.describe(slots),
        "slots": slots, "batch_size": config.batch, "max_in_flight": config.window(slots),
        "urls": total, **run.to_dict(),
        "steady_per_s": round(rate, 1), "ideal_per_s": ideal,
        "efficiency": round(rate / ideal, 3), "quiet_before": quiet,
        "load_before": round(load, 2), "broker_connection_losses": losses,
        "cpu": steady_cpu(run),
    }


#: What a Celery worker logs when its broker connection drops (RabbitMQ closed it after missed
#: heartbeats, i.e. the worker's main loop was stuck; or the broker restarted); its unacked
#: messages are redelivered.
BROKER_LOST = "Connection to broker lost"


def _short(run: Mapping[str, Any]) -> str:
    cpu = run["cpu"]
    cores = ", ".join(f"{k} {v:.2f}" for k, v in cpu["cores"].items() if v >= 0.02)
    return (f"{run['fleet']}: {run['steady_per_s']} URLs/s ({run['efficiency']:.0%} of ideal); "
            f"busy {cpu['busy_cores']} cores: {cores}")


@dataclass(frozen=True)
class MemoryPlan:
    """The memory runs: file sizes by URL kind (:data:`MEMORY_URL_KINDS`), and the latency-0
    stub fleet and dispatcher settings."""

    stored: Sequence[int]
    unresolvable: Sequence[int] = ()
    slots: int = MEMORY_SLOTS
    layout: str = MEMORY_LAYOUT
    batch: int = MEMORY_BATCH
    window: int = MEMORY_MAX_IN_FLIGHT


def bench_memory(env: dict[str, str], work: Path, plan: MemoryPlan) -> list[dict[str, Any]]:
    """The dispatcher's peak RSS on files of ``plan.sizes`` lines; each run records whether
    every line got exactly one row."""
    results = []
    layout = parse_layout(plan.layout)
    workers = start_fleet(env, work / "logs", layout.concurrencies(plan.slots), layout.pool)
    try:
        runs = [("stored", n) for n in plan.stored]
        runs += [("unresolvable", n) for n in plan.unresolvable]
        for kind, size in runs:
            results.append(memory_run(env, work, plan, kind, size))
            results[-1]["fleet"] = layout.describe(plan.slots)
            print(f"memory: {results[-1]}", file=sys.stderr)
    finally:
        stop_all(workers)
    return results


def memory_run(
    env: dict[str, str], work: Path, plan: MemoryPlan, kind: str, size: int
) -> dict[str, Any]:
    """One file of ``size`` distinct URLs of ``kind`` through the real dispatcher."""
    urls = write_urls(work / f"memory-{size}.txt", size, f"mem{size}", MEMORY_URL_KINDS[kind])
    out = work / f"memory-{size}"
    try:
        run = sampled_dispatch(
            env, urls, out, size, "--engine", "stub",
            "--batch-size", str(plan.batch), "--max-in-flight", str(plan.window),
            snapshot_every=MEMORY_SNAPSHOT_EVERY,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)  # ~1 KB a row
        urls.unlink()
    return {"lines": size, "urls": kind, "batch_size": plan.batch,
            "max_in_flight": plan.window, **run.to_dict(), "cpu": steady_cpu(run)}


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
    from screenshots.dev.demo.__main__ import serve

    server = serve(Path(__file__).resolve().parents[1] / "demo" / "pages")
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
            sampled_dispatch(env_s, urls, work / f"soak-{step}", end - start,
                             "--engine", "selenium")
            samples.append({"captures": end, **_tree_memory(worker.process.pid)})
            print(f"soak: {samples[-1]}", file=sys.stderr)
    finally:
        worker.stop()
        server.shutdown()
    return samples


def to_markdown(results: dict[str, Any]) -> str:
    lines = ["### Delivery at scale (`python -m screenshots.dev.bench.delivery`)", ""]
    dates = results.get("measured_at") or {}
    if dates:
        lines += ["Measured: " + ", ".join(f"{part} {when}" for part, when in dates.items()),
                  ""]
    if "publish" in results:
        lines += ["| publish (no workers, confirms) | URLs | msgs | URLs/s | msgs/s |",
                  "|---|---|---|---|---|"]
        for r in results["publish"]:
            lines.append(f"| batch {r['batch_size']} | {r['urls']} | {r['messages']} | "
                         f"{r['urls_per_s']:.0f} | {r['messages_per_s']:.0f} |")
        lines.append("")
    if "scaling" in results:
        lines += scaling_markdown(results["scaling"])
    if "memory" in results:
        lines += memory_markdown(results["memory"])
    if "soak" in results:
        lines += ["| captures (one Selenium worker) | Python PSS | Chromium PSS |",
                  "|---|---|---|"]
        for r in results["soak"]:
            lines.append(f"| {r['captures']} | {r['python_pss_mb']} MB | "
                         f"{r['chromium_pss_mb']} MB |")
        lines.append("")
    return "\n".join(lines)


#: Groups shown as columns of the scaling table's CPU part (cores while steady).
SHOWN_GROUPS = ("workers", "SeaweedFS", "RabbitMQ", "Redis", "dispatcher", "other jobs",
                "other (kernel, unattributed)")
#: The central part of the pipeline, whatever the size of the fleet: one of each.
CENTRAL_GROUPS = ("RabbitMQ", "Redis", "dispatcher")


def noisy(run: Mapping[str, Any]) -> bool:
    """Whether other jobs used more than :data:`NOISY_CORES` while the run was steady."""
    cores = run["cpu"].get("cores") or {}
    other = cores.get("other jobs", 0.0) + cores.get("other (kernel, unattributed)", 0.0)
    return bool(other > NOISY_CORES)


def central_ms(run: Mapping[str, Any]) -> float:
    """CPU-ms per URL of RabbitMQ, Redis and the dispatcher together, while steady."""
    per_url = run["cpu"].get("cpu_ms_per_url") or {}
    return sum(per_url.get(name, 0.0) for name in CENTRAL_GROUPS)


def scaling_markdown(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rate, share of ideal, and the busy cores of each process group while steady."""
    lines = [
        f"Latency-only stub: each capture sleeps {SCALING_LATENCY_MS} ms; ideal = slots × "
        f"{1000 / SCALING_LATENCY_MS:g}/s. Steady rate from the rows' finish times (first and "
        f"last {STEADY_TRIM:.0%} of rows left out); CPU in busy cores over the same span; "
        f"central = RabbitMQ + Redis + dispatcher, CPU-ms per URL.",
        "",
        "| slots | worker processes | batch, window | URLs/s | of ideal | of N × 1 slot | "
        "machine busy | " + " | ".join(SHOWN_GROUPS) + " | central ms/URL |",
        "|---" * (8 + len(SHOWN_GROUPS)) + "|",
    ]
    single = {r.get("config"): r["steady_per_s"] for r in runs if r["slots"] == 1}
    for r in runs:
        cores = r["cpu"]["cores"]
        shown = " | ".join(f"{cores.get(name, 0):.2f}" for name in SHOWN_GROUPS)
        one = single.get(r.get("config"))
        linear = f"{r['steady_per_s'] / (r['slots'] * one):.0%}" if one else "—"
        lost = r.get("broker_connection_losses") or 0
        flag = f" ⚠ {lost} lost broker connection{'s' * (lost > 1)}" if lost else ""
        flag += " ⚠ other jobs" if noisy(r) else ""
        lines.append(
            f"| {r['slots']} | {r['fleet']} | {r['batch_size']}, {r['max_in_flight']} | "
            f"{r['steady_per_s']}{flag} | {r['efficiency']:.0%} | {linear} | "
            f"{r['cpu']['busy_cores']} | {shown} | {central_ms(r):.2f} |"
        )
    if any(noisy(r) for r in runs):
        lines += ["", f"⚠ other jobs: other processes (and unattributed time) used more than "
                  f"{NOISY_CORES:g} cores while the run was steady; its rate is lower than this "
                  f"machine can do."]
    if any(r.get("broker_connection_losses") for r in runs):
        lines += ["", "⚠ lost broker connection: a worker of the run logged it (RabbitMQ "
                  "closes a connection whose heartbeats stop, i.e. the worker's main loop was "
                  "stuck; or the broker restarted): its unacknowledged tasks ran again. The "
                  "worker's log in bench-output/delivery/logs says which."]
    lines.append("")
    return lines


def memory_markdown(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per memory run, then the issue's criteria for each URL kind."""
    lines = [
        "| URLs | lines | dispatcher peak RSS | RSS mid-run | rows: ok / error, one per line? | "
        "URLs/s | wall | CPU-ms/URL: workers, SeaweedFS, central | fleet; batch; window |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        check = "yes" if r["one_row_per_line"] else (
            f"**no** ({r['lines_missing']} missing, {r['lines_duplicated']} duplicated)")
        lines.append(
            f"| {r.get('urls', 'stored')} | {r['lines']:,} | {r['peak_rss_mb']} MB | "
            f"{r.get('mid_run_rss_mb', '—')} MB | {r['ok_rows']:,} / "
            f"{r['rows'] - r['ok_rows']:,}, {check} | {r['urls_per_s']} | {r['wall_s']:.0f} s "
            f"| {_memory_cpu(r)} | {r['fleet']}; {r['batch_size']}; {r['max_in_flight']} |"
        )
    return [*lines, "", *memory_verdicts(runs), ""]


def _memory_cpu(run: Mapping[str, Any]) -> str:
    per_url = (run.get("cpu") or {}).get("cpu_ms_per_url")
    if not per_url:
        return "—"
    return (f"{per_url.get('workers', 0):.2f}, {per_url.get('SeaweedFS', 0):.2f}, "
            f"{central_ms(run):.2f}")


#: The issue's bounds: peak dispatcher RSS at most this, at any file size...
MEMORY_CEILING_MB = 150.0
#: ...and the peak at 100k lines within this share of the peak at 10k.
MEMORY_GROWTH_LIMIT = 0.15


def memory_verdicts(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """For each URL kind: the highest peak against :data:`MEMORY_CEILING_MB`, and the peak at
    100k lines against the peak at 10k (:data:`MEMORY_GROWTH_LIMIT`)."""
    verdicts = []
    for kind in dict.fromkeys(r["urls"] for r in runs):
        peaks = {r["lines"]: r["peak_rss_mb"] for r in runs if r["urls"] == kind}
        top = max(peaks, key=peaks.__getitem__)
        text = (f"- {kind}: highest peak {peaks[top]} MB ({top:,} lines): "
                f"{'within' if peaks[top] <= MEMORY_CEILING_MB else '**above**'} "
                f"{MEMORY_CEILING_MB:g} MB")
        if 10_000 in peaks and 100_000 in peaks:
            growth = peaks[100_000] / peaks[10_000] - 1
            verdict = "within" if abs(growth) <= MEMORY_GROWTH_LIMIT else "**not within**"
            text += (f"; 100k vs 10k lines: {growth:+.0%} ({verdict} "
                     f"±{MEMORY_GROWTH_LIMIT:.0%})")
        if all(r["one_row_per_line"] for r in runs if r["urls"] == kind):
            text += "; every line got exactly one row"
        verdicts.append(text)
    return verdicts


def _numbers(text: str) -> list[int]:
    """``"10000,100000"`` → ``[10000, 100000]``; ``""`` → ``[]``."""
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.bench.delivery")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"parts to run (default {','.join(PARTS)})")
    parser.add_argument("--slots", default="1,2,4,8,16,32",
                        help="worker slot counts of the scaling runs (default 1,2,4,8,16,32)")
    parser.add_argument("--scaling", default=SCALING_CONFIGS,
                        help="LAYOUT/BATCH configurations, comma-separated; LAYOUT is "
                             f"threads:N, prefork:N or threads:all (default {SCALING_CONFIGS})")
    parser.add_argument("--quiet-wait", type=float, default=QUIET_WAIT,
                        help=f"seconds to wait for a quiet machine before each scaling run "
                             f"(default {QUIET_WAIT:g})")
    parser.add_argument("--memory-lines", default=MEMORY_LINES,
                        help="URL file sizes of the memory runs with stored captures "
                             f"(default {MEMORY_LINES})")
    parser.add_argument("--memory-unresolvable-lines", default=MEMORY_UNRESOLVABLE_LINES,
                        help="URL file sizes of the memory runs with unresolvable hosts "
                             f"(error rows, no S3; default {MEMORY_UNRESOLVABLE_LINES})")
    parser.add_argument("--memory-slots", type=int, default=MEMORY_SLOTS,
                        help=f"stub worker slots behind the memory runs (default {MEMORY_SLOTS})")
    parser.add_argument("--memory-layout", default=MEMORY_LAYOUT,
                        help=f"their layout (default {MEMORY_LAYOUT})")
    parser.add_argument("--memory-batch", type=int, default=MEMORY_BATCH,
                        help=f"URLs per task message (default {MEMORY_BATCH})")
    parser.add_argument("--memory-window", type=int, default=MEMORY_MAX_IN_FLIGHT,
                        help=f"the dispatcher's --max-in-flight (default {MEMORY_MAX_IN_FLIGHT})")
    parser.add_argument("--soak-captures", type=int, default=2000)
    args = parser.parse_args(argv)
    wanted = set(args.only.split(","))
    try:
        plan = ScalingPlan([parse_config(text) for text in args.scaling.split(",")],
                           _numbers(args.slots), args.quiet_wait)
        parse_layout(args.memory_layout)
        memory = MemoryPlan(_numbers(args.memory_lines), _numbers(args.memory_unresolvable_lines),
                            args.memory_slots, args.memory_layout, args.memory_batch,
                            args.memory_window)
    except ValueError as exc:
        parser.error(str(exc))
    work = OUT / "delivery"
    work.mkdir(parents=True, exist_ok=True)
    # A fresh store every run: an interrupted run leaves its SeaweedFS data (and bucket) here,
    # and the next run's bucket creation failed on it ("BucketAlreadyOwnedByYou").
    shutil.rmtree(work / "s3", ignore_errors=True)
    vhost, redis, s3 = Vhost(), RedisDb(), S3(work / "s3")
    results: dict[str, Any] = {}
    try:
        vhost.create()
        redis.flush()
        s3.start()
        env = service_env(
            s3.env(),
            CELERY_BROKER_URL=vhost.url,
            CELERY_RESULT_BACKEND=redis.url,
            SCREENSHOT_QUEUE="delivery-bench",
        )
        if "publish" in wanted:
            results["publish"] = bench_publish(env)
        if "scaling" in wanted:
            results["scaling"] = bench_scaling(env, work, plan)
        if "memory" in wanted:
            results["memory"] = bench_memory(env, work, memory)
        if "soak" in wanted:
            results["soak"] = bench_soak(env, work, args.soak_captures)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        s3.stop()
        vhost.delete()
        with contextlib.suppress(BenchError):
            redis.flush()  # the dispatchers' job sentinels (6 h TTL), whatever a run left
    results = merge_results(_previous(OUT / "delivery.json"), results,
                            datetime.now().isoformat(timespec="seconds"))
    (OUT / "delivery.json").write_text(json.dumps(results, indent=2))
    (OUT / "delivery.md").write_text(to_markdown(results))
    print(to_markdown(results))
    return 0


#: The parts of the benchmark, in the order they run and are reported.
PARTS = ("publish", "scaling", "memory", "soak")


def merge_results(previous: Mapping[str, Any], new: Mapping[str, Any], when: str) -> dict[str, Any]:
    """``new`` parts, plus the parts of ``previous`` not run again (``--only``), with the
    time each part was measured under ``measured_at``."""
    dates = dict(previous.get("measured_at") or {})
    merged = {part: previous[part] for part in PARTS if part in previous}
    for part in PARTS:
        if part in new:
            merged[part] = new[part]
            dates[part] = when
    merged["measured_at"] = {part: dates.get(part, "?") for part in PARTS if part in merged}
    return merged


def _previous(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


if __name__ == "__main__":
    sys.exit(main())
