"""One ChromeDriver, its Chromium and its profile directory: starting, checking, killing them.

The browser is started by ChromeDriver with the flags of
:func:`engines.chromium.chromium_flags`, off the record, downloads and pop-ups refused. The
captures do not go through ChromeDriver: the browser's DevTools endpoint (ChromeDriver's
``debuggerAddress``) is reached directly, over a browser-wide websocket
(:meth:`Browser.browser_command`) and one websocket per tab
(:class:`~engines.selenium.cdptab.CdpTab`, :meth:`Browser.new_tab`), each tab in a browser
context of its own. ChromeDriver's own first tab is closed once the first of ours is open.
:meth:`Browser.kill` may be called from any thread (the watchdog's): it kills ChromeDriver,
Chromium and its crash handler, found by profile.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import subprocess
import threading
from typing import Any

import psutil
import urllib3
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.remote_connection import RemoteConnection
from selenium.webdriver.remote.webdriver import WebDriver as RemoteWebDriver

from engines import chromium
from engines.selenium import cdp
from engines.selenium.cdptab import CdpTab
from screenshots.core.settings import Settings

logger = logging.getLogger(__name__)

#: Seconds ``close()`` lets ChromeDriver shut Chromium down before everything is killed.
QUIT_TIMEOUT = 3.0
#: Errors that mean ChromeDriver or Chromium is gone or not answering.
TRANSPORT_ERRORS = (
    WebDriverException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,  # a truncated JSON answer from a dying driver
    cdp.Closed,  # a DevTools websocket closed: its tab or the browser is gone
    cdp.CdpError,  # a DevTools command refused (by a dying browser)
)
#: Not set by anyone: keeps ``SE_CHROMEDRIVER`` from overriding ``Settings.chromedriver_path``.
_NO_DRIVER_ENV = "SCREENSHOTS_SELENIUM_DRIVER_PATH_UNUSED"


class Browser:
    """One ChromeDriver, its Chromium and its profile directory."""

    def __init__(
        self, settings: Settings, width: int, height: int, proxy_server: str | None = None
    ) -> None:
        self.profile = chromium.new_profile_dir()
        self.proxy_server = proxy_server  # the egress proxy every request goes through
        self.width, self.height = width, height
        preexec = chromium.parent_death_signal_preexec()
        self.service = Service(
            executable_path=settings.chromedriver_path,
            log_output=subprocess.DEVNULL,
            env=chromium.browser_environment(self.profile),
            driver_path_env_key=_NO_DRIVER_ENV,
            popen_kw={"preexec_fn": preexec} if preexec else {},
        )
        self.chromium_path = settings.chromium_path
        self.driver: webdriver.Chrome | None = None
        self.driver_process: psutil.Process | None = None
        self.browser_process: psutil.Process | None = None
        self.connection: cdp.Connection | None = None  # the browser-wide DevTools websocket
        self.address = ""  # host:port of the DevTools endpoint
        self.default_user_agent = ""
        self.captures = 0
        self._first_target: str | None = None  # ChromeDriver's tab, closed once ours is open
        self._lock = threading.Lock()

    def start(self) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = self.chromium_path
        if chromium.is_headless_shell(self.chromium_path):
            options.binary_location = chromium.start_page_launcher(self.profile, self.chromium_path)
        # Navigation returns at DOMContentLoaded; the engine waits for load itself when asked
        # (wait_until), which WebDriver can only choose per session.
        options.page_load_strategy = "eager"
        for flag in chromium.chromium_flags(
            self.profile, self.width, self.height, self.proxy_server, binary=self.chromium_path
        ):
            options.add_argument(flag)
        # Off the record: what pages store lives in memory, never in the profile on disk, and
        # wiping it between captures (SeleniumTab.forget_previous_page) is several times
        # cheaper.
        options.add_argument("--incognito")
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(self.profile / "downloads"),
                **chromium.PROFILE_PREFS,  # no downloads, PDFs not shown
            },
        )
        # Pop-ups stay blocked (ChromeDriver would allow them) so no tabs pile up; dialogs are
        # dismissed by the tabs (CdpTab).
        options.unhandled_prompt_behavior = "dismiss"
        options.add_experimental_option("excludeSwitches", ["disable-popup-blocking"])
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver_process = psutil.Process(self.service.process.pid)
        self.browser_process = self._find_browser()
        address = self.debugger_address()
        if address is None:
            raise WebDriverException("ChromeDriver did not give the DevTools address")
        self.address = address
        self.connection = cdp.Connection(cdp.browser_url(address), name="browser")
        self.default_user_agent = str(self.browser_command("Browser.getVersion")["userAgent"])
        targets = self.browser_command("Target.getTargets")["targetInfos"]
        pages = [t["targetId"] for t in targets if t.get("type") == "page"]
        self._first_target = pages[0] if pages else None
        # The HTTP cache is set per capture (engines.isolation, through the tab's prepare):
        # kept between anonymous captures, off for private ones and with
        # SCREENSHOT_ISOLATION=strict (then every page load passes the egress proxy, and the V8
        # code cache, which lives in the HTTP cache, is off too).

    def browser_command(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """A browser-wide DevTools command (any thread)."""
        if self.connection is None:
            raise cdp.Closed(f"{method}: the browser is not started")
        return self.connection.send(method, params, timeout)

    def new_tab(self) -> CdpTab:
        """A new tab in a new browser context (same egress proxy, downloads refused)."""
        context: dict[str, Any] = {"disposeOnDetach": False}
        if self.proxy_server is not None:
            context["proxyServer"] = self.proxy_server
            context["proxyBypassList"] = "<-loopback>"
        context_id = str(self.browser_command("Target.createBrowserContext", context)[
            "browserContextId"
        ])
        try:
            self.browser_command(
                "Browser.setDownloadBehavior",
                {"behavior": "deny", "browserContextId": context_id},
            )
            target = self.browser_command(
                "Target.createTarget", {"url": "about:blank", "browserContextId": context_id}
            )
            tab = CdpTab(self, context_id, str(target["targetId"]))
        except BaseException:
            with contextlib.suppress(*TRANSPORT_ERRORS, cdp.CommandTimeout):
                self.browser_command(
                    "Target.disposeBrowserContext", {"browserContextId": context_id}
                )
            raise
        first, self._first_target = self._first_target, None
        if first is not None:  # ChromeDriver's own tab is not used
            with contextlib.suppress(*TRANSPORT_ERRORS, cdp.CommandTimeout):
                self.browser_command("Target.closeTarget", {"targetId": first})
        return tab

    def close_tab(self, tab: CdpTab) -> None:
        """Close a tab and dispose of its context, which closes whatever it still has open."""
        with contextlib.suppress(*TRANSPORT_ERRORS, cdp.CommandTimeout):
            self.browser_command(
                "Target.disposeBrowserContext", {"browserContextId": tab.context_id}
            )

    def _find_browser(self) -> psutil.Process | None:
        assert self.driver_process is not None
        flag = f"--user-data-dir={self.profile}"
        for child in self.driver_process.children(recursive=True):
            try:
                if flag in child.cmdline():
                    return child
            except psutil.Error:
                continue
        return None

    @property
    def pid(self) -> int | None:
        return self.browser_process.pid if self.browser_process else None

    def alive(self) -> bool:
        process = getattr(self.service, "process", None)
        if self.driver is None or process is None or process.poll() is not None:
            return False
        if self.connection is not None and self.connection.closed:
            # Its DevTools websocket closed: the browser is gone, even when its process was
            # not found at start (then only ChromeDriver's process would be looked at).
            return False
        return self.browser_process is None or chromium.process_alive(self.browser_process)

    def kill(self) -> None:
        """Kill ChromeDriver, Chromium and its crash handler. Any thread may call it."""
        with self._lock:
            processes: list[psutil.Process] = []
            process = getattr(self.service, "process", None)
            if process is not None:
                processes += chromium.process_tree(process.pid)
            if self.browser_process is not None and chromium.process_alive(self.browser_process):
                processes += chromium.process_tree(self.browser_process.pid)
            processes += chromium.our_browser_processes(self.profile)
            chromium.kill_processes(processes)
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1)  # reap our child

    def quit(self, polite: bool) -> None:
        """Stop everything and delete the profile; ``polite`` asks ChromeDriver first."""
        driver, self.driver = self.driver, None
        if self.connection is not None:
            self.connection.close()
        if driver is not None:
            if polite and self.alive_process():
                connection(driver).client_config.timeout = QUIT_TIMEOUT
                try:
                    RemoteWebDriver.quit(driver)  # not Chrome.quit: its service.stop() waits
                except Exception:  # it is going away regardless
                    logger.debug("polite quit failed", exc_info=True)
            connection(driver).close()
        self.kill()
        try:
            self.service.stop()  # the process is dead: only closes its pipes
        except Exception:
            logger.debug("service stop failed", exc_info=True)
        chromium.remove_profile_dir(self.profile)

    def alive_process(self) -> bool:
        process = getattr(self.service, "process", None)
        return process is not None and process.poll() is None

    def debugger_address(self) -> str | None:
        """ChromeDriver's ``host:port`` of the browser's DevTools endpoint, if it says."""
        capabilities = self.driver.capabilities if self.driver is not None else {}
        address = capabilities.get("goog:chromeOptions", {}).get("debuggerAddress")
        return str(address) if address else None


def connection(driver: RemoteWebDriver) -> RemoteConnection:
    """The driver's HTTP connection to ChromeDriver (whose timeout bounds every command)."""
    executor = driver.command_executor
    assert isinstance(executor, RemoteConnection)
    return executor
