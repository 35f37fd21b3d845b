"""The bare-browser reference: Playwright, one Chromium, N tabs in parallel, nothing else.

Same pages, same static server, same image (PNG, 1280x800 viewport, after the load event) as
the pipeline, with no queue, no storage and no per-URL bookkeeping: the rate the machine can
reach with Chromium alone. Chromium is Debian's, the same binary as the workers' (by default
its headless shell, which is also what Playwright launches for headless Chromium when it uses
its own builds); Playwright's own browser builds are never downloaded.

The browser stays up between measured runs (so runs can be interleaved with the pipeline's):
Playwright's asyncio objects live in an event loop on a thread of their own, and
:meth:`Reference.shoot` submits work to it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from screenshots.core.settings import DEFAULT_CHROMIUM
from screenshots.dev.bench.corpus import BenchError
from screenshots.dev.bench.machine import CpuWindow
from screenshots.dev.bench.pipeline import warn_if_busy
from screenshots.dev.bench.stats import RunStats, from_window

T = TypeVar("T")

#: Flags of the reference browser (``--no-sandbox`` added as root, where Chromium needs it).
FLAGS = [
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
#: Prefix of the reference browser's profile directory (with this process's pid): how its
#: processes are recognised if they outlive the run.
PROFILE_PREFIX = f"bench-playwright-{os.getpid()}-"
#: Seconds one page may take.
PAGE_TIMEOUT = 30.0


def reference_flags() -> list[str]:
    return (["--no-sandbox"] if os.geteuid() == 0 else []) + FLAGS


async def _shoot_all(
    pages: Sequence[Any], urls: Sequence[str]
) -> tuple[int, int, int, list[str]]:
    """Shoot ``urls`` with the open ``pages`` (tabs) in parallel; pages stay open."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    shots = errors = size = 0
    samples: list[str] = []

    async def tab(page: Any) -> None:
        nonlocal shots, errors, size
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT * 1000)
                image = await page.screenshot(type="png", timeout=PAGE_TIMEOUT * 1000)
            except Exception as exc:  # noqa: BLE001 - count and go on
                errors += 1
                if len(samples) < 5:
                    samples.append(f"{url}: {str(exc).splitlines()[0]}")
                continue
            shots += 1
            size += len(image)

    await asyncio.gather(*(tab(page) for page in pages))
    return shots, errors, size, samples


class Reference:
    """One Playwright Chromium with ``tabs`` open tabs, up between :meth:`shoot` calls.

    ``http_cache=False`` turns Chromium's HTTP cache off in every tab (CDP
    ``Network.setCacheDisabled``, before the warm-up), as the pipeline's browsers have it: each
    page then fetches its scripts, style sheets and images again, as every capture of the
    pipeline does. The default keeps the cache warm across pages (the reference as defined).
    """

    def __init__(
        self,
        tabs: int = 3,
        width: int = 1280,
        height: int = 800,
        http_cache: bool = True,
        chromium: str = DEFAULT_CHROMIUM,
    ) -> None:
        self.tabs, self.width, self.height = tabs, width, height
        self.http_cache = http_cache
        self.chromium = chromium
        self.label = f"playwright, 1 Chromium, {tabs} tabs"
        self.settings: dict[str, object] = {"engine": "playwright", "tabs": tabs}
        self.settings["chromium"] = chromium  # results name the browser measured
        if chromium != DEFAULT_CHROMIUM:  # the default's label as before
            self.label += f", {os.path.basename(chromium)}"
        if not http_cache:  # the default's label and settings as before: older results match
            self.label += ", HTTP cache off"
            self.settings["http_cache"] = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._context: Any = None
        self._pages: list[Any] = []
        #: The tabs' CDP sessions (``http_cache=False``), kept for as long as the tabs.
        self._cdp: list[Any] = []
        self._profile = ""

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 600.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise BenchError(
                f"the Playwright reference did not answer within {timeout:.0f} s"
            ) from None

    def start(self, warmup: Sequence[str] = ()) -> Reference:
        """Start Chromium, open the tabs and shoot ``warmup`` (not measured)."""
        self._call(self._start(), timeout=120)
        if warmup:
            self._call(_shoot_all(self._pages, warmup))
        return self

    async def _start(self) -> None:
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            raise BenchError("playwright is not installed: run make install") from None
        if not os.access(self.chromium, os.X_OK):
            raise BenchError(f"{self.chromium} not found: install Debian's chromium (make install)")
        self._profile = tempfile.mkdtemp(prefix=PROFILE_PREFIX)
        self._playwright = await async_playwright().start()
        try:
            self._context = await self._playwright.chromium.launch_persistent_context(
                self._profile,
                executable_path=self.chromium,
                args=reference_flags(),
                headless=True,
                viewport={"width": self.width, "height": self.height},
            )
        except Exception as exc:  # noqa: BLE001 - one line
            raise BenchError(
                f"Playwright could not start {self.chromium}: {str(exc).splitlines()[0]}"
            ) from None
        # The tabs stay open across runs: closing one ends its renderer, whose CPU would then
        # escape the per-process breakdown.
        pages = list(self._context.pages[:1])
        while len(pages) < self.tabs:
            pages.append(await self._context.new_page())
        for page in pages:
            await page.set_viewport_size({"width": self.width, "height": self.height})
            if not self.http_cache:
                session = await self._context.new_cdp_session(page)
                await session.send("Network.enable")
                await session.send("Network.setCacheDisabled", {"cacheDisabled": True})
                self._cdp.append(session)
        self._pages = pages

    def shoot(self, urls: Sequence[str]) -> RunStats:
        """One measured run over ``urls`` with all tabs in parallel."""
        pre_load = warn_if_busy("the reference run")
        with CpuWindow() as window:
            shots, errors, size, samples = self._call(_shoot_all(self._pages, urls))
        return from_window(
            self.label,
            window,
            urls=len(urls),
            ok=shots,
            errors=errors,
            bytes_mean=size / shots if shots else None,
            error_samples=samples,
            settings=self.settings,
            pre_load=pre_load,
        )

    def stop(self) -> None:
        async def close() -> None:
            try:
                if self._context is not None:
                    await self._context.close()
            finally:
                if self._playwright is not None:
                    await self._playwright.stop()

        try:
            if self._playwright is not None:
                self._call(close(), timeout=30)
        finally:
            self._context = self._playwright = None
            self._cdp = []
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if self._profile:
                shutil.rmtree(self._profile, ignore_errors=True)
