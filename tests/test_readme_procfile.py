"""The README's distributed setup followed as written: its step 2 (SeaweedFS and the variables
it prints), its step 3 settings, `screenshots-broker setup`, then `honcho start` — every process
of the Procfile, as its step 5 says.

Newcomers doing this saw the worker stop before it was ready ("worker: Warm shutdown"): the API
(`web`) exits on a configuration error and honcho then stops every process. First step 3 did not
set `SCREENSHOT_API_KEYS`; then step 2's fixed `sleep 10` could end before SeaweedFS had printed
its variables on a slow machine, leaving no `SCREENSHOT_BUCKET`. Steps 2 and 3 are read from
the README itself and run by bash, so the test fails again if the README and the Procfile drift
apart. Only the addresses are the test's own (its directory for step 2's files, vhost, Redis db
and free ports).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from support.apiserver import free_port
from support.procfile import procfile
from support.services import Broker, RedisDb
from support.workers import REPO, script, service_env

pytestmark = pytest.mark.integration

#: Seconds every process of the Procfile gets to be up.
START_TIMEOUT = 60.0


def readme_settings() -> list[str]:
    """The ``export`` lines of the README's step 3."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    step = text.split("\n3. Settings", 1)[1].split("\n4. ", 1)[0]
    lines = [line.strip() for line in step.splitlines() if line.strip().startswith("export ")]
    assert lines, "the README's step 3 has no settings"
    return lines


def readme_storage(folder: Path) -> list[str]:
    """The shell lines of the README's step 2 (SeaweedFS), with ``folder`` for its ``/tmp``
    files."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    step = text.split("\n2. An S3 bucket", 1)[1].split("\n3. ", 1)[0]
    block = step.split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    assert lines, "the README's step 2 has no commands"
    return [line.replace("/tmp/weed", str(folder / "weed")) for line in lines]


def procfile_names() -> list[str]:
    """The Procfile's process names, in order."""
    return list(procfile())


def environment_after(lines: list[str], env: dict[str, str], log: Path) -> dict[str, str]:
    """``env`` once bash has run ``lines`` (they may run commands: ``$(python3 ...)``, a
    server in the background); their errors go to ``log`` (a file: a server left running must
    not hold a pipe of ours)."""
    with log.open("wb") as errors:
        shell = subprocess.run(
            ["bash", "-c", "set -u\n" + "\n".join(lines) + "\nenv -0"],
            env=env, stdout=subprocess.PIPE, stderr=errors, timeout=120, cwd=REPO,
        )
    assert shell.returncode == 0, log.read_text(errors="replace")[-3000:]
    pairs = (item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # Flower's 401 without its password: it is up
    except OSError:
        return False


def stop_storage(folder: Path) -> None:
    """Stop step 2's SeaweedFS (its runner stops weed on SIGTERM)."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "screenshots.dev.devservers.seaweedfs" in command and str(folder) in " ".join(command):
            with contextlib.suppress(psutil.Error):
                process.terminate()
                process.wait(15)


def test_honcho_start_with_the_readmes_settings_keeps_every_process_up(
    rabbitmq: Broker, redis_db: RedisDb, tmp_path: Path
) -> None:
    env = service_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        steps = readme_storage(tmp_path) + readme_settings()
        env = environment_after(steps, env, tmp_path / "steps.log")
        errors = (tmp_path / "steps.log").read_text(errors="replace")
        assert env.get("SCREENSHOT_BUCKET"), f"step 2 ended without SCREENSHOT_BUCKET:\n{errors}"
        run_procfile(env, rabbitmq, redis_db, tmp_path)
    finally:
        stop_storage(tmp_path)


def run_procfile(env: dict[str, str], rabbitmq: Broker, redis_db: RedisDb, tmp_path: Path) -> None:
    """Step 4, then step 5's ``honcho start``: every process must come up and stay up."""
    # honcho gives each Procfile line PORT = base + 100 x its place: the API listens there.
    base, flower, metrics = free_port(), free_port(), free_port()
    web = base + 100 * procfile_names().index("web")
    env.update(
        CELERY_BROKER_URL=rabbitmq.url,  # the README's values, on the test's vhost and db
        CELERY_RESULT_BACKEND=redis_db.url,
        PORT=str(base), FLOWER_PORT=str(flower), WORKER_METRICS_PORT=str(metrics),
        SCREENSHOT_ENGINE="stub",
    )
    setup = subprocess.run(
        [script("screenshots-broker"), "setup"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [script("honcho"), "start"], cwd=REPO, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        up: dict[str, bool] = {}
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            stopped = re.findall(r"(\S+) stopped \(rc=", text)
            assert not stopped, f"{stopped} stopped at start:\n{text[-3000:]}"
            up = {
                "worker": " ready." in text,
                "web": answers(f"http://127.0.0.1:{web}/healthz"),
                "flower": answers(f"http://127.0.0.1:{flower}/"),
                "worker-metrics": answers(f"http://127.0.0.1:{metrics}/metrics"),
            }
            if all(up.values()):
                break
            time.sleep(0.5)
        assert all(up.values()), f"not up in {START_TIMEOUT:g} s: {up}\n{text[-3000:]}"
        assert "Traceback" not in log_path.read_text(errors="replace")
    finally:
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)
            try:
                honcho.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait(10)
