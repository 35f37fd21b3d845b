"""The broker-less API fuzzed from the outside: Schemathesis, every check, from /openapi.json.

An independent fuzzer, run as a new user would run it (``schemathesis run URL``), against a real
uvicorn on loopback serving the broker-less app (stub engine, memory storage): generated and
schema-violating requests for every operation, its examples, its coverage of edge values, and
stateful sequences (create, then read what was created). The bar is zero failures: no 5xx, every
status and content type documented, bodies as the document says, schema-violating data refused.

Bounded in time: a fixed seed, a few examples per operation, deterministic generation, one
worker. Authenticated with a test key (``-H Authorization``); the per-key limit and the
failed-authentication limit are set far above what the run sends, so no 429 from them hides
an answer (the fuzzer's ``ignored_auth`` check sends wrong keys on purpose).

Two checks are told what this API answers, in ``schemathesis.toml`` below:

- ``positive_data_acceptance`` (schema-valid data is accepted) also takes **422** and **413**:
  some rules are not a schema's to state (a callback host that does not resolve, a time zone
  that does not exist, an option the engine does not support), and the body limit bounds the
  whole body, which no field's ``maxLength`` can;
- ``negative_data_rejection`` (schema-violating data is refused) also takes **413**, a refusal.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engines import create_engine
from screenshots.api import create_app
from screenshots.api.backends.pool import PoolBackend
from screenshots.api.config import load_api_config
from screenshots.core.settings import load_settings
from screenshots.storage.memory import MemoryStorage
from support.apiserver import serve

KEY = "fuzz-key-0123456789abcdef"
#: Requests per second and at once, per key and per address: far above what the run sends.
UNLIMITED = "1000000"
#: Examples per operation and phase: enough to reach every kind of field, within ~1 minute.
MAX_EXAMPLES = 25
SEED = 13

CONFIG = """\
[checks.positive_data_acceptance]
expected-statuses = [200, 202, 404, 413, 422, 429]

[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 405, 413, 415, 422, 429]
"""


def fuzzer() -> list[str]:
    """The ``schemathesis`` command of this environment."""
    script = Path(sys.executable).with_name("schemathesis")
    if script.is_file():
        return [str(script)]
    found = shutil.which("schemathesis")
    if found is None:
        pytest.skip("schemathesis is not installed (the test extra)")
    return [found]


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    settings = load_settings({})
    config = load_api_config({
        "SCREENSHOT_API_KEYS": f"fuzz:{KEY}",
        "SCREENSHOT_API_RATE": UNLIMITED,
        "SCREENSHOT_API_BURST": UNLIMITED,
        "SCREENSHOT_API_AUTH_FAILURE_RATE": UNLIMITED,
        "SCREENSHOT_API_AUTH_FAILURE_BURST": UNLIMITED,
        "SCREENSHOT_API_MAX_WAIT": "2",
    })
    backend = PoolBackend(
        lambda: create_engine("stub", settings), "stub", MemoryStorage(),
        tabs=2, wait_queue=8, uploads=2,
    )
    (tmp_path / "schemathesis.toml").write_text(CONFIG, encoding="utf-8")
    with serve(create_app(config, backend, settings, job_poll_interval=0.02)) as base:
        done = subprocess.run(
            [
                *fuzzer(), "--config-file", str(tmp_path / "schemathesis.toml"),
                "run", f"{base}/openapi.json",
                "--header", f"Authorization: Bearer {KEY}",
                "--checks", "all",
                "--max-examples", str(MAX_EXAMPLES),
                "--seed", str(SEED),
                "--generation-deterministic",
                "--workers", "1",
                "--request-timeout", "30",
                "--no-color",
            ],
            capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
        )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20000:]
    assert "Tested: 9" in report or "9 selected" in report, report[-3000:]
