"""``python -m screenshots.dev.bench.visual``: what seeing what changed costs (issue #12).

- per shot, in the worker: decoding the image, its perceptual hash and thumbnail (the store
  phase's :func:`screenshots.visual.look.look_of`), and the pixel diff a comparison makes,
  on the stub's 1280×800 PNG and on a page-like one;
- the stub pipeline's per-URL CPU with them (:class:`~screenshots.pipeline.screenshot.Pipeline`
  with the stub engine and memory storage, in this process: the stub's images are identical
  bytes, whose look is remembered) and the share a new image's look would take;
- look-alike grouping (:mod:`screenshots.visual.groups`, multi-index hashing) at 100k and 1M
  rows: near-duplicate clusters plus unrelated pages, and the worst case of all-unrelated
  random hashes;
- with ``--report-rows N``: writing and opening a report of N synthetic rows in headless
  Chromium (until the first page of cards is shown).

Prints a table and, with ``--json PATH``, writes the numbers.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engines.stub import StubEngine
from screenshots.core.options import CaptureOptions
from screenshots.core.result import Result
from screenshots.core.shot import Shot
from screenshots.pipeline.screenshot import Pipeline
from screenshots.storage.memory import MemoryStorage
from screenshots.visual import hashing, look, thumbnails
from screenshots.visual.diff import diff_images
from screenshots.visual.groups import DEFAULT_DISTANCE, group_hashes
from screenshots.visual.look import look_of, reduced


def per_call_us(work: Callable[[], object], seconds: float = 1.0) -> float:
    """Mean microseconds of ``work()`` over about ``seconds`` (after one warm-up call)."""
    work()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        calls += 1
    return (time.perf_counter() - started) / calls * 1e6


def page_png(seed: int = 0) -> bytes:
    """A 1280×800 page-like PNG: a banner, text and blocks."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1280, 800), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1280, 90), fill="#1d3557")
    for n in range(300):
        draw.text((rng.randrange(1200), rng.randrange(100, 790)), f"lorem ipsum {n}", fill="#222")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _hash(small: Image.Image) -> str:
    return hashing.phash_hex(reduced(small))


def shot_costs() -> dict[str, float]:
    stub = StubEngine().capture("http://a.example/", CaptureOptions()).image
    costs: dict[str, float] = {}
    for name, data in (("stub", stub), ("page", page_png())):
        image = hashing.open_image(data)
        small = reduced(image)
        other = hashing.open_image(page_png(1))
        costs[f"{name}_decode_us"] = per_call_us(partial(hashing.open_image, data))
        costs[f"{name}_hash_us"] = per_call_us(partial(_hash, small))
        costs[f"{name}_thumbnail_us"] = per_call_us(partial(thumbnails.thumbnail_webp, small))
        costs[f"{name}_look_us"] = per_call_us(partial(look._look, data))  # a new image
        costs[f"{name}_look_again_us"] = per_call_us(partial(look_of, data))  # the same bytes
        costs[f"{name}_diff_us"] = per_call_us(partial(diff_images, image, other))
        changed = diff_images(image, other)
        costs[f"{name}_diff_image_us"] = per_call_us(partial(changed.image_png, other))
    return costs


def pipeline_share(look_us: float, urls: int = 400) -> dict[str, float]:
    """Per-URL CPU time of the stub pipeline (one thread, memory storage: its images are all
    the same bytes, so their look is remembered) and what a new image's look (``look_us``)
    would add to it."""
    pipeline = Pipeline(MemoryStorage())
    engine = StubEngine(latency=0.0)
    shots = [Shot(line=n, url=f"http://h{n}.example/", options=CaptureOptions())
             for n in range(urls)]
    started = time.process_time()
    for shot in shots:
        row = pipeline.take(shot, lambda: engine)
        assert isinstance(row, Result) and row.ok
    per_url = (time.process_time() - started) / urls * 1e6
    return {
        "stub_pipeline_cpu_per_url_us": per_url,
        "stub_urls_per_cpu_second": 1e6 / per_url,
        "new_image_look_share_pct": 100 * look_us / (per_url + look_us),
        "urls_per_cpu_second_if_every_image_is_new": 1e6 / (per_url + look_us),
    }


