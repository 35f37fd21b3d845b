"""A worker whose host lost its network requeues its shots: the page said nothing about itself.

Issue #14's multi-host run, after the storage-retry fix: on the host whose link was cut, the
browser's navigation failed with ``net::ERR_ADDRESS_UNREACHABLE`` and that became the URL's
error row. Now such a failure is checked against the worker's own path to its services (a TCP
connect to the broker's, the result back end's and S3's address from the settings); when they
are unreachable too the shot goes back to the queue like a storage outage. Run here without a
network: the probe is faked, or aimed at a loopback port nothing listens on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from engines.base import Capture
from engines.stub import StubEngine
from screenshots.core.errors import (
    CaptureTimeout,
    NavigationError,
    StorageUnavailable,
    WorkerOffline,
)
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import load_settings
from screenshots.core.shot import Shot
from screenshots.pipeline.reachability import ServiceProbe, is_host_network_code
from screenshots.pipeline.screenshot import Pipeline
from screenshots.storage.memory import MemoryStorage
from tasks import capture as task_module
from tasks import resources

URL = "http://10.231.0.1:8080/page"
UNREACHABLE = "net::ERR_ADDRESS_UNREACHABLE"


class UnreachablePage(StubEngine):
    """The stub engine, failing every navigation the way Chromium does with ``code``."""

    def __init__(self, code: str = UNREACHABLE) -> None:
        super().__init__(latency=0.0)
        self.code = code

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        raise NavigationError(f"10.231.0.1 is unreachable ({self.code})", code=self.code)


class FakeProbe:
    """A probe answering ``down`` and counting its calls."""

    def __init__(self, *down: str) -> None:
        self.down = list(down)
        self.calls = 0

    def __call__(self) -> list[str]:
        self.calls += 1
        return self.down


def take(
    probe: FakeProbe, engine: StubEngine, raise_outage: bool = True, names_by_proxy: bool = False
) -> Any:
    pipeline = Pipeline(
        MemoryStorage(),
        raise_storage_outage=raise_outage,
        network_probe=probe,
        names_by_proxy=names_by_proxy,
        sleep=lambda _: None,
    )
    return pipeline.take(Shot(line=1, url=URL, options=CaptureOptions()), lambda: engine)


def test_an_unreachable_page_on_a_host_without_network_goes_back_to_the_queue() -> None:
    probe = FakeProbe("10.231.0.1:5672 (No route to host)")
    with pytest.raises(StorageUnavailable) as raised:
        take(probe, UnreachablePage())
    assert isinstance(raised.value, WorkerOffline)
    assert "10.231.0.1:5672" in raised.value.message and UNREACHABLE in raised.value.message
    assert probe.calls == 1


@pytest.mark.parametrize(
    "code",
    ["net::ERR_INTERNET_DISCONNECTED", "net::ERR_NETWORK_CHANGED", "ERR_NAME_RESOLUTION_FAILED",
     "net::ERR_NETWORK_ACCESS_DENIED", "net::ERR_CONNECTION_TIMED_OUT"],
)
def test_every_code_that_may_mean_no_network_is_checked(code: str) -> None:
    with pytest.raises(WorkerOffline):
        take(FakeProbe("s3:8333 (Network is unreachable)"), UnreachablePage(code))


class HangingPage(StubEngine):
    """Every capture times out, as a page load does when the link goes down under it."""

    def __init__(self) -> None:
        super().__init__(latency=0.0)
        self.calls = 0

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        self.calls += 1
        raise CaptureTimeout("page did not finish loading within 30 s")


def test_a_capture_that_timed_out_on_every_attempt_on_a_cut_off_host_is_requeued() -> None:
    engine = HangingPage()
    with pytest.raises(WorkerOffline):
        take(FakeProbe("10.231.0.1:6379 (No route to host)"), engine)
    assert engine.calls == 3  # the in-process retries first: the probe runs once, at the end


def test_a_timeout_with_the_services_reachable_is_the_page_s_error_row() -> None:
    row = take(FakeProbe(), HangingPage())
    assert row.status == "error" and "gave up after 3 attempts" in (row.error or "")


def test_with_the_services_reachable_the_page_s_own_error_is_the_row() -> None:
    probe = FakeProbe()
    row = take(probe, UnreachablePage())
    assert row.status == "error" and UNREACHABLE in (row.error or "")
    assert "services" not in (row.error or "") and probe.calls == 1


def test_errors_that_are_never_the_host_s_network_are_not_probed() -> None:
    probe = FakeProbe("broker down")
    for code in ("net::ERR_CONNECTION_REFUSED", "net::ERR_CERT_DATE_INVALID", "tab crashed"):
        row = take(probe, UnreachablePage(code))
        assert row.status == "error" and code in (row.error or "")
    assert probe.calls == 0


def test_without_a_queue_to_go_back_to_the_row_says_the_machine_was_offline() -> None:
    row = take(FakeProbe("10.231.0.1:8333 (No route to host)"), UnreachablePage(), False)
    assert row.status == "error"
    assert "cannot reach its services either: 10.231.0.1:8333" in (row.error or "")


def test_a_name_the_egress_proxy_s_resolver_says_does_not_exist_is_the_page_s_error_unprobed(
) -> None:
    """The most common error of a large URL list: a dead domain. With the egress proxy
    resolving names, ERR_NAME_NOT_RESOLVED is a resolver's answer (a host without network gets
    ERR_NAME_RESOLUTION_FAILED from it), so the row is the page's and no service is dialled."""
    probe = FakeProbe("10.231.0.1:5672 (No route to host)")
    row = take(probe, UnreachablePage("net::ERR_NAME_NOT_RESOLVED"), names_by_proxy=True)
    assert row.status == "error" and "ERR_NAME_NOT_RESOLVED" in (row.error or "")
    assert probe.calls == 0
    with pytest.raises(WorkerOffline):  # no resolver answered: maybe this host's network
        take(probe, UnreachablePage("net::ERR_NAME_RESOLUTION_FAILED"), names_by_proxy=True)
    # Chromium resolving names itself (egress policy off) says NOT_RESOLVED for both: probed.
    with pytest.raises(WorkerOffline):
        take(probe, UnreachablePage("net::ERR_NAME_NOT_RESOLVED"), names_by_proxy=False)
    assert probe.calls == 2


