"""The distributed pipeline, measured: dispatcher → RabbitMQ → Celery workers → S3 → Redis.

One measured run = one ``python dispatcher.py URLS --out DIR`` process, timed from its start
to its exit, with the machine's CPU counted over the same window. Workers are started (and
warmed up by a short unmeasured job) before any window opens. Each worker consumes its own
queue (``SCREENSHOT_QUEUE``) and writes under its own key prefix, so several can stay up,
idle and warm, while another system is measured, and no run reuses another's objects.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from screenshots.core.settings import load_settings
from screenshots.delivery.distributed import default_batch_size
from screenshots.dev.bench import machine
from screenshots.dev.bench.corpus import BenchError, write_url_file
from screenshots.dev.bench.machine import CpuWindow
from screenshots.dev.bench.services import Worker, dispatch, start_worker
from screenshots.dev.bench.stats import RunStats, from_window


def read_rows(out: Path) -> list[dict[str, object]]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def summarize_rows(
    rows: Sequence[dict[str, object]],
) -> tuple[int, int, float | None, float | None, list[str]]:
    """(ok, errors, mean bytes of ok rows, median duration_ms of ok rows, error samples)."""
    ok_rows = [r for r in rows if r.get("status") == "ok"]
    errors = [r for r in rows if r.get("status") != "ok"]
    sizes = [float(b) for r in ok_rows if isinstance(b := r.get("bytes"), int)]
    durations = [float(d) for r in ok_rows if isinstance(d := r.get("duration_ms"), int)]
    samples = [f"{r.get('url')}: {r.get('error')}" for r in errors[:5]]
    return (
        len(ok_rows),
        len(errors),
        statistics.fmean(sizes) if sizes else None,
        statistics.median(durations) if durations else None,
        samples,
    )


def warn_if_busy(label: str) -> float:
    """Wait for a quiet machine (bounded); warn if it stays busy. Returns the load seen."""
    quiet, load = machine.wait_for_quiet()
    if not quiet:
        print(f"bench: warning: the machine is busy ({load:.2f} cores) before {label}",
              file=sys.stderr, flush=True)
    return load


def measured_dispatch(
    label: str,
    env: dict[str, str],
    urls_file: Path,
    url_count: int,
    out: Path,
    args: Sequence[str],
    settings: dict[str, object],
    timeout: float,
) -> RunStats:
    """Run the dispatcher once inside a CPU window and read its manifest."""
    pre_load = warn_if_busy(label)
    with CpuWindow() as window:
        dispatch(env, urls_file, out, *args, timeout=timeout)
    ok, errors, size, duration, samples = summarize_rows(read_rows(out))
    if ok + errors != url_count:
        raise BenchError(f"{label}: {url_count} URLs in, {ok + errors} rows out")
    return from_window(
        label,
        window,
        urls=url_count,
        ok=ok,
        errors=errors,
        bytes_mean=size,
        duration_ms_median=duration,
        error_samples=samples,
        settings=settings,
        pre_load=pre_load,
    )


class BrowserWorker:
    """One Celery worker with a browser engine (prefork ``-c concurrency``), kept warm;
    ``tabs`` sets its ``SCREENSHOT_TABS`` (default: the shipped default)."""

    def __init__(
        self,
        env: dict[str, str],
        out_root: Path,
        concurrency: int,
        timeout: float,
        tag: str = "",
        engine: str = "selenium",
        isolation: str = "standard",
        tabs: int | None = None,
    ) -> None:
        self.concurrency = concurrency
        if tabs is not None:
            env = dict(env, SCREENSHOT_TABS=str(tabs))
            tag = "-".join(filter(None, [tag, f"{tabs} tabs"]))
        self.engine = engine
        if isolation != "standard":
            tag = "-".join(filter(None, [tag, isolation]))
        self.name = f"{engine}-c{concurrency}" + (f"-{tag.replace(' ', '-')}" if tag else "")
        self.env = dict(
            env,
            SCREENSHOT_QUEUE=f"bench-{self.name}",
            SCREENSHOT_KEY_PREFIX=f"bench-{self.name}/",
            SCREENSHOT_ISOLATION=isolation,
        )
        self.out_root = out_root
        self.timeout = timeout
        self.worker: Worker | None = None
        self.label = f"{engine} prefork -c {concurrency}" + (f" ({tag})" if tag else "")
        self.settings: dict[str, object] = {
            "engine": engine, "pool": "prefork", "concurrency": concurrency,
            # The dispatcher's default batch: the workers' SCREENSHOT_TABS.
            "batch_size": default_batch_size(load_settings(self.env)),
            "workers": 1, "isolation": isolation,
        }
        self._runs = 0

    def start(self, warmup: Sequence[str]) -> BrowserWorker:
        """Start the worker and shoot ``warmup`` (not measured) so every browser is up."""
        self.worker = start_worker(self.env, self.out_root / "logs", self.concurrency, "prefork")
        if warmup:
            file = write_url_file(self.out_root / f"{self.name}-warmup.txt", warmup)
            warm = dispatch(self.env, file, self.out_root / f"pipeline-{self.name}-warmup",
                            "--engine", self.engine, timeout=self.timeout)
            ok, _, _, _, samples = summarize_rows(read_rows(warm.out))
            if ok == 0:
                raise BenchError(
                    f"{self.label}: the warm-up job shot nothing "
                    f"({samples[0] if samples else 'no rows'})"
                )
        return self

    def shoot(self, urls: Sequence[str]) -> RunStats:
        """One measured dispatcher run over ``urls``."""
        self._runs += 1
        file = write_url_file(self.out_root / f"{self.name}-{self._runs}.txt", urls)
        return measured_dispatch(
            self.label, self.env, file, len(urls),
            self.out_root / f"pipeline-{self.name}-{self._runs}", ["--engine", self.engine],
            self.settings,
            self.timeout,
        )

    def stop(self) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            worker.stop()


def run_stub_pipeline(
    env: dict[str, str],
    out_root: Path,
    pool: str,
    concurrency: int,
    runs: Sequence[tuple[Path, int, int]],
    timeout: float,
) -> list[RunStats]:
    """One worker (``pool``, ``-c concurrency``), the stub engine; ``runs`` are
    (URL file, URL count, batch size), measured one after the other on the same worker."""
    worker: Worker | None = None
    results = []
    env = dict(
        env,
        SCREENSHOT_QUEUE=f"bench-stub-{pool}{concurrency}",
        SCREENSHOT_KEY_PREFIX=f"bench-stub-{pool}{concurrency}/",
    )
    try:
        worker = start_worker(env, out_root / "logs", concurrency, pool)
        # Warm the pool (imports, S3 client, connections) with a short unmeasured job.
        warm_file = write_url_file(
            out_root / "stub-warmup.txt", [f"http://warmup.example/{n}" for n in range(200)]
        )
        dispatch(env, warm_file, out_root / f"stub-{pool}{concurrency}-warmup",
                 "--engine", "stub", "--batch-size", "10", timeout=timeout)
        for file, count, batch in runs:
            label = f"stub {pool} -c {concurrency} batch {batch}"
            results.append(
                measured_dispatch(
                    label,
                    env,
                    file,
                    count,
                    out_root / f"stub-{pool}{concurrency}-b{batch}-n{count}",
                    ["--engine", "stub", "--batch-size", str(batch)],
                    {"engine": "stub", "pool": pool, "concurrency": concurrency,
                     "batch_size": batch, "workers": 1},
                    timeout,
                )
            )
        return results
    finally:
        if worker is not None:
            worker.stop()
