"""``python -m screenshots.dev.bench.apiload``: load benchmark of the broker-less API.

Two parts, each against a real ``uvicorn api:app`` process on loopback:

1. **Backpressure** (stub engine): ``--clients`` concurrent clients (default 200) post
   synchronous screenshot requests for ``--duration`` seconds (default 60). Reported:
   requests/s, p50/p99 latency (all answers, and 200s and 429s apart), the share of 429s,
   and the number of 5xx and transport errors, which must be zero (exit status 1 otherwise).
   The stub engine sleeps ``--stub-latency-ms`` per capture to stand in for a browser, so the
   pool (``--tabs``, ``--wait-queue``) saturates and the 429 path is exercised. A client that
   gets a 429 pauses ``--pause-on-429`` seconds before its next request.
2. **Chromium** (real pages, skipped with ``--skip-chromium``): p50 and p99 latency of one
   synchronous shot of the bundled demo pages, first on an idle server, then while
   ``--saturating-clients`` other clients keep every tab and the wait queue full. Every
   client, the probe included, waits ``Retry-After`` after a 429 and tries again; the probe's
   accepted-request latency and its latency including those retries are reported.

Only loopback addresses are used; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2

#: The pages shot in the Chromium part.
DEMO_PAGES = Path(__file__).resolve().parents[1] / "demo" / "pages"
#: Seconds a server may take to answer ``/healthz`` after it is started.
START_TIMEOUT = 60.0


@dataclass
class Tally:
    """Answers of a load run: latency per status code, transport errors."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    retry_after_missing: int = 0

    def add(self, status: int, seconds: float) -> None:
        self.latencies.setdefault(status, []).append(seconds)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def count(self, predicate: Any) -> int:
        return sum(len(v) for k, v in self.latencies.items() if predicate(k))

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def api_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Run ``uvicorn api:app`` with ``env`` on a free loopback port; yield its base URL."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "SCREENSHOT_"))}
    full_env.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "uvicorn"), "api:app", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--no-access-log",
            ],
            cwd=log_path.parent,  # uvicorn finds api:app installed, not from the checkout
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the API exited:\n{log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx2.HTTPError):
                    if httpx2.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start in time")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free loopback port; yield its base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def server_env(key: str, engine: str, storage: Path, **extra: str) -> dict[str, str]:
    env = {
        "SCREENSHOT_API_KEYS": f"bench:{key}",
        "SCREENSHOT_ENGINE": engine,
        "SCREENSHOT_API_STORAGE_DIR": str(storage),
        "SCREENSHOT_API_RATE": "1000000",
        "SCREENSHOT_API_BURST": "1000000",
    }
    env.update(extra)
    return env


# -- part 1: backpressure with the stub engine ----------------------------------------------


