"""The benchmark's results: one JSON document and a Markdown table for the README."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: (a)/(b) and (a strict)/(b') screenshot rate the pipeline must reach.
FLOOR_RATIO = 0.9
#: (a)/(b) CPU-seconds per screenshot the pipeline may not exceed.
CEILING_CPU_RATIO = 1.15
#: Stub-engine URLs per second the pipeline must reach.
FLOOR_STUB_RATE = 250.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def best(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run with the highest rate (``None`` for no runs)."""
    return max(runs, key=lambda run: run["rate"], default=None)


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(share: float | None) -> str:
    if share is None:
        return "—"
    flag = " ⚠" if share > 0.10 else ""
    return f"{100 * share:.0f}%{flag}"


def _met(verdict: Mapping[str, Any]) -> str:
    return "met" if verdict["met"] else "NOT met"


def _settings_text(settings: Mapping[str, Any]) -> str:
    parts = []
    if "workers" in settings:
        parts.append(f"{settings['workers']} worker")
    if "pool" in settings:
        parts.append(f"{settings['pool']} -c {settings['concurrency']}")
    if "batch_size" in settings:
        parts.append(f"batch {settings['batch_size']}")
    if settings.get("isolation") == "strict":
        parts.append("isolation strict")
    if "tabs" in settings:
        parts.append(f"1 Chromium, {settings['tabs']} tabs")
    if settings.get("http_cache") is False:
        parts.append("HTTP cache off")
    return ", ".join(parts)


