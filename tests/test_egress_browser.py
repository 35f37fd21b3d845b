"""The egress policy against real Chromium: an attacker's pages try every path to a secret server.

The attacker's site (``tests/site/attack``) runs on ``127.0.0.1``, which these tests allow
(``SCREENSHOT_EGRESS_ALLOW=127.0.0.1/32``); the secret server listens on ``127.0.0.2``, also
loopback and so refused by default. Every test ends by checking that the secret server received
no TCP connection and no UDP datagram at all.

The shared engine's tests run on both engines and on both of Debian's Chromium builds (the
headless shell, the default, and the full browser); the tests that start an engine of their own
run both engines on the default build.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from engines import chromium
from engines.playwright import PlaywrightEngine
from engines.selenium import SeleniumEngine
from screenshots.core.errors import BrowserCrashed, NavigationError
from screenshots.core.options import CaptureOptions
from screenshots.core.settings import FULL_CHROMIUM, HEADLESS_SHELL, Settings, load_settings
from screenshots.core.shot import Shot
from screenshots.core.urls import normalize_url
from screenshots.egress.policy import parse_allow_list
from screenshots.pipeline.screenshot import take_screenshot
from screenshots.storage.memory import MemoryStorage
from support.egress_servers import (
    ATTACK_DIR,
    AttackSite,
    SecretServer,
    attack_site,
    secret_server,
)
from support.tabs import TabbedEngine, tabbed_engine

pytestmark = pytest.mark.integration

OPTIONS = CaptureOptions(timeout=20, width=800, height=600)
BLOCKED = "blocked by egress policy: "


#: Engines the tests that start their own run, on the default build.
KINDS = ["selenium", "playwright"]
#: (engine, Chromium binary) pairs the shared engine's tests run on.
ENGINES = [
    pytest.param((kind, binary), id=f"{kind}-{Path(binary).name}")
    for kind in KINDS
    for binary in (HEADLESS_SHELL, FULL_CHROMIUM)
]


def _settings(allow: str, enabled: bool = True, binary: str | None = None) -> Settings:
    settings = load_settings({})
    if binary is not None:
        settings = dataclasses.replace(settings, chromium_path=binary)
    for path in (settings.chromium_path, settings.chromedriver_path):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: make install", pytrace=False)
    return dataclasses.replace(
        settings, egress_enabled=enabled, egress_allow=parse_allow_list(allow)
    )


def _engine(kind: str, settings: Settings) -> TabbedEngine:
    return tabbed_engine(kind, settings, settings.tabs)


def _listening(engine: TabbedEngine) -> list[Any]:
    """The addresses the engine's browser process listens on (TCP)."""
    browser_pid = engine.browser_pid
    assert browser_pid is not None
    connections = psutil.Process(browser_pid).net_connections(kind="tcp")
    return [c.laddr for c in connections if c.status == psutil.CONN_LISTEN]


@pytest.fixture(scope="module")
def secret() -> Iterator[SecretServer]:
    with secret_server("127.0.0.2") as server:
        yield server


@pytest.fixture(scope="module")
def attacker(secret: SecretServer) -> Iterator[AttackSite]:
    with attack_site(secret, "127.0.0.1") as site:
        yield site


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest, secret: SecretServer) -> Iterator[TabbedEngine]:
    kind, binary = request.param
    shared = _engine(kind, _settings("127.0.0.1/32", binary=binary))
    yield shared
    shared.close()
    assert chromium.our_browser_processes(owner_pid=os.getpid()) == []
    assert secret.hits == 0, secret.peers


@pytest.fixture(autouse=True)
def _secret_stays_untouched(secret: SecretServer) -> Iterator[None]:
    yield
    time.sleep(0.05)  # anything still in flight
    assert secret.hits == 0, f"the secret server was reached: {secret.peers}"


# -- subresources: blocked, counted, and the page is still captured -----------------------

#: Page -> fewest requests the proxy must have refused while it loaded.
SUBRESOURCE_PAGES = {
    "iframe.html": 1,
    "img.html": 2,
    "css-url.html": 2,
    "css-import.html": 3,
    "fetch.html": 1,
    "xhr.html": 1,
    "websocket.html": 1,
    "eventsource.html": 1,
    "worker.html": 3,  # fetch, XHR and a WebSocket from a dedicated worker
    "service-worker.html": 1,
    "prefetch.html": 1,  # prefetch / preload / modulepreload; preconnect opens nothing
    "beacon.html": 1,
    "media.html": 2,
    "oopif.html": 1,  # fetch from an out-of-process (cross-site) iframe
}


@pytest.mark.parametrize(("page", "at_least"), sorted(SUBRESOURCE_PAGES.items()))
def test_subresource_is_blocked_and_the_page_captured(
    engine: TabbedEngine, attacker: AttackSite, page: str, at_least: int
) -> None:
    capture = engine.capture(attacker.url(f"/{page}"), OPTIONS)
    assert capture.http_status == 200
    assert capture.final_url == attacker.url(f"/{page}")
    assert capture.image and capture.width == 800
    assert capture.blocked_requests >= at_least, capture
    if "attack(" in (ATTACK_DIR / page).read_text(encoding="utf-8"):
        assert capture.title is not None and ":" in capture.title, "the attack did not run"


