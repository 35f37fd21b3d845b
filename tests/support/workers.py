"""Start real ``celery -A tasks worker`` processes for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.egress_servers import TEST_SITE_ALLOW

REPO = Path(__file__).resolve().parents[2]
#: Console scripts of the installed package (and of its dependencies), as users run them.
BIN = Path(sys.executable).parent
#: Seconds a worker may take to connect and report "ready".
READY_TIMEOUT = 60


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """Warm shutdown (SIGTERM), then SIGKILL if it does not exit in ``timeout`` s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def script(name: str) -> str:
    """The path of console script ``name`` in the virtualenv that runs the tests."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install`")
    return str(path)


def service_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "SCREENSHOT_"))}
    env["SCREENSHOT_EGRESS_ALLOW"] = TEST_SITE_ALLOW  # the test site is on loopback
    env.update(extra)
    return env


def start_worker(
    env: dict[str, str], log_dir: Path, name: str, concurrency: int = 2, pool: str = "prefork"
) -> Worker:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as handle:  # the worker writes to its own copy
        process = subprocess.Popen(
            [
                script("celery"), "-A", "tasks", "worker",
                "--loglevel=INFO", f"--concurrency={concurrency}", f"--pool={pool}",
                f"--hostname={name}@%h", "--without-gossip", "--without-mingle",
            ],
            # Not the checkout: a worker started the documented way must find the project.
            cwd=log_dir,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return wait_until_ready(Worker(name, process, log_path))


def wait_until_ready(worker: Worker, timeout: float = READY_TIMEOUT) -> Worker:
    """``worker`` once its log says it is ready; the test fails (and the worker is stopped)
    if it exits or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            code = worker.process.returncode
            pytest.fail(f"worker {worker.name} exited with {code}:\n{worker.log()[-3000:]}")
        if " ready." in worker.log():
            return worker
        time.sleep(0.2)
    worker.stop(5)
    pytest.fail(f"worker {worker.name} not ready within {timeout}s:\n{worker.log()[-3000:]}")