@pytest.mark.parametrize(("policy", "by_proxy"), [("on", True), ("off", False)])
def test_the_pipeline_of_the_settings_knows_who_resolves_names(policy: str, by_proxy: bool) -> None:
    settings = load_settings({"SCREENSHOT_EGRESS_POLICY": policy})
    assert Pipeline.from_settings(settings, MemoryStorage()).names_by_proxy is by_proxy


def test_codes_are_recognised_with_or_without_chromium_s_prefix() -> None:
    assert is_host_network_code("net::ERR_ADDRESS_UNREACHABLE")
    assert is_host_network_code("ERR_INTERNET_DISCONNECTED")
    assert not is_host_network_code("net::ERR_CONNECTION_REFUSED")
    assert not is_host_network_code(None)


def test_the_probe_connects_to_the_services_the_settings_name() -> None:
    settings = load_settings(
        {
            "CELERY_BROKER_URL": "amqp://u:p@10.231.0.1:5673//shots;amqp://u:p@10.231.0.9//",
            "CELERY_RESULT_BACKEND": "redis://10.231.0.1/3",
            "AWS_ENDPOINT_URL_S3": "http://s3.internal:8333",
        }
    )
    tried: list[tuple[str, int]] = []
    refused = {("10.231.0.1", 5673), ("s3.internal", 8333)}

    def connect(address: tuple[str, int], timeout: float) -> None:
        tried.append(address)
        if address in refused:
            raise ConnectionRefusedError(111, "Connection refused")

    probe = ServiceProbe.from_settings(settings, timeout=0.5, connect=connect)
    down = probe()
    # The failover broker answered, so the broker is reachable; S3 is not.
    assert down == ["s3.internal:8333 (Connection refused)"]
    assert tried == [
        ("10.231.0.1", 5673), ("10.231.0.9", 5672), ("10.231.0.1", 6379), ("s3.internal", 8333),
    ]
    assert ServiceProbe.from_settings(load_settings({}))() == []


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port bound by this test and never listened on: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def test_the_task_requeues_the_shot_instead_of_an_error_row(
    dead_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task's batch body: the probe is real (a TCP connect to the settings' addresses),
    the services are a port nothing answers on; the shot is pending, not an error row."""
    settings = load_settings(
        {
            "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{dead_port}//",
            "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{dead_port}/0",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{dead_port}",
        }
    )
    monkeypatch.setattr(resources, "_settings", settings)
    monkeypatch.setattr(resources, "_storage", MemoryStorage())
    monkeypatch.setattr(resources, "engine", lambda name=None: UnreachablePage())
    shots = [{"line": 1, "url": URL}, {"line": 2, "url": URL + "2"}]
    rows, pending = task_module.capture_batch(shots, None)
    assert rows == [] and pending == shots