def test_webrtc_sends_no_udp(engine: TabbedEngine, attacker: AttackSite) -> None:
    # Without the WebRTC flags this page sends STUN datagrams straight to the secret server.
    capture = engine.capture(attacker.url("/webrtc.html"), OPTIONS)
    assert capture.title is not None and capture.title.startswith("webrtc: ")


# -- navigations: the main document refused is an error row ------------------------------


@pytest.mark.parametrize(
    "path", ["/redirect-secret", "/meta-refresh.html", "/script-redirect.html", "/form.html"]
)
def test_navigation_to_the_secret_is_an_error(
    engine: TabbedEngine, attacker: AttackSite, path: str
) -> None:
    with pytest.raises(NavigationError) as caught:
        engine.capture(attacker.url(path), OPTIONS)
    assert caught.value.message == BLOCKED + "127.0.0.2 is loopback"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://127.0.0.2:{port}/", "127.0.0.2 is loopback"),
        ("http://2130706434:{port}/", "127.0.0.2 is loopback"),  # decimal
        ("http://0x7f000002:{port}/", "127.0.0.2 is loopback"),  # hex
        ("http://0x7f.0.0.2:{port}/", "127.0.0.2 is loopback"),  # hex part
        ("http://0177.0.0.2:{port}/", "127.0.0.2 is loopback"),  # octal
        ("http://127.2:{port}/", "127.0.0.2 is loopback"),  # short
        ("http://127.0.0.2.:{port}/", "127.0.0.2 is loopback"),  # trailing dot
        ("http://[::ffff:127.0.0.2]:{port}/", "::ffff:7f00:2 is IPv4-mapped 127.0.0.2"),
        ("http://[::ffff:7f00:2]:{port}/", "::ffff:7f00:2 is IPv4-mapped 127.0.0.2"),
        ("https://127.0.0.2:{port}/", "127.0.0.2 is loopback"),  # through CONNECT
        ("http://[::1]:{port}/", "::1 is loopback"),
        ("http://0.0.0.0:{port}/", "0.0.0.0 is unspecified (this network)"),
        ("http://0:{port}/", "0.0.0.0 is unspecified (this network)"),
        ("http://10.0.0.5/", "10.0.0.5 is private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://2852039166/", "169.254.169.254 is link-local"),
        ("http://100.100.100.200/", "100.100.100.200 is carrier-grade NAT"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is unique-local"),
        ("http://[64:ff9b::7f00:2]:{port}/", "64:ff9b::7f00:2 is NAT64"),
    ],
)
def test_direct_url_is_an_error(
    engine: TabbedEngine, secret: SecretServer, template: str, reason: str
) -> None:
    url = normalize_url(template.format(port=secret.port))
    started = time.monotonic()
    with pytest.raises(NavigationError) as caught:
        engine.capture(url, OPTIONS)
    assert caught.value.message.startswith(BLOCKED + reason), caught.value.message
    assert time.monotonic() - started < 5


def test_the_engine_goes_on_after_blocks(engine: TabbedEngine, attacker: AttackSite) -> None:
    capture = engine.capture(attacker.url("/index.html"), OPTIONS)
    assert capture.title == "Attacker"
    assert capture.blocked_requests == 0


# -- names that resolve to refused addresses -----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_host_names_are_resolved_and_checked(kind: str) -> None:
    """``localhost`` resolves to 127.0.0.1, refused when only 127.0.0.3 is allowed."""
    with (
        secret_server("127.0.0.1") as local_secret,
        attack_site(local_secret, "127.0.0.3") as site,
        _engine(kind, _settings("127.0.0.3/32")) as local,
    ):
        capture = local.capture(site.url("/fetch-localhost.html"), OPTIONS)
        assert capture.blocked_requests >= 1
        for host in ("localhost", "LOCALHOST"):
            with pytest.raises(NavigationError) as caught:
                local.capture(f"http://{host}:{local_secret.port}/", OPTIONS)
            assert caught.value.message == BLOCKED + "127.0.0.1 is loopback"
        for host in ("localhost.", "sub.localhost"):  # unknown to the resolver, or blocked
            with pytest.raises(NavigationError) as caught:
                local.capture(f"http://{host}:{local_secret.port}/", OPTIONS)
            assert caught.value.message.startswith((BLOCKED, "unknown host"))
        assert local.capture(site.url("/index.html"), OPTIONS).title == "Attacker"
        time.sleep(0.05)
        assert local_secret.hits == 0, local_secret.peers


# -- the browser's own control ports -------------------------------------------------------


