"""The benchmark's pure helpers: CPU accounting, the URL lists, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from screenshots.dev.bench import __main__ as bench_main
from screenshots.dev.bench import delivery, machine, report
from screenshots.dev.bench import engines as engine_bench
from screenshots.dev.bench.corpus import (
    BenchError,
    list_pages,
    page_urls,
    spread,
    stub_urls,
    warmup_urls,
)
from screenshots.dev.bench.machine import (
    FOREIGN,
    CpuTimes,
    ProcSample,
    breakdown,
    classify,
    cpu_delta,
    descendants_of,
    parse_proc_stat,
    per_item,
    with_remainder,
)
from screenshots.dev.bench.pipeline import summarize_rows
from screenshots.dev.bench.stats import RunStats, chunks, combine

PROC_STAT = """\
cpu  1000 20 300 5000 40 5 15 7 11 0
cpu0 500 10 150 2500 20 3 8 4 6 0
cpu1 500 10 150 2500 20 2 7 3 5 0
intr 123456
ctxt 789
"""


def test_parse_proc_stat_reads_the_aggregate_line():
    times = parse_proc_stat(PROC_STAT)
    assert times.ticks["user"] == 1000 and times.ticks["steal"] == 7
    # busy = user + nice + system + irq + softirq; guest is already inside user
    assert times.busy == 1000 + 20 + 300 + 5 + 15
    assert times.total == 1000 + 20 + 300 + 5000 + 40 + 5 + 15 + 7


def test_parse_proc_stat_without_cpu_line_fails():
    with pytest.raises(ValueError):
        parse_proc_stat("intr 1\n")


def test_old_kernels_with_fewer_columns_still_parse():
    times = parse_proc_stat("cpu 1 2 3 4\n")
    assert times.busy == 6 and "steal" not in times.ticks


def test_cpu_delta_counts_busy_seconds_and_not_idle_iowait_steal():
    before = CpuTimes({"user": 100, "nice": 0, "system": 50, "idle": 1000, "iowait": 5,
                       "irq": 1, "softirq": 2, "steal": 0})
    after = CpuTimes({"user": 250, "nice": 10, "system": 90, "idle": 1100, "iowait": 25,
                      "irq": 3, "softirq": 6, "steal": 4})
    delta = cpu_delta(before, after, wall=2.0, hz=100)
    assert delta.busy == pytest.approx((150 + 10 + 40 + 2 + 4) / 100)
    assert delta.idle == pytest.approx(1.0)
    assert delta.iowait == pytest.approx(0.2)
    assert delta.steal == pytest.approx(0.04)
    assert delta.cores_busy == pytest.approx(2.06 / 2.0)


def test_cpu_delta_never_goes_negative():
    before = CpuTimes({"user": 10})
    after = CpuTimes({"user": 5})
    assert cpu_delta(before, after, wall=1.0).busy == 0.0


def test_per_item():
    assert per_item(3.0, 10) == pytest.approx(0.3)
    assert per_item(3.0, 0) is None


@pytest.mark.parametrize(
    ("cmdline", "kind"),
    [
        ("/usr/lib/chromium/chromium --type=renderer --lang=en", "chromium renderer"),
        ("/usr/lib/chromium/chromium --type=zygote --no-sandbox", "chromium zygote"),
        ("/usr/lib/chromium/chromium --type=gpu-process", "chromium gpu/utility"),
        ("/usr/lib/chromium/chromium --headless=new --user-data-dir=/tmp/x", "chromium browser"),
        ("/usr/bin/chromedriver --port=4444", "chromedriver"),
        ("/x/.venv/bin/python -m celery -A tasks worker -c 2", "celery worker"),
        ("/x/.venv/bin/python dispatcher.py urls.txt --out o", "dispatcher"),
        ("/x/.venv/bin/python dispatcher.py /t/01-playwright-c4.txt --engine playwright",
         "dispatcher"),
        ("/x/.venv/bin/python -m screenshots.dev.bench.corpus /usr/share/doc", "static server"),
        ("/x/.venv/bin/python -m screenshots.dev.bench --pages 5", "bench (this process)"),
        ("/x/playwright/driver/node /x/cli.js run-driver", "playwright driver (node)"),
        ("/usr/lib/erlang/erts-13.1.5/bin/beam.smp -W w", "rabbitmq"),
        ("redis-server 127.0.0.1:6379", "redis"),
        ("/x/.venv/bin/weed server -dir=/tmp/y", "seaweedfs"),
        ("bash", "other"),
    ],
)
def test_classify(cmdline, kind):
    assert classify(cmdline) == kind


def test_breakdown_counts_deltas_new_processes_and_reaped_children():
    before = {
        1: ProcSample("celery worker", cpu=10.0, created=100.0, children=1.0),
        2: ProcSample("chromium renderer", cpu=5.0, created=100.0),
        3: ProcSample("redis", cpu=7.0, created=50.0),  # pid 3 is reused below
        4: ProcSample("seaweedfs", cpu=1.0, created=10.0),  # exits: not counted
    }
    after = {
        1: ProcSample("celery worker", cpu=12.5, created=100.0, children=1.5),
        2: ProcSample("chromium renderer", cpu=6.0, created=100.0),
        3: ProcSample("chromium renderer", cpu=0.25, created=200.0),
        5: ProcSample("chromium zygote", cpu=0.5, created=150.0, children=3.0),
    }
    kinds = breakdown(before, after)
    assert kinds["celery worker"] == pytest.approx(2.5)
    assert kinds["celery worker ← exited children"] == pytest.approx(0.5)
    assert kinds["chromium renderer"] == pytest.approx(1.25)
    assert kinds["chromium zygote"] == pytest.approx(0.5)
    assert kinds["chromium zygote ← exited children"] == pytest.approx(3.0)
    assert "seaweedfs" not in kinds and "redis" not in kinds


def test_breakdown_puts_other_jobs_apart_without_their_reaped_children():
    before = {
        7: ProcSample("chromium renderer", cpu=1.0, created=1.0, ours=False),
        8: ProcSample("rabbitmq", cpu=1.0, created=1.0, ours=False),
        9: ProcSample("other", cpu=1.0, created=1.0, children=0.0, ours=False),
    }
    after = {
        7: ProcSample("chromium renderer", cpu=3.0, created=1.0, ours=False),
        8: ProcSample("rabbitmq", cpu=1.5, created=1.0, ours=False),
        9: ProcSample("other", cpu=1.5, created=1.0, children=60.0, ours=False),
    }
    kinds = breakdown(before, after)
    assert kinds == {FOREIGN: pytest.approx(2.5), "rabbitmq": pytest.approx(0.5)}


def testdescendants_of():
    parents = {10: 1, 11: 10, 12: 11, 13: 1, 14: 13, 15: 12}
    assert descendants_of(10, parents) == {10, 11, 12, 15}
    assert descendants_of(99, parents) == {99}


def test_with_remainder_sorts_and_adds_what_is_unattributed():
    ordered = with_remainder({"a": 1.0, "b": 3.0}, busy=5.0)
    assert list(ordered)[:2] == ["b", "a"]
    assert ordered["unattributed (kernel, unreaped exits)"] == pytest.approx(1.0)
    assert with_remainder({"a": 6.0}, busy=5.0)["unattributed (kernel, unreaped exits)"] == 0.0


def test_spread_picks_evenly_and_keeps_order():
    items = [f"p{i}" for i in range(10)]
    assert spread(items, None) == items
    assert spread(items, 20) == items
    assert spread(items, 5) == ["p0", "p2", "p4", "p6", "p8"]
    assert spread(items, 3) == ["p0", "p3", "p6"]
    assert spread(items, 0) == []
    assert len(set(spread(items, 7))) == 7


def test_page_urls_and_warmup_urls():
    urls = page_urls("http://127.0.0.1:8000/", ["index.html", "library/os.html"])
    assert urls == ["http://127.0.0.1:8000/index.html", "http://127.0.0.1:8000/library/os.html"]
    assert warmup_urls(urls + ["http://h/x?a=1"]) == [
        "http://127.0.0.1:8000/index.html?warmup",
        "http://127.0.0.1:8000/library/os.html?warmup",
        "http://h/x?a=1&warmup",
    ]


def test_stub_urls_are_distinct_ranges():
    assert stub_urls(3) == [f"http://bench.example/{n}" for n in (1, 2, 3)]
    assert stub_urls(2, first=4) == ["http://bench.example/4", "http://bench.example/5"]


def test_list_pages_skips_sphinx_folders(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text("x")
    (tmp_path / "library" / "os.html").write_text("x")
    (tmp_path / "_static" / "x.html").write_text("x")
    (tmp_path / "style.css").write_text("x")
    assert list_pages(tmp_path) == ["index.html", "library/os.html"]


def test_list_pages_without_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="python3.11-doc"):
        list_pages(tmp_path / "missing")


def test_summarize_rows():
    rows = [
        {"status": "ok", "bytes": 100, "duration_ms": 10},
        {"status": "ok", "bytes": 300, "duration_ms": 30},
        {"status": "ok", "bytes": 200, "duration_ms": 20},
        {"status": "error", "url": "http://x/", "error": "boom"},
    ]
    ok, errors, size, duration, samples = summarize_rows(rows)
    assert (ok, errors) == (3, 1)
    assert size == pytest.approx(200.0) and duration == pytest.approx(20.0)
    assert samples == ["http://x/: boom"]
    assert summarize_rows([]) == (0, 0, None, None, [])


def _run(label, rate, ok=100, settings=None, kinds=None):
    return {
        "label": label, "urls": ok, "ok": ok, "errors": 0, "wall": ok / rate, "busy": ok * 0.3,
        "rate": rate, "cpu_per_item": 0.3, "cores_busy": 1.9,
        "settings": settings or {"engine": "selenium", "workers": 1, "pool": "prefork",
                                 "concurrency": 2,
                                 "batch_size": 1},
        "kinds": kinds or {"chromium renderer": 10.0},
    }


def test_report_best_and_ratio():
    runs = [_run("x", 5.0), _run("y", 6.0)]
    assert report.best(runs)["label"] == "y"
    assert report.best([]) is None
    assert report.ratio(5.4, 6.0) == pytest.approx(0.9)
    assert report.ratio(None, 6.0) is None and report.ratio(1.0, 0.0) is None


def test_report_markdown_and_files(tmp_path):
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "chromium": "Chromium 156",
                    "python": "3.11.7", "background_cores_busy": 0.01},
        "corpus": {"pages": 530, "width": 1280, "height": 800, "warmup": 10},
        "a": {"runs": [_run("c2", 5.5), _run("c3", 5.0)]},
        "b": {"run": _run("pw", 6.0, settings={"tabs": 3})},
        "c": {"runs": [_run("s", 300.0, ok=4000)]},
        "floors": {
            "a_over_b_rate": {"value": 5.5 / 6.0, "met": True},
            "a_over_b_cpu": {"value": 1.0, "met": True},
            "stub_rate": {"value": 300.0, "met": True},
        },
    }
    text = report.markdown(results)
    assert "| (a) pipeline, selenium **best** | 1 worker, prefork -c 2, batch 1 |" in text
    assert "1 Chromium, 3 tabs" in text
    assert "**0.92** (floor 0.9: met)" in text
    assert "**300 URLs/s**" in text
    assert "| chromium renderer | 100.0 | 100.0 | 100.0 | 2.5 |" in text  # both (a) runs
    json_path, md_path = report.write(results, tmp_path / "out")
    assert json.loads(json_path.read_text())["floors"]["stub_rate"]["met"] is True
    assert md_path.read_text() == text


def _ab_results(a_rate=5.0, strict_rate=4.5, b_rate=6.0, isolated_rate=5.2):
    shipped = dict(_run("c2", a_rate), own_per_item=0.25)
    strict = _run("c2 strict", strict_rate, settings={"engine": "selenium", "workers": 1,
                                                       "pool": "prefork", "concurrency": 2,
                                                       "batch_size": 1, "isolation": "strict"})
    b_run = dict(_run("pw", b_rate, settings={"engine": "playwright", "tabs": 3}),
                 own_per_item=0.2)
    isolated = dict(_run("pw off", isolated_rate,
                         settings={"engine": "playwright", "tabs": 3, "http_cache": False}),
                    cpu_per_item=0.4, own_per_item=0.5)
    return {"a": {"runs": [shipped, strict]}, "b": {"run": b_run, "isolated_run": isolated}}


def test_floors_judge_a_over_b_and_a_strict_over_the_isolated_reference():
    found = bench_main.floors(_ab_results())
    # (a) as shipped (standard isolation, not the strict run) over (b).
    assert found["a_over_b_rate"] == {"value": pytest.approx(5.0 / 6.0), "met": False}
    assert found["a_over_b_cpu"] == {"value": pytest.approx(1.0), "met": True}
    assert found["a_over_b_own_cpu"] == pytest.approx(0.25 / 0.2)
    # (a strict) over (b'), the reference with its HTTP cache off: like with like.
    strict = found["a_strict_over_b_isolated_rate"]
    assert strict == {"value": pytest.approx(4.5 / 5.2), "met": False}
    assert found["a_strict_over_b_isolated_cpu"] == pytest.approx(0.3 / 0.4)
    assert found["a_over_b_isolated_rate"] == pytest.approx(5.0 / 5.2)  # informational
    # Results without (b'): nothing about it.
    older = _ab_results()
    del older["b"]["isolated_run"]
    assert not any("isolated" in name for name in bench_main.floors(older))
    # (b) alone: no ratio at all.
    assert bench_main.floors({"b": _ab_results()["b"]}) == {}


def test_check_floors_misses_the_judged_floors():
    found = bench_main.floors(_ab_results(a_rate=5.5, strict_rate=4.8))
    assert bench_main.missed_floors(found) == []
    found = bench_main.floors(_ab_results(a_rate=5.0, strict_rate=4.0))
    assert bench_main.missed_floors(found) == ["a_over_b_rate", "a_strict_over_b_isolated_rate"]
    found["a_over_b_cpu"]["met"] = False  # more than 1.15 x (b)'s CPU per shot
    found["stub_rate"] = {"value": 100.0, "met": False}
    assert bench_main.missed_floors(found) == [
        "a_over_b_rate", "a_over_b_cpu", "a_strict_over_b_isolated_rate", "stub_rate"
    ]
    assert bench_main.missed_floors({}) == []
    cpu = bench_main.floors(_ab_results())["a_over_b_cpu"]
    assert cpu["met"] is (cpu["value"] <= report.CEILING_CPU_RATIO)


def test_parse_args_isolated_reference_defaults_on():
    assert bench_main.parse_args([]).isolated_reference == "on"
    assert bench_main.parse_args(["--isolated-reference", "off"]).isolated_reference == "off"
    with pytest.raises(SystemExit):
        bench_main.parse_args(["--isolated-reference", "maybe"])


def test_report_markdown_shows_the_isolated_reference_and_its_ratio():
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "chromium": "Chromium 156",
                    "python": "3.11.7", "background_cores_busy": 0.01},
        **_ab_results(),
    }
    results["b"]["isolated_run"]["not_own"] = 0.2
    results["floors"] = bench_main.floors(results)
    text = report.markdown(results)
    assert ("| (b′) bare browser, Playwright, HTTP cache off (like (a)) | "
            "1 Chromium, 3 tabs, HTTP cache off | 100 | 100 | 19.2 | 5.20 | 0.400 |") in text
    assert "| (b) bare browser, Playwright | 1 Chromium, 3 tabs | 100 |" in text
    assert "**0.83** (floor 0.9: NOT met)" in text and "(a) as shipped" in text
    assert "CPU per screenshot: **1.00** (ceiling 1.15: met" in text
    assert "- (a strict)/(b′) screenshot rate: **0.87** (floor 0.9: NOT met)" in text
    assert "- (a)/(b′) screenshot rate: 0.96 (informational" in text
    assert "| 1 worker, prefork -c 2, batch 1, isolation strict |" in text
    assert "| (b′) Playwright, HTTP cache off |" in text  # its CPU breakdown column
    # The noisy-run warning counts (b′) too.
    assert "Other jobs used the machine during 1 of 4 runs" in text
    del results["b"]["isolated_run"]
    results["floors"] = bench_main.floors(results)
    older = report.markdown(results)
    assert "(b′)" not in older and "Other jobs used" not in older


def test_chunks_interleave_and_cover_everything():
    items = [str(i) for i in range(10)]
    parts = chunks(items, 3)
    assert parts == [["0", "3", "6", "9"], ["1", "4", "7"], ["2", "5", "8"]]
    assert sorted(x for part in parts for x in part) == sorted(items)
    assert chunks(items, 1) == [items]
    assert chunks(items[:2], 5) == [["0"], ["1"]]
    assert chunks([], 3) == [[]]


def test_combine_sums_rounds():
    one = RunStats("x", urls=10, ok=9, errors=1, wall=2.0, busy=3.0, bytes_mean=100.0,
                   duration_ms_median=10.0, kinds={"a": 1.0, "b": 2.0}, own=2.5, foreign=0.5,
                   pre_load=0.1, settings={"tabs": 3})
    two = RunStats("x", urls=10, ok=10, errors=0, wall=3.0, busy=4.0, bytes_mean=200.0,
                   duration_ms_median=30.0, kinds={"a": 2.0}, own=3.5, foreign=0.5,
                   pre_load=0.3, settings={"tabs": 3})
    total = combine([one, two])
    assert (total.urls, total.ok, total.errors, total.rounds) == (20, 19, 1, 2)
    assert total.wall == pytest.approx(5.0) and total.busy == pytest.approx(7.0)
    assert total.rate == pytest.approx(19 / 5.0)
    assert total.cpu_per_item == pytest.approx(7.0 / 19)
    assert total.own_per_item == pytest.approx(6.0 / 19)
    assert total.cores_busy == pytest.approx(7.0 / 5.0)
    assert total.bytes_mean == pytest.approx((100 * 9 + 200 * 10) / 19)
    assert total.duration_ms_median == pytest.approx(20.0)
    assert total.kinds == {"a": 3.0, "b": 2.0}
    assert total.pre_load == pytest.approx(0.3)
    data = total.to_dict()
    assert data["rate"] == pytest.approx(19 / 5.0) and data["settings"] == {"tabs": 3}
    with pytest.raises(ValueError):
        combine([])


def test_report_flags_runs_where_other_jobs_used_the_machine():
    quiet = dict(_run("q", 5.0), not_own=0.03)
    busy = dict(_run("b", 5.0), not_own=0.40)
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "chromium": "Chromium 156",
                    "python": "3.11.7", "background_cores_busy": 0.5},
        "a": {"runs": [quiet, busy]},
    }
    text = report.markdown(results)
    assert "Other jobs used the machine during 1 of 2 runs" in text
    assert "| 40% ⚠ |" in text and "| 3% |" in text
    results["a"]["runs"] = [quiet]
    assert "Other jobs used the machine" not in report.markdown(results)


# -- bench.engines: Selenium against Playwright -----------------------------------------------


def test_engines_parse_args_defaults_and_levels():
    args = engine_bench.parse_args([])
    assert (args.pages, args.concurrencies, args.rounds) == (400, [1, 2, 4], 2)
    assert (args.warmup, args.quiet_wait, str(args.out)) == (10, 10.0, "bench-output")
    args = engine_bench.parse_args(["--pages", "20", "--concurrency", "2, 1,2", "--rounds", "3"])
    assert (args.pages, args.concurrencies, args.rounds) == (20, [2, 1], 3)


@pytest.mark.parametrize(
    "argv",
    [["--concurrency", "0"], ["--concurrency", "a"], ["--concurrency", ""], ["--pages", "0"],
     ["--rounds", "0"], ["--warmup", "-1"]],
)
def test_engines_parse_args_refuses_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        engine_bench.parse_args(argv)
    assert exit_info.value.code == 2


def test_engines_quantile_interpolates():
    assert engine_bench.quantile([], 0.5) is None
    assert engine_bench.quantile([7], 0.9) == 7
    assert engine_bench.quantile([3, 1, 2], 0.5) == 2
    assert engine_bench.quantile([1, 2, 3, 4], 0.5) == pytest.approx(2.5)
    assert engine_bench.quantile(list(range(1, 11)), 0.9) == pytest.approx(9.1)
    assert engine_bench.quantile([5, 1], 1.0) == 5 and engine_bench.quantile([5, 1], 0.0) == 1


def test_engines_schedule_pairs_engines_and_alternates_who_goes_first():
    assert engine_bench.schedule([1, 2], 0) == [
        ("selenium", 1), ("playwright", 1), ("selenium", 2), ("playwright", 2),
    ]
    assert engine_bench.schedule([1, 2], 1) == [
        ("playwright", 1), ("selenium", 1), ("playwright", 2), ("selenium", 2),
    ]
    assert engine_bench.schedule([2], 2) == engine_bench.schedule([2], 0)


def test_engines_check_rows_wants_an_ok_row_of_the_engine_for_every_url():
    urls = ["http://h/a", "http://h/b", "http://h/c", "http://h/d", "http://h/e"]
    rows = [
        {"line": 1, "status": "ok", "engine": "playwright"},
        {"line": 2, "status": "error", "error": "timeout", "engine": "playwright"},
        {"line": 3, "status": "ok", "engine": "selenium"},
        {"line": 5, "status": "error", "error": "boom", "engine": "playwright"},
        {"line": 5, "status": "ok", "engine": "playwright"},  # resumed: the last row counts
    ]
    ok, problems = engine_bench.check_rows(rows, urls, "playwright")
    assert [row["line"] for row in ok] == [1, 5]
    assert problems == [
        "http://h/b: timeout",
        "http://h/c: shot by 'selenium', not 'playwright'",
        "http://h/d: no row",
    ]


def test_engines_timings_and_own_cpu():
    rows = [
        {"duration_ms": 100, "navigation_ms": 60, "capture_ms": 30},
        {"duration_ms": 200, "navigation_ms": None, "capture_ms": True},
    ]
    assert engine_bench.timings(rows) == {
        "duration_ms": [100, 200], "navigation_ms": [60], "capture_ms": [30],
    }
    kinds = {
        "bench (this process) ← exited children": 3.0, "static server": 0.5,
        FOREIGN: 2.0, "rabbitmq": 0.25, "redis": 0.25,
        "unattributed (kernel, unreaped exits)": 0.4,
    }
    assert engine_bench.own_cpu(kinds) == pytest.approx(3.5)


def _engine_round(ok, wall, tree, busy=None, own=None, urls=None, problems=(), base=100,
                  kinds=None):
    busy = tree * 1.05 if busy is None else busy
    return engine_bench.Round(
        urls=ok if urls is None else urls, ok=ok, wall=wall, tree=tree, busy=busy,
        own=busy if own is None else own, problems=list(problems),
        timings={"duration_ms": [base, base * 2], "navigation_ms": [base // 2],
                 "capture_ms": []},
        steady_shots=ok - 2, steady_wall=wall * 0.8, kinds=kinds or {},
    )


def _engine_runs():
    selenium = engine_bench.System("selenium", 1, [
        _engine_round(10, 5.0, 5.0), _engine_round(10, 5.0, 5.0),
    ])
    playwright = engine_bench.System("playwright", 1, [
        _engine_round(10, 4.0, 4.0, base=50,
                      kinds={"chromium renderer": 2.0, "playwright driver (node)": 0.3}),
        _engine_round(9, 2.5, 3.0, urls=10, problems=["http://h/x: timeout"], busy=10.0,
                      own=5.0, base=50,
                      kinds={"chromium renderer": 1.8, "playwright driver (node)": 0.27,
                             "dispatcher": 0.5}),
    ])
    lonely = engine_bench.System("selenium", 2, [_engine_round(10, 2.0, 4.0)])
    return [s.to_dict() for s in (selenium, playwright, lonely)]


def test_engines_steady_rate_leaves_out_the_start_of_a_run():
    def row(second):
        return {"finished_at": f"2026-12-05T10:00:{second:06.3f}+00:00"}

    # the browser started, the first two (cold) pages at 5 s, then one page every 0.5 s
    rows = [row(5.0), row(5.1)] + [row(5.1 + 0.5 * n) for n in range(1, 9)]
    shots, seconds = engine_bench.steady(rows, 2)
    assert shots == 7 and seconds == pytest.approx(3.5)  # from the third finish to the last
    assert engine_bench.steady([{"finished_at": None}, *rows[:4]], 2) == (0, 0.0)
    assert engine_bench.steady(list(reversed(rows)), 2) == (shots, pytest.approx(seconds))


def test_engines_system_sums_its_rounds():
    selenium, playwright, _ = _engine_runs()
    assert selenium["rate"] == pytest.approx(2.0)
    assert selenium["steady_rate"] == pytest.approx(16 / 8.0)
    assert playwright["steady_rate"] == pytest.approx(15 / (0.8 * 6.5))
    assert selenium["tree_cpu_per_shot"] == pytest.approx(0.5)
    assert selenium["timings_ms"]["duration_ms"] == {"p50": 150.0, "p90": 200.0}
    assert selenium["timings_ms"]["capture_ms"] == {"p50": None, "p90": None}
    assert (playwright["urls"], playwright["ok"], playwright["errors"]) == (20, 19, 1)
    assert playwright["rate"] == pytest.approx(19 / 6.5)
    assert playwright["tree_cpu_per_shot"] == pytest.approx(7.0 / 19)
    assert playwright["not_own"] == pytest.approx(1 - (4.2 + 5.0) / (4.2 + 10.0))
    assert playwright["round_rates"] == [pytest.approx(2.5), pytest.approx(3.6)]
    assert playwright["error_samples"] == ["http://h/x: timeout"]
    # summed over the rounds, per ok shot, largest first; nothing sampled: nothing claimed
    assert playwright["cpu_ms_per_shot_by_kind"] == {
        "chromium renderer": 200.0, "playwright driver (node)": 30.0, "dispatcher": 26.3,
    }
    assert list(playwright["cpu_ms_per_shot_by_kind"])[0] == "chromium renderer"
    assert selenium["cpu_ms_per_shot_by_kind"] == {}


def test_engines_ratio_is_playwright_over_selenium_where_both_ran():
    ratios = engine_bench.comparisons(_engine_runs())
    assert len(ratios) == 1  # -c 2 has no Playwright run
    item = ratios[0]
    assert item["concurrency"] == 1
    assert item["rate_ratio"] == pytest.approx((19 / 6.5) / 2.0)
    assert item["steady_ratio"] == pytest.approx((15 / 5.2) / 2.0)
    assert item["round_rate_ratios"] == [pytest.approx(1.25), pytest.approx(1.8)]
    assert item["tree_cpu_ratio"] == pytest.approx((7.0 / 19) / 0.5)
    assert engine_bench.comparisons([]) == []
    assert engine_bench.floor_misses(ratios) == []
    slow = [dict(item, rate_ratio=0.85) for item in ratios]
    assert engine_bench.floor_misses(slow) == ["1"]
    assert engine_bench.floor_misses(slow, "steady_ratio") == []
    lines = engine_bench.floor_lines(slow)
    assert "throughput, at every concurrency: floor 0.9: **NOT met at concurrency 1**" in lines[0]
    assert "steady throughput, at every concurrency: floor 0.9: **met**" in lines[1]
    assert engine_bench.floor_misses([dict(item, steady_ratio=None) for item in ratios],
                                     "steady_ratio") == ["1"]


def test_engines_markdown_table_flags_and_files(tmp_path):
    runs = _engine_runs()
    results = {
        "machine": {"date": "2026-01-01", "cpus": 2, "chromium": "Chromium 156",
                    "python": "3.11.7", "background_cores_busy": 0.02},
        "command": "python -m screenshots.dev.bench.engines", "source": "abc1234",
        "corpus": {"pages": 20, "width": 1280, "height": 800, "warmup": 10, "rounds": 2},
        "runs": runs, "ratios": engine_bench.comparisons(runs), "errors": 1,
    }
    text = engine_bench.markdown(results)
    assert ("| selenium | 1 | 20 | 20 | 0 | 10.0 | 2.00 | 2.00 | 0.500 | 0.525 | 150 / 200 "
            "| 50 / 50 | — / — | 0% |") in text
    assert "| playwright | 1 | 20 | 19 | **1** |" in text
    assert "| 35% ⚠ |" in text
    assert "during 1 of 3 rows" in text
    assert "**⚠ 1 URLs did not end with an `ok` row** (e.g. `http://h/x: timeout`)" in text
    assert "| 1 | 2.00 | 2.92 | **1.46** | 1.25, 1.80 | **1.44** | 0.74 |" in text
    assert "floor 0.9: **met**" in text
    assert "| process | playwright -c 1 |" in text
    assert "| playwright driver (node) | 30.0 |" in text and "| dispatcher | 26.3 |" in text
    json_path, md_path = engine_bench.write(results, tmp_path / "out")
    assert json_path.name == "engines.json" and md_path.name == "engines.md"
    assert json.loads(json_path.read_text())["ratios"][0]["concurrency"] == 1
    assert md_path.read_text() == text
    quiet = dict(results, runs=runs[:1], ratios=[], errors=0)
    quiet_text = engine_bench.markdown(quiet)
    assert "Other jobs used" not in quiet_text and "did not end" not in quiet_text
    assert "| 0% |" in quiet_text and "throughput" not in quiet_text
    assert "by process" not in quiet_text  # nothing sampled: no table


def test_tree_sampler_finds_a_child_that_burns_cpu_and_exits_in_the_window(tmp_path):
    """What the engines bench needs: a process started and gone inside the window still
    shows, under its kind (a dispatcher named by its script, whatever its arguments)."""
    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
    script = tmp_path / "dispatcher.py"
    script.write_text(burn)
    with machine.TreeSampler(interval=0.05) as sampler:
        subprocess.run([sys.executable, str(script), "--engine", "playwright"], check=True)
    kinds = sampler.kinds
    assert 0.4 <= kinds.get("dispatcher", 0.0) <= 0.8, kinds
    # Processes running before the window (the session's servers) count from its start.
    assert sum(kinds.values()) - kinds["dispatcher"] < 0.3, kinds
    with machine.TreeSampler(interval=0.05) as idle:
        pass
    assert "dispatcher" not in idle.kinds and sum(idle.kinds.values()) < 0.1, idle.kinds


# -- bench.delivery: fleet layouts, steady rate, row coverage, CPU groups -----------------------


def test_layout_spreads_slots_over_near_equal_processes():
    fleet = delivery.parse_layout("threads:4")
    assert fleet.concurrencies(32) == [4] * 8
    assert fleet.concurrencies(2) == [2]
    assert fleet.concurrencies(6) == [3, 3] and fleet.concurrencies(9) == [3, 3, 3]
    assert fleet.describe(32) == "8 × threads -c 4"
    assert fleet.describe(10) == "1 × threads -c 4 + 2 × threads -c 3"
    single = delivery.parse_layout("threads:all")
    assert single.concurrencies(32) == [32] and single.name == "threads:all"
    assert delivery.parse_layout("prefork:2").describe(4) == "2 × prefork -c 2"
    with pytest.raises(ValueError):
        fleet.concurrencies(0)


@pytest.mark.parametrize("text", ["threads", "gevent:4", "threads:0", "threads:x", ":4"])
def test_parse_layout_refuses_bad_specs(text):
    with pytest.raises(ValueError):
        delivery.parse_layout(text)


def test_steady_rate_leaves_out_both_ends():
    # 100 rows, one every 0.1 s, then a straggler 10 s later: the tail does not count.
    stamps = [n / 10 for n in range(100)] + [20.0]
    assert delivery.steady_rate(stamps) == pytest.approx(10.0)
    assert delivery.steady_rate(stamps[::-1]) == pytest.approx(10.0)  # order does not matter
    assert delivery.steady_rate([]) == 0.0 and delivery.steady_rate([5.0, 5.0]) == 0.0
    assert delivery.steady_rate([0.0, 1.0], trim=0.0) == pytest.approx(1.0)


def test_coverage_counts_missing_duplicated_and_stray_rows():
    exact = delivery.coverage([3, 1, 2], 3)
    assert exact.exact and exact.to_dict()["one_row_per_line"] is True
    bad = delivery.coverage([1, 1, 4, 0], 3)
    assert (bad.rows, bad.duplicated, bad.outside, bad.missing) == (4, 1, 2, 2)
    assert not bad.exact
    assert not delivery.coverage([1, 2], 3).exact  # one line without a row


def test_summarize_manifest_reads_lines_status_and_finish_times(tmp_path):
    path = tmp_path / "results.jsonl"
    rows = [
        {"line": 2, "status": "ok", "finished_at": "2026-01-01T00:00:01+00:00"},
        {"line": 1, "status": "error", "finished_at": "2026-01-01T00:00:00+00:00"},
        {"line": 3, "status": "error", "finished_at": None},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = delivery.summarize_manifest(path, 3)
    assert summary.coverage.exact and summary.ok == 1
    assert list(summary.stamps) == [1767225601.0, 1767225600.0]


def test_cpu_groups_put_each_kind_in_one_group():
    kinds = {
        "celery worker": 1.0, "celery worker ← exited children": 0.5, "seaweedfs": 0.25,
        "rabbitmq": 0.125, "rabbitmq ← exited children": 0.125, "redis": 0.1,
        "dispatcher": 0.2, "bench (this process) ← exited children": 0.05,
        "bench (this process)": 0.01, FOREIGN: 2.0, "other": 0.3,
        "unattributed (kernel, unreaped exits)": 0.4,
    }
    groups = delivery.cpu_groups(kinds)
    assert groups["workers"] == pytest.approx(1.5)
    assert groups["RabbitMQ"] == pytest.approx(0.25)
    assert groups["dispatcher"] == pytest.approx(0.25)
    assert groups["bench sampler"] == pytest.approx(0.01)
    assert groups["other jobs"] == pytest.approx(2.0)
    assert groups["other (kernel, unattributed)"] == pytest.approx(0.7)
    assert sum(groups.values()) == pytest.approx(sum(kinds.values()))


def test_steady_window_picks_the_snapshots_inside_the_span():
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert delivery.steady_window(times, 0.5, 3.5) == (1, 3)
    assert delivery.steady_window(times, 1.2, 1.8) == (0, 4)  # too few inside: everything


def test_scaling_configs_and_their_window():
    config = delivery.parse_config("threads:4/10")
    assert config.layout == delivery.Layout("threads", 4) and config.batch == 10
    assert config.name == "threads:4/10"
    assert config.window(32) == delivery.SCALING_WINDOW_FACTOR * 32 * 10
    assert config.window(1) >= 2 * 10  # a batch running and one waiting, at least
    for text in delivery.SCALING_CONFIGS.split(","):
        assert delivery.parse_config(text).name == text
    for bad in ("threads:4", "threads:4/0", "threads:4/x", "gevent:4/10"):
        with pytest.raises(ValueError):
            delivery.parse_config(bad)


def _memory_run(urls, lines, peak, exact=True):
    return {"urls": urls, "lines": lines, "peak_rss_mb": peak, "one_row_per_line": exact,
            "rows": lines, "ok_rows": lines if urls == "stored" else 0, "lines_missing": 0,
            "lines_duplicated": 0, "urls_per_s": 100.0, "wall_s": lines / 100,
            "mid_run_rss_mb": peak - 5,
            "fleet": "2 × threads -c 8", "batch_size": 100, "max_in_flight": 2000,
            "cpu": {"cpu_ms_per_url": {"workers": 2.0, "SeaweedFS": 1.0, "dispatcher": 0.1}}
            if lines == 10_000 else {}}


def test_memory_verdicts_check_the_ceiling_and_the_growth_per_kind():
    runs = [
        _memory_run("stored", 10_000, 80.0), _memory_run("stored", 100_000, 90.0),
        _memory_run("unresolvable", 10_000, 70.0),
        _memory_run("unresolvable", 1_000_000, 160.0, exact=False),
    ]
    stored, unresolvable = delivery.memory_verdicts(runs)
    assert stored == ("- stored: highest peak 90.0 MB (100,000 lines): within 150 MB; "
                      "100k vs 10k lines: +12% (within ±15%); every line got exactly one row")
    assert unresolvable == (
        "- unresolvable: highest peak 160.0 MB (1,000,000 lines): **above** 150 MB"
    )
    text = "\n".join(delivery.memory_markdown(runs))
    assert "| 100,000 | 90.0 MB | 85.0 MB | 100,000 / 0, yes | 100.0 | 1000 s | — |" in text
    assert "| unresolvable | 1,000,000 | 160.0 MB | 155.0 MB | 0 / 1,000,000, **no**" in text
    assert "| 10,000 | 80.0 MB | 75.0 MB | 10,000 / 0, yes | 100.0 | 100 s | 2.00, 1.00, 0.10 |" \
        in text


def test_peaks_overall_and_in_the_middle_half():
    times, values = [0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 15.0, 12.0, 30.0]
    assert delivery.peaks(times, values, wall=4.0) == (30.0, 20.0)
    assert delivery.peaks([], [], wall=1.0) == (0.0, 0.0)


def test_merge_results_keeps_the_parts_not_run_again():
    previous = {"publish": [1], "scaling": [2], "measured_at": {"publish": "t0", "scaling": "t0"}}
    merged = delivery.merge_results(previous, {"scaling": [3], "memory": [4]}, "t1")
    assert merged == {"publish": [1], "scaling": [3], "memory": [4],
                      "measured_at": {"publish": "t0", "scaling": "t1", "memory": "t1"}}
    assert delivery.merge_results({}, {"soak": []}, "t") == {"soak": [],
                                                             "measured_at": {"soak": "t"}}


def test_scaling_markdown_shows_rate_cores_and_central_cost():
    run = {
        "config": "threads:4/10", "slots": 32, "fleet": "8 × threads -c 4", "batch_size": 10,
        "max_in_flight": 1280, "steady_per_s": 150.0, "efficiency": 0.9375,
        "cpu": {"busy_cores": 1.1, "cores": {"workers": 0.65, "dispatcher": 0.04},
                "cpu_ms_per_url": {"workers": 4.3, "RabbitMQ": 0.2, "Redis": 0.1,
                                   "dispatcher": 0.3}},
    }
    assert delivery.central_ms(run) == pytest.approx(0.6)
    text = "\n".join(delivery.scaling_markdown([run]))
    assert ("| 32 | 8 × threads -c 4 | 10, 1280 | 150.0 | 94% | — | 1.1 | 0.65 | 0.00 | 0.00 | "
            "0.00 | 0.04 | 0.00 | 0.00 | 0.60 |") in text
    one = dict(run, slots=1, fleet="1 × threads -c 1", steady_per_s=5.0, efficiency=1.0)
    text = "\n".join(delivery.scaling_markdown([one, run]))
    assert "| 150.0 | 94% | 94% |" in text and "| 5.0 | 100% | 100% |" in text
    assert "lost its broker connection" not in text
    stuck = dict(run, broker_connection_losses=2)
    text = "\n".join(delivery.scaling_markdown([stuck]))
    assert "| 150.0 ⚠ 2 lost broker connections | 94% |" in text
    assert "the worker's main loop was stuck" in text and "or the broker restarted" in text
    assert "⚠ other jobs" not in text
    busy = dict(run, cpu=dict(run["cpu"], cores={"other jobs": 0.2, "other (kernel, "
                                                 "unattributed)": 0.1}))
    assert delivery.noisy(busy) and not delivery.noisy(run)
    text = "\n".join(delivery.scaling_markdown([busy]))
    assert "| 150.0 ⚠ other jobs | 94% |" in text and "lower than this machine can do" in text


# -- bench.s3put: uploads signed here against botocore's -----------------------------------------


@pytest.mark.integration
def test_the_upload_bench_runs_as_make_bench_runs_it(tmp_path: Path) -> None:
    out = tmp_path / "s3put.json"
    done = subprocess.run(
        [sys.executable, "-m", "screenshots.dev.bench.s3put", "--puts", "20", "--rounds", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [row["path"] for row in rows] == ["signed here", "botocore put_object"]
    assert all(row["client_cpu_ms"] > 0 and row["wall_ms"] > 0 for row in rows)
    assert "| signed here |" in done.stdout


def test_the_results_header_names_the_chromium_measured(tmp_path: Path) -> None:
    """``--chromium`` shows in the results' header: the headless shell prints the same
    "Chromium 156..." as the full browser, so the header names the binary, the default too; a
    binary that is not there says so instead of failing the run."""
    fake = tmp_path / "chromium-headless-shell"
    fake.write_text("#!/bin/sh\necho 'Chromium 156.0.1'\n")
    fake.chmod(0o755)
    assert bench_main.chromium_version(str(fake)) == f"Chromium 156.0.1 ({fake})"
    assert bench_main.chromium_version().endswith(f" ({bench_main.DEFAULT_CHROMIUM})")
    missing = str(tmp_path / "nothing")
    assert bench_main.chromium_version(missing) == f"Chromium (not found) ({missing})"
