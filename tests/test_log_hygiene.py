"""Secrets stay out of logs: presigned links in task results, broker passwords, Flower auth."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from celery import Celery

import tasks.celery  # noqa: F401 - installs the quiet success message
from screenshots.core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SIGNED = "https://bucket.s3.example/k.png?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA"


def test_task_success_log_has_no_return_value(caplog: pytest.LogCaptureFixture) -> None:
    app = Celery("hygiene", set_as_current=False)

    @app.task
    def shoot() -> list[dict[str, str]]:
        return [{"url": "https://example.com/", "link": SIGNED}]

    with caplog.at_level(logging.INFO):
        assert shoot.apply().get() == [{"url": "https://example.com/", "link": SIGNED}]
    assert any("succeeded in" in r.getMessage() for r in caplog.records)
    assert "X-Amz" not in caplog.text


def test_settings_never_show_secrets() -> None:
    settings = load_settings(
        {
            "CELERY_BROKER_URL": "amqp://user:hunter2@broker:5672//",
            "CELERY_RESULT_BACKEND": "redis://:hunter3@redis:6379/0",
        }
    )
    assert "hunter" not in repr(settings)


def test_flower_requires_basic_auth() -> None:
    flower = [
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("flower:")
    ]
    assert len(flower) == 1
    assert "--basic-auth=${FLOWER_BASIC_AUTH:?" in flower[0]
    assert "--address=${FLOWER_ADDRESS:-127.0.0.1}" in flower[0]