def test_control_ports_are_out_of_reach_even_with_loopback_allowed() -> None:
    """The Selenium engine's browser listens for DevTools, ChromeDriver beside it: neither is
    reachable from a page, or as a URL, even when loopback is allowed."""
    with (
        secret_server("127.0.0.2") as allowed_server,
        attack_site(allowed_server, "127.0.0.1") as site,
        SeleniumEngine(_settings("127.0.0.0/8")) as local,
    ):
        # Loopback is allowed here: the other loopback server is reachable...
        assert local.capture(allowed_server.origin + "/", OPTIONS).title == "SECRET"
        assert allowed_server.connections >= 1
        profile = local.profile_dir
        assert profile is not None
        devtools = int((profile / "DevToolsActivePort").read_text().split()[0])
        listening = _listening(local)
        assert [a.port for a in listening] == [devtools]  # DevTools only, on loopback only
        assert all(ipaddress.ip_address(a.ip).is_loopback for a in listening)
        driver_port = local._browser.service.port  # type: ignore[union-attr]
        # ...but the DevTools endpoint and ChromeDriver are not, from a page or directly.
        query = f"?devtools={devtools}&driver={driver_port}"
        capture = local.capture(site.url("/control-ports.html" + query), OPTIONS)
        assert capture.blocked_requests >= 4, capture
        capture = local.capture(site.url("/devtools-socket.html" + query), OPTIONS)
        assert capture.title == "devtools-socket: rejected Error"
        assert capture.blocked_requests >= 1
        for url in (
            f"http://127.0.0.1:{devtools}/json/version",
            f"http://localhost:{driver_port}/status",
        ):
            with pytest.raises(NavigationError) as caught:
                local.capture(url, OPTIONS)
            assert "is a control port of the browser or the proxy" in caught.value.message
        assert local._browser is not None and local._browser.driver is not None
        assert len(local._browser.driver.window_handles) == 1  # /json/new opened nothing


def test_playwright_browser_listens_on_nothing_and_the_proxy_is_out_of_reach() -> None:
    """Playwright talks to its browser over a pipe: the browser has no port to reach; the egress
    proxy's own port is refused like a control port, even when loopback is allowed."""
    with (
        secret_server("127.0.0.2") as allowed_server,
        PlaywrightEngine(_settings("127.0.0.0/8")) as local,
    ):
        assert local.capture(allowed_server.origin + "/", OPTIONS).title == "SECRET"
        listening = _listening(local)
        assert listening == []
        proxy = local._egress.proxy_server()
        assert proxy is not None
        with pytest.raises(NavigationError) as caught:
            local.capture(proxy + "/", OPTIONS)
        assert "is a control port of the browser or the proxy" in caught.value.message


# -- failing closed ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_no_proxy_no_network(kind: str, secret: SecretServer, attacker: AttackSite) -> None:
    """If the proxy is gone, Chromium does not fall back to connecting directly; the engine
    replaces its browser and proxy, and goes on."""
    with _engine(kind, _settings("127.0.0.1/32")) as local:
        assert local.capture(attacker.url("/index.html"), OPTIONS).title == "Attacker"
        assert local._egress.proxy is not None
        local._egress.proxy.close()
        with pytest.raises(BrowserCrashed) as caught:
            local.capture(secret.origin + "/", OPTIONS)
        assert "egress proxy did not answer" in caught.value.message
        assert local.capture(attacker.url("/index.html"), OPTIONS).title == "Attacker"
        with pytest.raises(NavigationError):
            local.capture(secret.origin + "/", OPTIONS)


def test_flags() -> None:
    flags = chromium.chromium_flags("/tmp/p", 800, 600, "http://127.0.0.1:8888")
    assert "--proxy-server=http://127.0.0.1:8888" in flags
    assert "--proxy-bypass-list=<-loopback>" in flags
    assert "--host-resolver-rules=MAP * ^NOTFOUND, EXCLUDE 127.0.0.1" in flags
    assert "--webrtc-ip-handling-policy=disable_non_proxied_udp" in flags
    assert "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in flags
    assert not [f for f in chromium.chromium_flags("/tmp/p", 800, 600) if "proxy" in f]


@pytest.mark.parametrize("kind", KINDS)
def test_policy_off_starts_no_proxy(kind: str, attacker: AttackSite) -> None:
    with _engine(kind, _settings("", enabled=False)) as direct:
        assert direct.capture(attacker.url("/index.html"), OPTIONS).title == "Attacker"
        assert direct._egress.proxy is None


def test_rows(engine: TabbedEngine, attacker: AttackSite, secret: SecretServer) -> None:
    """Through the pipeline: a page with refused subresources is an ok row that counts them; a
    refused URL is an error row saying why."""
    storage = MemoryStorage()
    page = take_screenshot(Shot(1, attacker.url("/img.html"), OPTIONS), engine, storage)
    assert page.status == "ok" and page.blocked_requests is not None
    assert page.blocked_requests >= 2
    refused = take_screenshot(Shot(2, "http://10.0.0.5/", OPTIONS), engine, storage)
    assert refused.status == "error"
    assert refused.error == "blocked by egress policy: 10.0.0.5 is private"
    assert refused.attempts == 1  # permanent: not retried
