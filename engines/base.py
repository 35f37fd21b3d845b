"""The engine interface: capture one URL with options, return the image and what we learned.

An engine owns a browser (or nothing, for the stub). It is created once per worker process
or embedded slot and reused for many captures. Several captures may be in flight on one
engine (issue #15): an engine whose :attr:`Engine.concurrent` is above 1 accepts that many
:meth:`Engine.capture` calls from different threads at the same time (the Selenium engine:
``SCREENSHOT_TABS``, one tab each; more callers wait for a free tab); one at 1 (the default)
must not be shared between threads. Implementations live beside this module and are picked by
name in :mod:`engines` (``create_engine("selenium")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from screenshots.core.options import PIPELINE_OPTIONS, CaptureOptions


@dataclass(frozen=True)
class Capture:
    """What an engine returns for one URL."""

    #: The encoded image, in ``options.format``.
    image: bytes
    #: Size of the image in pixels.
    width: int
    height: int
    #: HTTP status of the main document, when the engine can know it.
    http_status: int | None = None
    #: The URL the page ended on after redirects, when the engine can know it.
    final_url: str | None = None
    #: The document's title, when the engine can know it.
    title: str | None = None
    #: The main document's Content-Type, when the engine can know it.
    content_type: str | None = None
    #: Requests not made because they were blocked (``block`` option, egress policy).
    blocked_requests: int = 0
    # -- page metadata (None: the engine cannot know) --------------------------------------
    #: Requests the page made, main document included.
    requests: int | None = None
    #: Requests that got no answer or an HTTP status >= 400 (blocked ones excluded).
    failed_requests: int | None = None
    #: ``console.error`` calls and uncaught exceptions in the page.
    console_errors: int | None = None
    #: The first few of those messages.
    console_messages: tuple[str, ...] = ()
    #: Milliseconds navigating (until the ``wait_until`` event), waiting after it, and taking
    #: the image.
    navigation_ms: int | None = None
    wait_ms: int | None = None
    capture_ms: int | None = None
    #: The ``ignore`` option's selectors as measured in the page: ``"x,y,w,h"`` rectangles in
    #: CSS pixels of the image (:func:`engines.tab.ignored_regions`).
    ignored_regions: tuple[str, ...] = ()


class Engine:
    """Base class of every engine. Subclasses implement :meth:`capture` and :meth:`close`.

    ``capture`` raises the errors of :mod:`screenshots.core.errors`: a
    :class:`~screenshots.core.errors.NavigationError` when the
    page cannot be loaded (it must never return a picture of the browser's own error page),
    a :class:`~screenshots.core.errors.CaptureTimeout` past ``options.timeout``, a
    :class:`~screenshots.core.errors.BrowserCrashed` when the browser died (the engine restarts it
    on the next
    call), an :class:`~screenshots.core.errors.EngineUnavailable` when it cannot start at all.
    """

    #: The name the registry knows this engine by.
    name: str = "base"
    #: The capture options this engine honours (names of
    # :class:`~screenshots.core.options.CaptureOptions`
    #: fields). A shot that sets any other option to something other than its default gets
    #: the error row "option X is not supported by engine Y" from the pipeline, never a
    #: silently different image. ``timeout`` and ``fail_on_status`` are applied by the
    #: pipeline and always supported.
    supports: frozenset[str] = frozenset()
    #: How many :meth:`capture` calls may run at once, from as many threads; 1: the engine
    #: is not thread-safe.
    concurrent: int = 1

    def unsupported(self, options: CaptureOptions) -> list[str]:
        """The options ``options`` asks for that this engine cannot honour."""
        return [
            name
            for name in options.requested()
            if name not in self.supports and name not in PIPELINE_OPTIONS
        ]

    def capture(self, url: str, options: CaptureOptions) -> Capture:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        """Release the browser and every process it started. Safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