def synthetic_hashes(rows: int, *, unrelated: float, seed: int = 1) -> np.ndarray:
    """``rows`` hashes: clusters of near-duplicates (1-3 bits from their template; templates
    are one per 1,000 rows) and a share ``unrelated`` of random ones."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 2**63, size=max(1, rows // 1000), dtype=np.int64).astype(np.uint64)
    values = templates[rng.integers(0, templates.size, size=rows)]
    for _ in range(3):
        flip = rng.random(rows) < 0.5
        bits = rng.integers(0, 64, size=rows).astype(np.uint64)
        values = np.where(flip, values ^ (np.uint64(1) << bits), values)
    random_rows = rng.random(rows) < unrelated
    values[random_rows] = rng.integers(0, 2**63, size=int(random_rows.sum()), dtype=np.int64
                                       ).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    return values


def grouping_times(sizes: list[int], distances: list[int]) -> list[dict[str, float]]:
    results = []
    for rows in sizes:
        for unrelated in (0.3, 1.0):
            values = synthetic_hashes(rows, unrelated=unrelated)
            present = np.ones(rows, dtype=bool)
            for distance in distances:
                started = time.perf_counter()
                found = group_hashes(values, present, distance)
                results.append({
                    "rows": rows, "unrelated": unrelated, "distance": distance,
                    "seconds": time.perf_counter() - started, "groups": found.count,
                })
    return results


def report_open_time(rows: int) -> dict[str, float]:
    """Write a report of ``rows`` synthetic rows and open it in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from screenshots.batch.report import write_report
    from screenshots.core.settings import load_settings

    hashes = synthetic_hashes(rows, unrelated=0.3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        manifest = out / "results.jsonl"
        with manifest.open("w", encoding="utf-8") as handle:
            for n in range(rows):
                key = f"screenshots/{n % 256:02x}/{n:064x}"
                row = Result(
                    line=n + 1, url=f"https://host{n}.example/", status="ok",
                    link=(out / f"{key}.png").as_uri(), width=1280, height=800, bytes=50_000 + n,
                    duration_ms=n % 5000, http_status=200, title=f"Host {n}", format="png",
                    engine="stub", key=f"{key}.png", phash=f"{int(hashes[n]):016x}",
                    thumbnail_link=(out / f"{key}.thumb.webp").as_uri(),
                )
                handle.write(json.dumps(row.to_dict()) + "\n")
        started = time.perf_counter()
        report = write_report(out, manifest)
        written = time.perf_counter() - started
        size_mb = report.stat().st_size / 1e6
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=load_settings().chromium_path,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(report.as_uri(), wait_until="domcontentloaded", timeout=600_000)
            page.wait_for_function(
                "document.querySelectorAll('.card').length > 0", timeout=600_000
            )
            opened = time.perf_counter() - started
            started = time.perf_counter()
            page.check("#grouped")
            page.wait_for_function("document.getElementById('shown').textContent !== "
                                   f"'{rows}'", timeout=600_000)
            grouped = time.perf_counter() - started
            browser.close()
    return {"rows": rows, "write_s": written, "size_mb": size_mb, "open_s": opened,
            "group_toggle_s": grouped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.bench.visual")
    parser.add_argument("--sizes", default="100000,1000000", help="grouping sizes (rows)")
    parser.add_argument("--distances", default=f"2,{DEFAULT_DISTANCE}",
                        help="grouping distances (bits)")
    parser.add_argument("--report-rows", type=int, default=0,
                        help="also write and open a report of this many rows")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    numbers: dict[str, object] = {}
    costs = shot_costs()
    numbers["per_shot"] = costs
    for name, value in costs.items():
        print(f"{name:28} {value:10.0f} µs")
    share = pipeline_share(costs["stub_look_us"])
    numbers["pipeline"] = share
    for name, value in share.items():
        print(f"{name:34} {value:10.1f}")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    distances = [int(d) for d in args.distances.split(",") if d]
    grouping = grouping_times(sizes, distances)
    numbers["grouping"] = grouping
    for row in grouping:
        print(f"grouping {row['rows']:>9} rows, {row['unrelated']:.0%} unrelated, "
              f"distance {row['distance']}: {row['seconds']:.2f} s, {row['groups']} groups")
    if args.report_rows:
        opened = report_open_time(args.report_rows)
        numbers["report"] = opened
        print(f"report of {opened['rows']} rows: written in {opened['write_s']:.1f} s "
              f"({opened['size_mb']:.0f} MB), first page shown in {opened['open_s']:.1f} s, "
              f"grouped in {opened['group_toggle_s']:.1f} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
