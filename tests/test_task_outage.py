"""A network partition between a worker and the services never becomes an error row.

Issue #14 measured it: S3 unreachable, the task's storage retry could not be published either
(the broker was behind the same partition), Celery turned that into ``Reject(requeue=False)``,
the batch was dead-lettered and its URL became an error row. The task now gives such a message
back to the queue. Run here without a worker: the task's function with the broker and storage
failures simulated.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery.exceptions import Reject, Retry

from tasks import capture as module

SHOTS = [{"line": 1, "url": "http://a.example/"}, {"line": 2, "url": "http://b.example/"}]


@pytest.fixture
def storage_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shot of the batch is left pending: the storage is unreachable."""
    monkeypatch.setattr(module, "capture_batch", lambda shots, *_, **__: ([], list(shots)))
    monkeypatch.setattr(module, "_stored_rows", lambda task: None)


def run_task(**request: Any) -> list[dict[str, Any]]:
    module.capture.push_request(id="outage-test", retries=0, headers={}, **request)
    try:
        return module.capture.run(SHOTS)
    finally:
        module.capture.pop_request()


def test_a_retry_the_broker_cannot_take_requeues_the_batch(
    storage_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unpublishable(*args: Any, **kwargs: Any) -> None:
        # What Celery's Task.retry raises when publishing the retry fails.
        raise Reject(OSError(113, "No route to host"), requeue=False)

    monkeypatch.setattr(module.capture, "retry", unpublishable)
    with pytest.raises(Reject) as rejected:
        run_task()
    assert rejected.value.requeue is True, "the batch must go back to the queue, not die"
    assert "No route to host" in str(rejected.value.reason)


def test_a_published_retry_is_a_retry(
    storage_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def published(*args: Any, **kwargs: Any) -> None:
        raise Retry("storage unavailable", when=5)

    monkeypatch.setattr(module.capture, "retry", published)
    with pytest.raises(Retry):
        run_task()


def test_a_reject_that_already_requeues_is_left_alone(
    storage_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def requeued(*args: Any, **kwargs: Any) -> None:
        raise Reject("elsewhere", requeue=True)

    monkeypatch.setattr(module.capture, "retry", requeued)
    with pytest.raises(Reject) as rejected:
        run_task()
    assert rejected.value.requeue is True and rejected.value.reason == "elsewhere"