class KeepAliveClient:
    """A minimal HTTP/1.1 client over one keep-alive connection, one request at a time.

    Part 1 uses it instead of httpx so that, with 200 clients sharing two cores with the
    server, the clients cost little and the numbers describe the server.
    """

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self._head = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_json(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        request = (
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            writer.write(request)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split()[1])
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            payload = await reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, payload

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def hammer(
    base: str,
    key: str,
    clients: int,
    duration: float,
    pause_on_429: float,
    width: int = 320,
    height: int = 240,
) -> tuple[Tally, float]:
    """``clients`` closed-loop clients posting synchronous shots for ``duration`` seconds."""
    tally = Tally()
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    deadline = started + duration

    async def client(number: int) -> None:
        http = KeepAliveClient(host, int(port), key)
        sequence = 0
        try:
            while time.monotonic() < deadline:
                sequence += 1
                body = json.dumps(
                    {
                        "url": f"http://site{(number * 7919 + sequence) % 500}.example/",
                        "width": width,
                        "height": height,
                        "wait": 30,
                    }
                ).encode()
                sent = time.monotonic()
                try:
                    status, headers, _ = await http.post_json("/v1/screenshots", body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    tally.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.1)
                    continue
                tally.add(status, time.monotonic() - sent)
                if status == 429:
                    if not headers.get("retry-after", "").isdigit():
                        tally.retry_after_missing += 1
                    await asyncio.sleep(pause_on_429)
        finally:
            await http.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return tally, time.monotonic() - started


def backpressure_report(tally: Tally, elapsed: float, args: argparse.Namespace) -> dict[str, Any]:
    total = tally.total
    ok = tally.latencies.get(200, [])
    busy = tally.latencies.get(429, [])
    everything = tally.all_latencies()
    return {
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "stub_latency_ms": args.stub_latency_ms,
        "tabs": args.tabs,
        "wait_queue": args.wait_queue,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "captures_per_s": round(len(ok) / elapsed, 1),
        "p50_ms": ms(percentile(everything, 0.50)),
        "p99_ms": ms(percentile(everything, 0.99)),
        "ok_p50_ms": ms(percentile(ok, 0.50)),
        "ok_p99_ms": ms(percentile(ok, 0.99)),
        "busy_p50_ms": ms(percentile(busy, 0.50)),
        "busy_p99_ms": ms(percentile(busy, 0.99)),
        "share_429": round(len(busy) / total, 4) if total else 0.0,
        "status_counts": {str(k): len(v) for k, v in sorted(tally.latencies.items())},
        "count_5xx": tally.count(lambda code: code >= 500),
        "transport_errors": dict(tally.errors),
        "retry_after_missing": tally.retry_after_missing,
    }


# -- part 2: Chromium, idle and saturated ---------------------------------------------------


async def probe(base: str, key: str, urls: list[str], shots: int) -> dict[str, list[float]]:
    """``shots`` sequential synchronous shots; retries after 429 as ``Retry-After`` says."""
    accepted: list[float] = []
    end_to_end: list[float] = []
    rejected = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
        for number in range(shots):
            body = {"url": urls[number % len(urls)], "wait": 60}
            first = time.monotonic()
            while True:
                sent = time.monotonic()
                answer = await http.post("/v1/screenshots", json=body)
                if answer.status_code == 429:
                    rejected += 1
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                    continue
                if answer.status_code != 200 or answer.json().get("status") != "ok":
                    raise RuntimeError(f"shot failed: {answer.status_code} {answer.text[:300]}")
                done = time.monotonic()
                accepted.append(done - sent)
                end_to_end.append(done - first)
                break
    return {"accepted": accepted, "end_to_end": end_to_end, "rejected": [float(rejected)]}


async def saturated_probe(
    base: str, key: str, urls: list[str], shots: int, clients: int
) -> tuple[dict[str, list[float]], Tally]:
    """:func:`probe` while ``clients`` others keep the server saturated."""
    stop = asyncio.Event()
    tally = Tally()
    headers = {"Authorization": f"Bearer {key}"}

    async def background(number: int) -> None:
        async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            sequence = 0
            while not stop.is_set():
                sequence += 1
                body = {"url": urls[(number + sequence) % len(urls)], "wait": 60}
                sent = time.monotonic()
                try:
                    answer = await http.post("/v1/screenshots", json=body)
                except httpx2.HTTPError as exc:
                    tally.errors[type(exc).__name__] += 1
                    continue
                tally.add(answer.status_code, time.monotonic() - sent)
                if answer.status_code == 429:  # as polite as the probe
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))

    tasks = [asyncio.create_task(background(n)) for n in range(clients)]
    await asyncio.sleep(3.0)  # let the load fill the tabs and the wait queue
    try:
        result = await probe(base, key, urls, shots)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return result, tally


