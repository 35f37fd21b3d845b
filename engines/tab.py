"""One capture's steps inside the page, shared by the Chromium engines: waits, selectors, image.

Between load and image, every Chromium engine does the same (the scripts of
:mod:`engines.page`, in the same order, with the same error texts): add the style sheet, run
``js``, wait for ``wait_for`` and ``wait_for_js``, scroll, sleep ``delay_ms``
(:func:`wait_in_page`); then measure the ``selector``'s element or the full page and take the
image through DevTools ``Page.captureScreenshot`` (:func:`screenshot`), so both engines give
the same image. Each engine says how it talks to its page by implementing :class:`Tab`; a
:class:`Tab` is one capture's page, so several could be in flight on one browser.
"""

from __future__ import annotations

import base64
import math
import time
from abc import ABC, abstractmethod
from typing import Any

from engines import page
from engines.chromium_engine import NoTimeLeft, left_ms
from screenshots.core.errors import PermanentError
from screenshots.core.options import CaptureOptions
from screenshots.visual import regions

#: Seconds between two looks at a ``wait_for`` or ``wait_for_js`` condition (when polled).
POLL_INTERVAL = 0.1


class Tab(ABC):
    """The page of one capture, as the shared steps talk to it."""

    @abstractmethod
    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of ``expression`` in the page (awaited if it is a promise and asked)."""

    @abstractmethod
    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a DevTools command for the page; its result."""

    def run_js(self, expression: str) -> None:
        """Run ``expression`` (a promise, awaited); a script error raises
        :class:`~screenshots.core.errors.PermanentError` with its message."""
        self.evaluate(expression, True)

    def wait_true(self, expression: str, deadline: float) -> bool:
        """Whether ``expression`` became truthy before ``deadline`` (polled by default)."""
        while not self.evaluate(expression):
            if time.monotonic() + POLL_INTERVAL >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def wait_visible(self, selector: str, deadline: float) -> bool:
        """Whether an element matching ``selector`` became visible before ``deadline``."""
        return self.wait_true(page.visible_script(selector), deadline)

    def wait_truthy(self, expression: str, deadline: float) -> bool:
        """Whether the page's JavaScript ``expression`` became truthy before ``deadline``."""
        return self.wait_true(page.truthy_script(expression), deadline)

    def pause(self, seconds: float) -> None:
        """Let the page run for ``seconds``."""
        time.sleep(seconds)

    def capture_screenshot(self, params: dict[str, Any]) -> dict[str, Any]:
        """DevTools ``Page.captureScreenshot`` with these parameters."""
        return self.cdp("Page.captureScreenshot", params)


def wait_in_page(tab: Tab, options: CaptureOptions, deadline: float) -> bool:
    """Everything between load and capture: styles, script, waits, scrolling, delay.

    Whether there was anything to do (if not, the page was not given time to change).
    """
    if not page.acts_in_page(options):
        return False
    sheet = page.style_sheet(options)
    if sheet is not None:
        tab.evaluate(page.add_style_script(sheet))
    if options.js is not None:
        try:
            tab.run_js(page.run_script(options.js, left_ms(deadline)))
        except PermanentError as exc:
            raise PermanentError(f"js failed: {exc.message}") from None
    if options.wait_for is not None and not tab.wait_visible(options.wait_for, deadline):
        raise _no_time(f"wait_for: no visible {options.wait_for!r}", options)
    if options.wait_for_js is not None and not tab.wait_truthy(options.wait_for_js, deadline):
        raise _no_time(f"wait_for_js: {options.wait_for_js!r} stayed false", options)
    if options.scroll:
        tab.evaluate(page.scroll_script(left_ms(deadline) - 500), True)
    if options.delay_ms:
        delay = options.delay_ms / 1000
        if time.monotonic() + delay >= deadline:
            raise NoTimeLeft(
                f"delay_ms={options.delay_ms} leaves no time to capture within "
                f"the {options.timeout:g} s timeout"
            )
        tab.pause(delay)
    return True


def _no_time(what: str, options: CaptureOptions) -> NoTimeLeft:
    return NoTimeLeft(f"{what} within the {options.timeout:g} s timeout")


def element_rect(tab: Tab, selector: str) -> tuple[float, float, float, float]:
    """The ``selector``'s element in page CSS pixels: x, y, width, height.

    No element, or one with no size, is a :class:`~screenshots.core.errors.PermanentError`.
    """
    rect = tab.evaluate(page.element_rect_script(selector))
    if rect is None:
        raise PermanentError(f"selector {selector!r} matched no element")
    x, y, width, height = (float(v) for v in rect)
    if width < 1 or height < 1:
        raise PermanentError(f"selector {selector!r} matched an element with no size")
    return x, y, width, height


def screenshot(tab: Tab, options: CaptureOptions) -> bytes:
    """The image (encoded as ``options.format``) of the viewport, the element or the page."""
    element = None
    content_height = None
    if options.selector is not None:
        element = element_rect(tab, options.selector)
    elif options.full_page:
        metrics = tab.cdp("Page.getLayoutMetrics")
        content_height = metrics["cssContentSize"]["height"]
    params = page.screenshot_params(options, content_height, element)
    result = tab.capture_screenshot(params)
    return base64.b64decode(result["data"])


def ignored_regions(tab: Tab, options: CaptureOptions) -> tuple[str, ...]:
    """The ``ignore`` option's selectors measured in the page as it is about to be captured:
    ``"x,y,w,h"`` rectangles in CSS pixels of the image (its top left is 0,0), rounded outwards
    and cut to what lies right of and below the image's origin. Call it just before
    :func:`screenshot`. A selector the browser cannot parse is a
    :class:`~screenshots.core.errors.PermanentError`.
    """
    wanted = regions.selectors(options.ignore)
    if not wanted:
        return ()
    found = tab.evaluate(page.regions_script(wanted, regions.MAX_MATCHES))
    origin_x, origin_y = _image_origin(tab, options)
    rects: list[str] = []
    for selector, matches in zip(wanted, found or [], strict=False):
        if isinstance(matches, dict):
            raise PermanentError(f"ignore: {selector!r} is not a valid CSS selector")
        for x, y, width, height in matches:
            left = max(0, math.floor(float(x) - origin_x))
            top = max(0, math.floor(float(y) - origin_y))
            right = math.ceil(float(x) + float(width) - origin_x)
            bottom = math.ceil(float(y) + float(height) - origin_y)
            if right > left and bottom > top:
                rects.append(f"{left},{top},{right - left},{bottom - top}")
    return tuple(rects)


def _image_origin(tab: Tab, options: CaptureOptions) -> tuple[float, float]:
    """Where the image's top left corner is, in page CSS pixels (see :func:`screenshot`)."""
    if options.clip is not None:
        return float(options.clip[0]), float(options.clip[1])
    if options.selector is not None:
        x, y, _, _ = element_rect(tab, options.selector)
        return x, y
    if options.full_page:
        return 0.0, 0.0
    scroll = tab.evaluate("[scrollX, scrollY]")
    return float(scroll[0]), float(scroll[1])