def markdown(results: Mapping[str, Any]) -> str:
    """The results as Markdown: a main table, the CPU breakdown, the floors."""
    meta = results["machine"]
    lines = [
        f"Measured by `make bench` on {meta['date']}: {meta['cpus']} cores, "
        f"{meta['chromium']}, Python {meta['python']}. Background load before the runs: "
        f"{meta['background_cores_busy']:.2f} busy cores. Source: "
        f"{results.get('source', '?')}; workers' egress policy "
        f"{results.get('egress_policy', '?')} (127.0.0.1 allowed for the corpus). "
        f"Command: `{results.get('command', 'python -m screenshots.dev.bench')}`.",
        "",
    ]
    every_run = [
        *results.get("a", {}).get("runs", []),
        *([results["b"]["run"]] if results.get("b", {}).get("run") else []),
        *([results["b"]["isolated_run"]] if results.get("b", {}).get("isolated_run") else []),
        *results.get("c", {}).get("runs", []),
    ]
    noisy = [run for run in every_run if (run.get("not_own") or 0) > 0.10]
    if noisy:
        lines += [
            f"**⚠ Other jobs used the machine during {len(noisy)} of {len(every_run)} runs "
            "(⚠ in the last column): their rates are lower than this machine can do, and the "
            "ratios between systems are only as good as the interleaving. Rerun on an idle "
            "machine for figures to publish.**",
            "",
        ]
    corpus = results.get("corpus")
    if corpus:
        lines += [
            f"Pages: {corpus['pages']} HTML pages of Debian's python3.11-doc (Sphinx, with CSS, "
            f"JS, images) served on loopback by a threaded Python HTTP/1.1 server in its own "
            f"process; PNG {corpus['width']}x{corpus['height']}, after the load event. "
            f"Every system is started and warmed up ({corpus['warmup']} pages, not measured) "
            f"first; then (a), (b) and (b′) take turns over {corpus.get('rounds', 1)} interleaved "
            "parts of the pages (rounds), and their figures are the sums over the rounds "
            "(so (a)'s wall time holds one dispatcher start-up per round).",
            "",
        ]
    lines += [
        "| what | settings | items | ok | wall s | per second | CPU-s per item "
        "| CPU-s per item, own processes | busy cores | CPU not the bench's |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(section: str, run: Mapping[str, Any], mark: str = "") -> str:
        digits = 4 if section.startswith("(c)") else 3
        own = run.get("own")
        own_per = own / run["ok"] if own is not None and run["ok"] else None
        return (
            f"| {section}{mark} | {_settings_text(run['settings'])} | {run['urls']} | "
            f"{run['ok']} | {_num(run['wall'], 1)} | {_num(run['rate'])} | "
            f"{_num(run['cpu_per_item'], digits)} | {_num(own_per, digits)} | "
            f"{_num(run['cores_busy'])} | {_pct(run.get('not_own'))} |"
        )

    a_runs = results.get("a", {}).get("runs", [])
    a_best = best(a_runs)
    for run in a_runs:
        mark = " **best**" if run is a_best and len(a_runs) > 1 else ""
        lines.append(row(f"(a) pipeline, {run['settings'].get('engine', '?')}", run, mark))
    b_run = results.get("b", {}).get("run")
    if b_run:
        lines.append(row("(b) bare browser, Playwright", b_run))
    b_isolated = results.get("b", {}).get("isolated_run")
    if b_isolated:
        lines.append(row(
            "(b′) bare browser, Playwright, HTTP cache off (like (a))", b_isolated
        ))
    c_runs = results.get("c", {}).get("runs", [])
    c_best = best(c_runs)
    for run in c_runs:
        mark = " **best**" if run is c_best and len(c_runs) > 1 else ""
        lines.append(row("(c) pipeline, stub engine + S3", run, mark))
    lines.append("")

    verdicts = results.get("floors", {})
    if "a_over_b_rate" in verdicts:
        v, cpu = verdicts["a_over_b_rate"], verdicts.get("a_over_b_cpu")
        if not isinstance(cpu, Mapping):  # results from before issue #15: a bare ratio
            cpu = {"value": cpu, "met": cpu is not None and cpu <= CEILING_CPU_RATIO}
        lines.append(
            f"- (a)/(b) screenshot rate: **{_num(v['value'])}** (floor {FLOOR_RATIO}: "
            f"{_met(v)}); (a)/(b) CPU per screenshot: **{_num(cpu['value'])}** (ceiling "
            f"{CEILING_CPU_RATIO}: {_met(cpu)}; own processes: "
            f"{_num(verdicts.get('a_over_b_own_cpu'))}). (a) as shipped (anonymous captures "
            "share the HTTP cache, issue #15) against a reference whose cache stays warm "
            "across pages."
        )
    if "a_strict_over_b_isolated_rate" in verdicts:
        v = verdicts["a_strict_over_b_isolated_rate"]
        lines.append(
            f"- (a strict)/(b′) screenshot rate: **{_num(v['value'])}** (floor {FLOOR_RATIO}: "
            f"{_met(v)}); CPU per screenshot: "
            f"{_num(verdicts.get('a_strict_over_b_isolated_cpu'))}. Like with like: "
            "`SCREENSHOT_ISOLATION=strict` against the reference with its HTTP cache off, "
            "both starting every capture with an empty cache."
        )
    if verdicts.get("a_over_b_isolated_rate") is not None:
        lines.append(
            f"- (a)/(b′) screenshot rate: {_num(verdicts['a_over_b_isolated_rate'])} "
            "(informational: what the shared HTTP cache gains over an empty one)."
        )
    if "stub_rate" in verdicts:
        v = verdicts["stub_rate"]
        over = f" over {v['urls']} URLs" if "urls" in v else ""
        lines.append(
            f"- (c) stub rate of the best settings{over}: **{_num(v['value'], 0)} URLs/s** "
            f"(floor {FLOOR_STUB_RATE:.0f}: {'met' if v['met'] else 'NOT met'})."
        )
    lines += [
        "- Wall time: from the dispatcher's start to its exit (Python start-up included), "
        "workers already running and warm. CPU: the whole machine's busy time over that "
        "window from /proc/stat (user+nice+system+irq+softirq: every process, RabbitMQ, "
        "Redis, SeaweedFS and the static server included, nothing subtracted), divided by "
        "the screenshots taken. \"Own processes\": the CPU time of the processes the "
        "benchmark started, plus RabbitMQ and Redis, from their /proc counters: the same "
        "figure without other jobs. \"CPU not the bench's\": 1 - own/machine, i.e. other "
        "jobs plus kernel time charged to no process; a few % on an idle machine, and above "
        "10% (⚠) the row's rate is not reliable.",
        "",
    ]

    # Every (a) run gets a column: as shipped and strict differ most here.
    breakdowns = [("(a) " + _settings_text(run["settings"]), run) for run in a_runs]
    if b_run:
        breakdowns.append(("(b) Playwright", b_run))
    if b_isolated:
        breakdowns.append(("(b′) Playwright, HTTP cache off", b_isolated))
    if c_best:
        breakdowns.append(("(c) " + _settings_text(c_best["settings"]), c_best))
    if breakdowns:
        kinds: list[str] = []
        for _, run in breakdowns:
            for kind in run.get("kinds", {}):
                if kind not in kinds:
                    kinds.append(kind)
        lines.append("CPU-ms per item by process kind (from per-process CPU times):")
        lines.append("")
        lines.append("| process | " + " | ".join(name for name, _ in breakdowns) + " |")
        lines.append("|---|" + "---|" * len(breakdowns))
        for kind in kinds:
            cells = []
            for _, run in breakdowns:
                seconds = run.get("kinds", {}).get(kind)
                cells.append(
                    "—" if seconds is None or not run["ok"]
                    else f"{1000 * seconds / run['ok']:.1f}"
                )
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write(
    results: Mapping[str, Any],
    out_dir: Path,
    stem: str = "results",
    render: Callable[[Mapping[str, Any]], str] = markdown,
) -> tuple[Path, Path]:
    """``<stem>.json`` and ``<stem>.md`` (``render(results)``) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(render(results), encoding="utf-8")
    return json_path, md_path
