"""The README's distributed setup followed as written: its step 3 settings, `screenshots-broker
setup`, then `honcho start` — every process of the Procfile, as its step 5 says.

A newcomer doing exactly that saw the worker stop before it was ready ("worker: Warm shutdown"):
the API (`web`) exits without `SCREENSHOT_API_KEYS`, which step 3 did not set, and honcho then
stops every process. The settings are read from the README itself, so the test fails again if
the README and the Procfile drift apart. Only the addresses are the test's own (its vhost, Redis
db, bucket and free ports).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.apiserver import free_port
from support.seaweedfs import S3Server
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


def procfile_names() -> list[str]:
    """The Procfile's process names, in order."""
    lines = (REPO / "Procfile").read_text(encoding="utf-8").splitlines()
    return [line.split(":", 1)[0] for line in lines if line.strip() and not line.startswith("#")]


def environment_after(lines: list[str], env: dict[str, str]) -> dict[str, str]:
    """``env`` once a shell has run ``lines`` (they may run commands: ``$(python3 ...)``)."""
    shell = subprocess.run(
        ["bash", "-c", "set -eu; " + "; ".join(lines) + "; env -0"],
        env=env, capture_output=True, check=True, timeout=30,
    )
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


def test_honcho_start_with_the_readmes_settings_keeps_every_process_up(
    rabbitmq: Broker, redis_db: RedisDb, s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    env = service_env(**server.env(bucket))  # step 2: the bucket and its AWS_* variables
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env = environment_after(readme_settings(), env)
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
