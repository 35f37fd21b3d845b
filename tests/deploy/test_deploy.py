"""Issue #14, proven on this machine: the image builds, runs the service end to end, and the
service survives a partition and a killed host spread over several network "hosts".

Run by ``make test-deploy`` only (see ``conftest.py``), as root: the scripts under
``deploy/podman`` and ``deploy/multihost`` do the work (podman with runc, network namespaces,
the machine's RabbitMQ and Redis, a SeaweedFS of their own) and assert what a user would
check; a failure here shows the script's last lines, which say what broke.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where each script's whole output is kept (``<script>.log``).
OUTPUT = Path(tempfile.gettempdir()) / "screenshots-test-deploy"
IMAGE = os.environ.get("IMAGE", "localhost/screenshots:dev")

pytestmark = pytest.mark.integration


def run_script(name: str, *args: str, timeout: float, **env: str) -> str:
    """Run ``deploy/<name>`` and return its output; fail with its last lines if it fails."""
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / (Path(name).stem + ".log")
    started = time.monotonic()
    with log.open("w") as out:
        try:
            process = subprocess.run(
                ["sh", str(ROOT / "deploy" / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                timeout=timeout,
                check=False,
            )
            code: int | str = process.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout:.0f} s"
    text = log.read_text(errors="replace")
    elapsed = time.monotonic() - started
    with log.open("a") as out:
        out.write(f"\n[{name}: exit {code} after {elapsed:.0f} s]\n")
    if code != 0:
        tail = "\n".join(text.splitlines()[-40:])
        pytest.fail(f"deploy/{name} failed ({code}); last lines (all in {log}):\n{tail}")
    return text


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The Dockerfile built unchanged (skipped when nothing it copies changed)."""
    output = run_script("podman/build-image.sh", timeout=2300, IMAGE=IMAGE)
    yield output.strip().splitlines()[-1]


@pytest.mark.timeout(2400)  # the first test builds the image: debootstrap and a cold build
def test_the_dockerfile_builds_into_an_image_with_its_source_hash(image: str) -> None:
    assert image == IMAGE
    labels = subprocess.run(
        ["podman", "image", "inspect", "--format",
         '{{ index .Labels "screenshots.source-hash" }}', image],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{16}", labels), f"no source hash label on {image}: {labels!r}"


@pytest.mark.timeout(1200)
def test_workers_and_the_api_in_containers_serve_runs_whose_links_download(image: str) -> None:
    output = run_script("podman/e2e-local.sh", image, timeout=1200)
    assert "every link downloads a PNG" in output
    served = [int(n) for n in re.findall(r"worker\d ran (\d+) tasks", output)]
    assert sum(served) > 0, "no worker container ran a task"
    assert "the API container answered" in output


@pytest.mark.timeout(2400)
def test_hosts_cut_off_and_killed_lose_nothing_and_serve_again_when_back(image: str) -> None:
    """Two worker hosts, the services on a third, the dispatcher on a fourth: host 1's link is
    cut mid-run then restored, every process of host 2 is SIGKILLed and it restarts. Every URL
    must end with exactly one row, none an error, every link opening from the dispatcher's host,
    and both hosts must serve again once back."""
    output = run_script(
        "multihost/run.sh", image, timeout=2400, MULTIHOST_FAULTS="1", MULTIHOST_PARTITION="1",
        MULTIHOST_LOGS=str(OUTPUT / "multihost"),
    )
    assert "every link downloads a PNG" in output
    assert "host1 cut off" in output and "SIGKILLed" in output
    for host in (1, 2):
        assert f"host{host} served again after rejoining" in output, output[-2000:]
