"""``python -m screenshots.dev.bench.engines``: Selenium against Playwright on the same pages
(issue #5).

Both browser engines shoot the same ``--pages`` pages of Debian's python3.11-doc (served on
loopback by :class:`screenshots.dev.bench.corpus.CorpusServer`; PNG 1280x800 after the load event)
through
the product's own embedded path, the command a user runs without a broker::

    python dispatcher.py URLS --engine selenium|playwright --concurrency C --out DIR --quiet

at every ``--concurrency`` level. No RabbitMQ, Redis or S3: screenshots are stored in DIR (a
temporary directory, removed at the end). The egress policy stays on, with the corpus
server's ``127.0.0.1`` (and nothing else) in ``SCREENSHOT_EGRESS_ALLOW``, as ``make demo``
does; every other ``SCREENSHOT_*``/``CELERY_*`` variable of the caller is dropped.

Method:

- Warm-up: each engine first shoots ``--warmup`` pages (under ``?warmup`` URLs, not measured)
  at the highest concurrency: the OS file cache, Python's bytecode, Chromium's files. Every
  measured run is a new dispatcher process, so starting and closing its browsers is inside
  every measured run, as it is for a user.
- Rounds: the pages are cut into ``--rounds`` interleaved parts; in every round each
  (engine, concurrency) shoots that part, the two engines of one concurrency back to back,
  and which engine goes first alternates from round to round, so a slow spell of the machine
  weighs on both engines alike. Each row's figures are sums over the rounds.
- Before each measured run the bench waits up to ``--quiet-wait`` seconds for an idle
  machine (and warns when it stays busy).

Figures, per engine and concurrency:

- screenshots/s: ok rows / wall time of the dispatcher processes (Python and browser
  start-up included);
- steady screenshots/s: the same run without its start: ok rows after the first
  ``concurrency`` (the browser's start-up and its tabs' first, cold pages) over the time
  between their finishes (the rows' ``finished_at``). A worker lives for thousands of pages,
  so this is its rate per screenshot; the first figure adds one start per ``--pages /
  --rounds`` pages;
- CPU-s per screenshot, dispatcher tree: user + system CPU of the dispatcher and all its
  descendants (ChromeDriver, Chromium's processes, Playwright's driver), from
  ``RUSAGE_CHILDREN`` once they are reaped; this process adopts orphans (child subreaper),
  so a browser process killed after its parent is counted too;
- CPU-s per screenshot, machine: the whole machine's busy time over the runs (/proc/stat:
  the static server and any other job included);
- p50 and p90 of the ok rows' ``duration_ms`` (capture and storing, all attempts),
  ``navigation_ms`` and ``capture_ms`` (see :mod:`screenshots.core.result`);
- errors: every URL must end with an ``ok`` row taken by the engine asked for; anything
  else is counted, sampled and flagged;
- CPU not the bench's: 1 - (CPU of the processes this bench started) / (machine busy);
  above 10% (other jobs on the machine) the row is flagged ⚠.

Then, per concurrency, the ratio playwright / selenium of screenshots per second (of the
sums, and of each round alone: how far the interleaving agrees with itself) and of CPU per
screenshot.

Results: ``OUT/engines.json`` and ``OUT/engines.md`` (printed too). Exit status 0 when every
URL of every run ended ``ok``; 1 when a run could not be done (one line on stderr says why);
2 for bad arguments; 3 when some URL did not end ``ok`` (the results are written and say so).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from screenshots.core.settings import DEFAULT_CHROMIUM, FULL_CHROMIUM
from screenshots.dev.bench import machine, report
from screenshots.dev.bench.corpus import (
    DOC_ROOT,
    BenchError,
    CorpusServer,
    list_pages,
    page_urls,
    spread,
    warmup_urls,
    write_url_file,
)
from screenshots.dev.bench.machine import CpuWindow
from screenshots.dev.bench.report import ratio
from screenshots.dev.bench.stats import chunks

#: The engines compared, the baseline first: ratios are ``ENGINES[1] / ENGINES[0]``.
ENGINES = ("selenium", "playwright")
#: Corpus pages shot by every (engine, concurrency) (``--pages``), spread over the corpus:
#: 200 per run at 2 rounds, so a run's browser start (Playwright also starts its Node.js
#: driver) weighs on it no more than on a worker's first few hundred pages (docs/benchmarks.md:
#: at 50 pages per run the start was a large part of the gap between the engines).
DEFAULT_PAGES = 400
#: ``dispatcher.py --concurrency`` levels (``--concurrency``): 4 is ``SCREENSHOT_TABS``'s
#: default on 2 cores, what a worker runs as shipped.
DEFAULT_CONCURRENCY = "1,2,4"
#: Interleaved rounds (``--rounds``); 2 lets each engine go first once per concurrency.
DEFAULT_ROUNDS = 2
#: Warm-up pages per engine, not measured (``--warmup``).
DEFAULT_WARMUP = 10
#: Seconds to wait for an idle machine before each measured run (``--quiet-wait``).
DEFAULT_QUIET_WAIT = 10.0
#: Seconds one dispatcher run may take before the benchmark gives up (``--run-timeout``).
DEFAULT_RUN_TIMEOUT = 600.0
#: Output directory (``--out``).
DEFAULT_OUT = Path("bench-output")
#: Share of the machine's CPU not used by the bench above which figures are flagged.
NOISY = 0.10
#: Playwright's throughput over Selenium's that issue #15 asks for, at least.
FLOOR_RATIO = 0.9
#: The only address exempt from the egress policy: the corpus server's.
EGRESS_ALLOW = "127.0.0.1"
#: Timing columns of the result rows reported as p50 / p90 (milliseconds).
TIMING_COLUMNS = ("duration_ms", "navigation_ms", "capture_ms")
#: Error samples kept per (engine, concurrency).
MAX_SAMPLES = 5
#: Kinds of :func:`screenshots.dev.bench.machine.breakdown` that are not this bench's processes.
NOT_OURS = (machine.FOREIGN, *machine.SHARED_KINDS)


# -- arguments -----------------------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]``: distinct positive integers in the order given."""
    levels: list[int] = []
    for item in text.split(","):
        value = int(item.strip())
        if value < 1:
            raise ValueError(f"{value} is not a positive number")
        if value not in levels:
            levels.append(value)
    if not levels:
        raise ValueError("no level")
    return levels


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m screenshots.dev.bench.engines", description=(__doc__ or "").split("\n")[0]
    )
    add = parser.add_argument
    add("--pages", type=int, default=DEFAULT_PAGES, help=f"pages (default {DEFAULT_PAGES})")
    add(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        help=f"dispatcher --concurrency levels (default {DEFAULT_CONCURRENCY})",
    )
    add("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"rounds (default {DEFAULT_ROUNDS})")
    add(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"warm-up pages per engine (default {DEFAULT_WARMUP})",
    )
    add(
        "--chromium",
        default=DEFAULT_CHROMIUM,
        help=f"SCREENSHOT_CHROMIUM of both engines (default {DEFAULT_CHROMIUM}; the full "
        f"browser: {FULL_CHROMIUM})",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=DEFAULT_QUIET_WAIT,
        help=f"seconds to wait for a quiet machine per run (default {DEFAULT_QUIET_WAIT:g})",
    )
    add(
        "--run-timeout",
        type=float,
        default=DEFAULT_RUN_TIMEOUT,
        help=f"seconds one dispatcher run may take (default {DEFAULT_RUN_TIMEOUT:g})",
    )
    add("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    add("--check-floors", action="store_true", help="exit 3 when the floor is not met")
    args = parser.parse_args(argv)
    try:
        args.concurrencies = parse_levels(args.concurrency)
    except ValueError:
        parser.error("--concurrency takes positive numbers separated by commas, e.g. 1,2")
    if args.pages < 1:
        parser.error("--pages must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return args


# -- pure helpers --------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``, interpolated between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def schedule(concurrencies: Sequence[int], round_index: int) -> list[tuple[str, int]]:
    """The (engine, concurrency) runs of round ``round_index`` (0-based), in order: the
    engines of one concurrency back to back, the first of them alternating by round."""
    engines = ENGINES if round_index % 2 == 0 else tuple(reversed(ENGINES))
    return [(engine, level) for level in concurrencies for engine in engines]


def check_rows(
    rows: Sequence[Mapping[str, Any]], urls: Sequence[str], engine: str
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The ok rows of a run over ``urls``, and one line per URL that did not end ``ok``
    with ``engine`` (an error row, another engine's row, no row at all)."""
    last: dict[int, Mapping[str, Any]] = {}
    for item in rows:
        number = item.get("line")
        if isinstance(number, int):
            last[number] = item  # a resumed run appends: the last row of a line counts
    ok: list[Mapping[str, Any]] = []
    problems: list[str] = []
    for line, url in enumerate(urls, start=1):
        row = last.get(line)
        if row is None:
            problems.append(f"{url}: no row")
        elif row.get("status") != "ok":
            problems.append(f"{url}: {row.get('error')}")
        elif row.get("engine") != engine:
            problems.append(f"{url}: shot by {row.get('engine')!r}, not {engine!r}")
        else:
            ok.append(row)
    return ok, problems


def timings(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """The :data:`TIMING_COLUMNS` of ``rows`` (integers only)."""
    found: dict[str, list[int]] = {column: [] for column in TIMING_COLUMNS}
    for row in rows:
        for column in TIMING_COLUMNS:
            value = row.get(column)
            if isinstance(value, int) and not isinstance(value, bool):
                found[column].append(value)
    return found


def own_cpu(kinds: Mapping[str, float]) -> float:
    """CPU seconds of the processes this bench started, from a CPU breakdown."""
    return sum(
        seconds
        for kind, seconds in kinds.items()
        if kind not in NOT_OURS and not kind.startswith("unattributed")
    )


def steady(rows: Iterable[Mapping[str, Any]], skip: int) -> tuple[int, float]:
    """(shots, seconds) of a run after its start: the rows finished after the first
    ``skip + 1`` and the time from that row's finish to the last one's; ``(0, 0.0)`` when
    fewer than three rows are left to time."""
    stamps = sorted(
        datetime.fromisoformat(value).timestamp()
        for row in rows
        if isinstance(value := row.get("finished_at"), str)
    )
    if len(stamps) - skip < 3:
        return 0, 0.0
    return len(stamps) - 1 - skip, stamps[-1] - stamps[skip]


# -- figures -------------------------------------------------------------------------------


@dataclass
class Round:
    """One measured dispatcher run."""

    urls: int
    ok: int
    wall: float
    #: CPU-s of the dispatcher and its descendants.
    tree: float
    #: CPU-s of the whole machine (/proc/stat).
    busy: float
    #: CPU-s of the processes this bench started (the tree, the static server, itself).
    own: float
    pre_load: float = 0.0
    problems: list[str] = field(default_factory=list)
    timings: dict[str, list[int]] = field(default_factory=dict)
    #: :func:`steady`'s shots and seconds of this run.
    steady_shots: int = 0
    steady_wall: float = 0.0
    #: CPU-s of the tree by process kind (:class:`~screenshots.dev.bench.machine.TreeSampler`).
    kinds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0


@dataclass
class System:
    """One engine at one concurrency: its rounds and their sums."""

    engine: str
    concurrency: int
    rounds: list[Round] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.engine} -c {self.concurrency}"

    def total(self, name: str) -> float:
        return float(sum(getattr(run, name) for run in self.rounds))

    def per_shot(self, name: str) -> float | None:
        ok = self.total("ok")
        return self.total(name) / ok if ok else None

    @property
    def rate(self) -> float:
        wall = self.total("wall")
        return self.total("ok") / wall if wall > 0 else 0.0

    @property
    def steady_rate(self) -> float | None:
        wall = self.total("steady_wall")
        return self.total("steady_shots") / wall if wall > 0 else None

    @property
    def not_own(self) -> float:
        busy = self.total("busy")
        return max(0.0, 1.0 - self.total("own") / busy) if busy > 0 else 0.0

    def kinds_per_shot(self) -> dict[str, float]:
        """CPU-ms per ok shot by process kind, summed over the rounds, largest first."""
        ok = self.total("ok")
        found: dict[str, float] = {}
        for run in self.rounds:
            for kind, seconds in run.kinds.items():
                found[kind] = found.get(kind, 0.0) + seconds
        return {
            kind: round(1000 * seconds / ok, 1)
            for kind, seconds in sorted(found.items(), key=lambda item: -item[1])
        } if ok else {}

    def quantiles(self) -> dict[str, dict[str, float | None]]:
        found: dict[str, dict[str, float | None]] = {}
        for column in TIMING_COLUMNS:
            values = [v for run in self.rounds for v in run.timings.get(column, [])]
            found[column] = {"p50": quantile(values, 0.5), "p90": quantile(values, 0.9)}
        return found

    def to_dict(self) -> dict[str, Any]:
        urls = int(self.total("urls"))
        ok = int(self.total("ok"))
        problems = [p for run in self.rounds for p in run.problems]
        return {
            "engine": self.engine,
            "concurrency": self.concurrency,
            "urls": urls,
            "ok": ok,
            "errors": urls - ok,
            "wall": round(self.total("wall"), 3),
            "rate": self.rate,
            "steady_rate": self.steady_rate,
            "tree_cpu": round(self.total("tree"), 3),
            "tree_cpu_per_shot": self.per_shot("tree"),
            "machine_cpu": round(self.total("busy"), 3),
            "machine_cpu_per_shot": self.per_shot("busy"),
            "own_cpu": round(self.total("own"), 3),
            "not_own": self.not_own,
            "pre_load": round(max((run.pre_load for run in self.rounds), default=0.0), 3),
            "timings_ms": self.quantiles(),
            "cpu_ms_per_shot_by_kind": self.kinds_per_shot(),
            "round_rates": [run.rate for run in self.rounds],
            "error_samples": problems[:MAX_SAMPLES],
        }


def comparisons(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per concurrency where both engines ran: ratios ``ENGINES[1] / ENGINES[0]`` of
    screenshots/s (of the sums and of each round) and of CPU per screenshot."""
    by_key = {(run["engine"], run["concurrency"]): run for run in runs}
    base_name, other_name = ENGINES
    found = []
    for level in sorted({run["concurrency"] for run in runs}):
        base, other = by_key.get((base_name, level)), by_key.get((other_name, level))
        if base is None or other is None:
            continue
        found.append(
            {
                "concurrency": level,
                f"{base_name}_rate": base["rate"],
                f"{other_name}_rate": other["rate"],
                "rate_ratio": ratio(other["rate"], base["rate"]),
                "steady_ratio": ratio(other.get("steady_rate"), base.get("steady_rate")),
                "round_rate_ratios": [
                    ratio(o, b)
                    for o, b in zip(other["round_rates"], base["round_rates"], strict=False)
                ],
                "tree_cpu_ratio": ratio(other["tree_cpu_per_shot"], base["tree_cpu_per_shot"]),
                "machine_cpu_ratio": ratio(
                    other["machine_cpu_per_shot"], base["machine_cpu_per_shot"]
                ),
            }
        )
    return found


# -- the report ----------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pair(values: Mapping[str, float | None]) -> str:
    return f"{_num(values.get('p50'), 0)} / {_num(values.get('p90'), 0)}"


def _share(share: float) -> str:
    return f"{100 * share:.0f}%" + (" ⚠" if share > NOISY else "")


def run_row(run: Mapping[str, Any]) -> str:
    """One Markdown table row of a (engine, concurrency)."""
    times = run["timings_ms"]
    errors = f"**{run['errors']}**" if run["errors"] else "0"
    return (
        f"| {run['engine']} | {run['concurrency']} | {run['urls']} | {run['ok']} | {errors} | "
        f"{_num(run['wall'], 1)} | {_num(run['rate'])} | {_num(run.get('steady_rate'))} | "
        f"{_num(run['tree_cpu_per_shot'], 3)} | {_num(run['machine_cpu_per_shot'], 3)} | "
        f"{_pair(times['duration_ms'])} | {_pair(times['navigation_ms'])} | "
        f"{_pair(times['capture_ms'])} | {_share(run['not_own'])} |"
    )


def ratio_row(item: Mapping[str, Any]) -> str:
    base_name, other_name = ENGINES
    rounds = ", ".join(_num(value) for value in item["round_rate_ratios"])
    return (
        f"| {item['concurrency']} | {_num(item[f'{base_name}_rate'])} | "
        f"{_num(item[f'{other_name}_rate'])} | **{_num(item['rate_ratio'])}** | {rounds} | "
        f"**{_num(item.get('steady_ratio'))}** | "
        f"{_num(item['tree_cpu_ratio'])} | {_num(item['machine_cpu_ratio'])} |"
    )


def floor_misses(ratios: Sequence[Mapping[str, Any]], key: str = "rate_ratio") -> list[str]:
    """The concurrency levels at which the second engine's throughput (``key``: with its
    start-up, or ``steady_ratio``) is under :data:`FLOOR_RATIO` of the first's (issue #15:
    Playwright at least 0.9x Selenium)."""
    return [
        str(item["concurrency"])
        for item in ratios
        if item.get(key) is None or item[key] < FLOOR_RATIO
    ]


def floor_lines(ratios: Sequence[Mapping[str, Any]]) -> list[str]:
    base_name, other_name = ENGINES
    lines = []
    for name, key in (("throughput", "rate_ratio"), ("steady throughput", "steady_ratio")):
        missed = floor_misses(ratios, key)
        verdict = "met" if not missed else f"NOT met at concurrency {', '.join(missed)}"
        lines.append(
            f"- {other_name} / {base_name} {name}, at every concurrency: floor {FLOOR_RATIO}: "
            f"**{verdict}**."
        )
    return lines


def _warnings(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    noisy = [run for run in runs if run["not_own"] > NOISY]
    if noisy:
        lines += [
            f"**⚠ Other jobs used over {100 * NOISY:.0f}% of the machine's CPU during "
            f"{len(noisy)} of {len(runs)} rows (⚠ in the last column): their rates are lower "
            "than this machine can do, and the ratios are only as good as the interleaving. "
            "Rerun on an idle machine for figures to publish.**",
            "",
        ]
    errors = sum(run["errors"] for run in runs)
    if errors:
        samples = [sample for run in runs for sample in run["error_samples"]][:MAX_SAMPLES]
        lines += [
            f"**⚠ {errors} URLs did not end with an `ok` row** (e.g. "
            + "; ".join(f"`{s}`" for s in samples)
            + ").",
            "",
        ]
    return lines


def markdown(results: Mapping[str, Any]) -> str:
    """The results as Markdown: what was measured, the table, the ratios, the notes."""
    meta, corpus = results["machine"], results["corpus"]
    base_name, other_name = ENGINES
    runs = results["runs"]
    lines = [
        f"Measured by `{results['command']}` on {meta['date']}: {meta['cpus']} cores, "
        f"{meta['chromium']}, Python {meta['python']}. Background load before the runs: "
        f"{meta['background_cores_busy']:.2f} busy cores. Source: {results['source']}.",
        "",
        *_warnings(runs),
        f"{corpus['pages']} pages of Debian's python3.11-doc served on loopback, PNG "
        f"{corpus['width']}x{corpus['height']} after load. Each measured run is one "
        "`dispatcher.py URLS --engine E --concurrency C --quiet` (embedded mode: no broker, "
        "screenshots on local disk; egress policy on, 127.0.0.1 allowed), browser start-up "
        f"included. Each engine warmed up first ({corpus['warmup']} pages, not measured); "
        f"then {corpus['rounds']} interleaved rounds, each engine first in every other one.",
        "",
        "| engine | concurrency | URLs | ok | errors | wall s | screenshots/s "
        "| steady screenshots/s "
        "| CPU-s per shot, dispatcher tree | CPU-s per shot, machine "
        "| per URL ms p50 / p90 | navigation ms p50 / p90 | capture ms p50 / p90 "
        "| CPU not the bench's |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(run_row(run) for run in runs),
        "",
    ]
    if results["ratios"]:
        lines += [
            f"| concurrency | {base_name} shots/s | {other_name} shots/s "
            f"| **{other_name} / {base_name} throughput** | the same, per round "
            f"| **steady** | {other_name} / {base_name} CPU per shot (tree) | the same (machine) |",
            "|---|---|---|---|---|---|---|---|",
            *(ratio_row(item) for item in results["ratios"]),
            "",
            *floor_lines(results["ratios"]),
            "",
        ]
    lines += kinds_table(runs)
    lines += [
        "- screenshots/s: ok rows / wall time of the dispatcher processes. Steady: the same "
        "without each run's start (the rows after the first `concurrency`, over the time "
        "between their finishes): a worker's rate once its browser is up. CPU per shot, "
        "dispatcher tree: user+system CPU of the dispatcher and every process under it "
        "(ChromeDriver, Chromium, Playwright's driver), orphans included. Machine: /proc/stat "
        "busy time of the whole machine (the static server and other jobs included). Per URL "
        "ms: the rows' `duration_ms` (capture and storing); navigation and capture: the rows' "
        "`navigation_ms` and `capture_ms`. CPU not the bench's: 1 - CPU of the processes the "
        f"bench started / machine busy; above {100 * NOISY:.0f}% (⚠) the row is not reliable.",
        "",
    ]
    return "\n".join(lines)


def kinds_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """CPU-ms per shot by process kind, a column per run (none if nothing was sampled)."""
    sampled = [run for run in runs if run.get("cpu_ms_per_shot_by_kind")]
    if not sampled:
        return []
    kinds: list[str] = []
    for run in sampled:
        kinds += [kind for kind in run["cpu_ms_per_shot_by_kind"] if kind not in kinds]
    header = " | ".join(f"{run['engine']} -c {run['concurrency']}" for run in sampled)
    rows = [
        f"| {kind} | "
        + " | ".join(_num(run["cpu_ms_per_shot_by_kind"].get(kind), 1) for run in sampled)
        + " |"
        for kind in kinds
    ]
    return [
        "CPU-ms per shot by process of the dispatcher's tree (sampled every "
        f"{machine.SAMPLE_INTERVAL} s: up to that much of each process's last CPU is missed; "
        "the dispatcher holds the engine's threads, its egress proxy and, for Playwright, the "
        "client of its Node.js driver):",
        "",
        f"| process | {header} |",
        "|---|" + "---|" * len(sampled),
        *rows,
        "",
    ]


def write(results: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``engines.json`` and ``engines.md`` in ``out_dir``."""
    return report.write(results, out_dir, "engines", markdown)


# -- running -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"bench.engines: {message}", file=sys.stderr, flush=True)


def engine_env(chromium: str = DEFAULT_CHROMIUM) -> dict[str, str]:
    """The dispatcher's environment: embedded mode, egress policy on, loopback allowed, the
    Chromium binary ``chromium``."""
    from screenshots.dev.bench.services import service_env

    return service_env(
        SCREENSHOT_EGRESS_POLICY="on",
        SCREENSHOT_EGRESS_ALLOW=EGRESS_ALLOW,
        SCREENSHOT_CHROMIUM=chromium,
    )


@dataclass
class Bench:
    """Runs dispatchers in a scratch directory; ``keep`` are child pids never reaped."""

    env: dict[str, str]
    work: Path
    timeout: float
    keep: tuple[int, ...] = ()
    _runs: int = 0

    def dispatch(self, engine: str, concurrency: int, urls: Sequence[str]) -> Path:
        from screenshots.dev.bench.services import dispatch

        self._runs += 1
        name = f"{self._runs:02d}-{engine}-c{concurrency}"
        file = write_url_file(self.work / f"{name}.txt", urls)
        out = self.work / name
        args = ("--engine", engine, "--concurrency", str(concurrency), "--quiet")
        dispatch(self.env, file, out, *args, timeout=self.timeout)
        return out

    def warm(self, engine: str, concurrency: int, urls: Sequence[str]) -> None:
        if not urls:
            return
        from screenshots.dev.bench.pipeline import read_rows

        rows = read_rows(self.dispatch(engine, concurrency, urls))
        machine.reap_children(self.keep)
        if not any(row.get("status") == "ok" for row in rows):
            sample = next((row.get("error") for row in rows), "no rows")
            raise BenchError(f"{engine}: the warm-up shot nothing ({sample})")

    def shoot(self, engine: str, concurrency: int, urls: Sequence[str]) -> Round:
        """One measured run: wall time, CPU of the tree and of the machine, the rows."""
        from screenshots.dev.bench.pipeline import read_rows, warn_if_busy

        pre_load = warn_if_busy(f"{engine} -c {concurrency}")
        with CpuWindow() as window:
            before, started = machine.children_cpu(), time.monotonic()
            with machine.TreeSampler(exclude=self.keep) as sampler:
                out = self.dispatch(engine, concurrency, urls)
            wall = time.monotonic() - started  # the dispatcher's life, not the reaping
            alive = machine.reap_children(self.keep)
            tree = machine.children_cpu() - before
        if alive:
            log(f"warning: {len(alive)} processes of the run still alive (not counted)")
        ok_rows, problems = check_rows(read_rows(out), urls, engine)
        shots, seconds = steady(ok_rows, concurrency)
        return Round(
            urls=len(urls),
            ok=len(ok_rows),
            wall=wall,
            tree=tree,
            busy=window.busy,
            own=own_cpu(window.kinds),
            pre_load=pre_load,
            problems=problems,
            timings=timings(ok_rows),
            steady_shots=shots,
            steady_wall=seconds,
            kinds=sampler.kinds,
        )


def measure(args: argparse.Namespace, bench: Bench, urls: list[str]) -> list[System]:
    """Warm every engine up, then the interleaved rounds."""
    warm = warmup_urls(urls[: args.warmup])
    for engine in ENGINES:
        log(f"warming {engine} up: {len(warm)} pages, -c {max(args.concurrencies)}")
        bench.warm(engine, max(args.concurrencies), warm)
    systems = {
        (engine, level): System(engine, level) for level in args.concurrencies for engine in ENGINES
    }
    parts = chunks(urls, args.rounds)
    for index, part in enumerate(parts):
        for engine, level in schedule(args.concurrencies, index):
            run = bench.shoot(engine, level, part)
            flag = f", {len(run.problems)} not ok" if run.problems else ""
            steady_rate = run.steady_shots / run.steady_wall if run.steady_wall else 0.0
            log(
                f"round {index + 1}/{len(parts)}, {engine} -c {level}: {run.ok}/{run.urls} ok "
                f"in {run.wall:.1f} s, {run.rate:.2f}/s ({steady_rate:.2f}/s steady), "
                f"{run.tree / max(run.ok, 1):.3f} CPU-s per shot{flag}"
            )
            systems[(engine, level)].rounds.append(run)
    return list(systems.values())


def kill_descendants() -> None:
    """Kill whatever this process started and is still alive (its descendants only)."""
    leftovers = psutil.Process().children(recursive=True)
    if not leftovers:
        return
    log(f"warning: killing {len(leftovers)} leftover processes it started")
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(leftovers, timeout=5)
    machine.reap_children(wait=1.0)


def meta(argv: Sequence[str] | None, chromium: str = DEFAULT_CHROMIUM) -> dict[str, Any]:
    from screenshots.dev.bench.__main__ import chromium_version, source_version

    return {
        "machine": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "chromium": chromium_version(chromium),
            "python": platform.python_version(),
            "background_cores_busy": machine.background_load(2.0),
        },
        "command": "python -m screenshots.dev.bench.engines "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "source": source_version(),
    }


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    """Serve the corpus, measure, return the results document."""
    started = time.monotonic()
    log("measuring the machine's background load (2 s)")
    results = meta(argv, args.chromium)
    pages = spread(list_pages(DOC_ROOT), args.pages)
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
        stack.callback(shutil.rmtree, work, True)
        stack.callback(kill_descendants)
        server = CorpusServer(DOC_ROOT)
        stack.callback(server.stop)
        server.start()
        assert server.process is not None
        log(f"serving {len(pages)} pages at {server.base}")
        bench = Bench(engine_env(args.chromium), work, args.run_timeout, keep=(server.process.pid,))
        systems = measure(args, bench, page_urls(server.base, pages))
    runs = [system.to_dict() for system in systems]
    results.update(
        corpus={
            "root": str(DOC_ROOT),
            "pages": len(pages),
            "width": 1280,
            "height": 800,
            "format": "png",
            "warmup": min(args.warmup, len(pages)),
            "rounds": len(chunks(pages, args.rounds)),
            "concurrency": args.concurrencies,
        },
        runs=runs,
        ratios=comparisons(runs),
        errors=sum(run["errors"] for run in runs),
        elapsed_s=round(time.monotonic() - started, 1),
    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine.QUIET_WAIT = args.quiet_wait
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not machine.adopt_orphans():
        log("warning: cannot adopt orphans (no prctl): the tree CPU may miss some processes")
    try:
        results = run(args, argv)
    except BenchError as exc:
        print(f"bench.engines: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.engines: interrupted", file=sys.stderr)
        return 130
    json_path, md_path = write(results, args.out)
    print(md_path.read_text(encoding="utf-8"))
    log(f"results in {json_path} and {md_path} ({results['elapsed_s']:.0f} s)")
    if results["errors"]:
        log(f"error: {results['errors']} URLs did not end with an ok row")
        return 3
    missed = floor_misses(results["ratios"])
    if missed and args.check_floors:
        log(f"floor not met at concurrency {', '.join(missed)}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