def chromium_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    key = secrets.token_urlsafe(24)
    pages = sorted(p.name for p in DEMO_PAGES.glob("*.html"))
    env = server_env(
        key,
        "selenium",
        work / "chromium-shots",
        SCREENSHOT_API_TABS=str(args.chromium_tabs),
        SCREENSHOT_API_WAIT_QUEUE=str(args.chromium_wait_queue),
        SCREENSHOT_EGRESS_ALLOW="127.0.0.1",
    )
    with static_site(DEMO_PAGES) as site, api_server(env, work / "chromium-api.log") as base:
        urls = [f"{site}/{page}" for page in pages]

        async def run() -> tuple[dict[str, list[float]], dict[str, list[float]], Tally]:
            # warm up every tab (starting a browser is not what is measured)
            async with httpx2.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
            ) as http:
                await asyncio.gather(
                    *(
                        http.post("/v1/screenshots", json={"url": urls[n % len(urls)], "wait": 60})
                        for n in range(args.chromium_tabs)
                    )
                )
            idle = await probe(base, key, urls, args.chromium_shots)
            saturated, load = await saturated_probe(
                base, key, urls, args.chromium_shots, args.saturating_clients
            )
            return idle, saturated, load

        idle, saturated, load = asyncio.run(run())
    return {
        "pages": len(urls),
        "shots": args.chromium_shots,
        "tabs": args.chromium_tabs,
        "wait_queue": args.chromium_wait_queue,
        "saturating_clients": args.saturating_clients,
        "idle_p50_ms": ms(percentile(idle["accepted"], 0.5)),
        "idle_p99_ms": ms(percentile(idle["accepted"], 0.99)),
        "saturated_p50_ms": ms(percentile(saturated["accepted"], 0.5)),
        "saturated_p99_ms": ms(percentile(saturated["accepted"], 0.99)),
        "saturated_end_to_end_p50_ms": ms(percentile(saturated["end_to_end"], 0.5)),
        "saturated_end_to_end_p99_ms": ms(percentile(saturated["end_to_end"], 0.99)),
        "probe_429s_when_saturated": int(saturated["rejected"][0]),
        "background_status_counts": {str(k): len(v) for k, v in sorted(load.latencies.items())},
        "background_5xx": load.count(lambda code: code >= 500),
    }


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m screenshots.dev.bench.apiload", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (part 1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (part 1)")
    parser.add_argument("--stub-latency-ms", type=int, default=50, help="stub capture time")
    parser.add_argument("--tabs", type=int, default=8, help="pool tabs (part 1)")
    parser.add_argument("--wait-queue", type=int, default=16, help="pool wait queue (part 1)")
    parser.add_argument("--pause-on-429", type=float, default=0.1, help="client pause after 429")
    parser.add_argument("--skip-chromium", action="store_true", help="only part 1")
    parser.add_argument("--chromium-shots", type=int, default=20, help="probe shots per phase")
    parser.add_argument("--chromium-tabs", type=int, default=2, help="pool tabs (part 2)")
    parser.add_argument("--chromium-wait-queue", type=int, default=4, help="wait queue (part 2)")
    parser.add_argument("--saturating-clients", type=int, default=8, help="load in part 2")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="api-loadtest-") as tmp:
        work = Path(tmp)
        key = secrets.token_urlsafe(24)
        env = server_env(
            key,
            "stub",
            work / "stub-shots",
            SCREENSHOT_STUB_LATENCY_MS=str(args.stub_latency_ms),
            SCREENSHOT_API_TABS=str(args.tabs),
            SCREENSHOT_API_WAIT_QUEUE=str(args.wait_queue),
        )
        print(f"part 1: {args.clients} clients for {args.duration:g} s, stub engine", flush=True)
        with api_server(env, work / "stub-api.log") as base:
            tally, elapsed = asyncio.run(
                hammer(base, key, args.clients, args.duration, args.pause_on_429)
            )
        results["backpressure"] = backpressure_report(tally, elapsed, args)
        print(json.dumps(results["backpressure"], indent=2), flush=True)
        if not args.skip_chromium:
            print("part 2: Chromium, one synchronous shot idle vs saturated", flush=True)
            results["chromium"] = chromium_part(args, work)
            print(json.dumps(results["chromium"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    failures = results["backpressure"]["count_5xx"] + sum(
        results["backpressure"]["transport_errors"].values()
    )
    failures += results.get("chromium", {}).get("background_5xx", 0)
    if failures:
        print(f"FAIL: {failures} 5xx answers or transport errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
