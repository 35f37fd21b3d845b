"""``python -m screenshots.dev.bench.s3put``: what one upload costs, signed here or by botocore.

The reason :mod:`screenshots.storage.signed_put` exists: a throw-away SeaweedFS on loopback, an
:class:`~screenshots.storage.s3.S3Storage` built from the environment as the worker's is, and
rounds of uploads of a screenshot-sized object with a version's metadata and tags, interleaved:
``storage.put`` (the signed fast path) and the same object through botocore's ``put_object``.
Reports the CPU milliseconds per upload of this process (the worker's share) and of SeaweedFS,
and the wall time, one after the other on an otherwise idle machine.

Prints a table and, with ``--json PATH``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from screenshots.dev.devservers.seaweedfs import start_seaweedfs, stop_seaweedfs
from screenshots.storage.s3 import S3Storage

BUCKET = "bench-uploads"
METADATA = {"width": "1280", "height": "800", "engine": "selenium", "phash": "8f0f0f0f0f0f0f0f"}


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (psutil, as the other benches)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(puts: int, rounds: int, size: int) -> list[dict[str, float | str]]:
    """Rows of ``path``, ``client_cpu_ms``, ``server_cpu_ms``, ``wall_ms`` per upload, one per
    path and round."""
    server = start_seaweedfs(Path(tempfile.mkdtemp(prefix="bench-s3put-")))
    rows: list[dict[str, float | str]] = []
    try:
        os.environ.update(server.env(BUCKET))
        server.client().create_bucket(Bucket=BUCKET)
        storage = S3Storage(BUCKET)
        client = storage.client
        if storage._putter is None:
            raise SystemExit("the storage did not learn to sign uploads: nothing to compare")
        data = os.urandom(size)
        version = {**METADATA, "version": "bench/v/1.png"}

        def signed(n: int) -> None:
            storage.put(f"signed/{n}.png", data, "image/png", version, {"kind": "version"})

        def botocore(n: int) -> None:
            client.put_object(
                Bucket=BUCKET,
                Key=f"botocore/{n}.png",
                Body=data,
                ContentType="image/png",
                Metadata=version,
                Tagging="kind=version",
            )

        paths: list[tuple[str, Callable[[int], None]]] = [
            ("signed here", signed),
            ("botocore put_object", botocore),
        ]
        for _name, warm in paths:  # both warmed first: connections, caches
            for n in range(20):
                warm(n)
        for _ in range(rounds):
            for name, work in paths:
                server_before = _process_cpu(server.process.pid)
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                for n in range(puts):
                    work(n)
                rows.append(
                    {
                        "path": name,
                        "client_cpu_ms": (time.process_time() - cpu_before) / puts * 1000,
                        "server_cpu_ms": (_process_cpu(server.process.pid) - server_before)
                        / puts
                        * 1000,
                        "wall_ms": (time.perf_counter() - wall_before) / puts * 1000,
                    }
                )
    finally:
        stop_seaweedfs(server)
    return rows


def table(rows: list[dict[str, float | str]]) -> str:
    lines = [
        "| upload | CPU-ms, this process | CPU-ms, SeaweedFS | wall ms |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['client_cpu_ms']:.3f} | {row['server_cpu_ms']:.3f} "
            f"| {row['wall_ms']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screenshots.dev.bench.s3put")
    parser.add_argument("--puts", type=int, default=1000, help="uploads per path and round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--size", type=int, default=20_000, help="object size in bytes")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    rows = measure(args.puts, args.rounds, args.size)
    print(table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
