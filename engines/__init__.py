"""Capture engines, picked by name: ``create_engine("selenium")``.

The layout follows dramatiq's brokers: the interface lives in :mod:`engines.base` beside the
implementations, shared bases sit beside it, each implementation has its own module or
package, and a stub implementation ships with them so everything above the browser can be
tested without one.

- :mod:`engines.base`: the interface, :class:`~engines.base.Engine` and
  :class:`~engines.base.Capture`;
- :mod:`engines.chromium_engine`: the base of every engine driving Chromium (the browser's
  life, binary checks, orphan reaping, watchdog, main-document errors, the user-facing texts);
- :mod:`engines.tab`: one capture's steps inside the page, shared by the Chromium engines
  (in-page waits, selector checks, the image);
- :mod:`engines.chromium`: the Chromium process (flags, profiles, killing, orphans);
- :mod:`engines.page`: the scripts and blocking rules both Chromium engines run in the page;
- :mod:`engines.isolation`: which captures share the HTTP cache (issue #15);
- :mod:`engines.selenium`: Chromium through ChromeDriver (the default), split by job;
- :mod:`engines.playwright`: the same Chromium through Playwright, a context reused and wiped;
- :mod:`engines.stub`: no browser at all, a plain image of the asked size.

To add an engine: write ``engines/<name>.py`` (or a package) with a subclass of
:class:`~engines.base.Engine` (set its ``name`` and ``supports``, implement ``capture`` and
``close``, raise the errors of :mod:`screenshots.core.errors`; one driving Chromium subclasses
:class:`~engines.chromium_engine.ChromiumEngine` and implements :class:`~engines.tab.Tab`),
add ``"<name>": "engines.<name>:<Class>"`` to :data:`ENGINES`, and add it to
``tests/test_engine_conformance.py`` (its ``ENGINES`` and capability table). Modules are
imported only when their engine is created, so an engine's dependencies are needed only by
those who use it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from engines.base import Capture, Engine
from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import Settings, load_settings

__all__ = ["ENGINES", "Capture", "Engine", "create_engine", "engine_names"]

#: Engine name -> ``"module:Class"``, imported lazily by :func:`create_engine`.
ENGINES: dict[str, str] = {
    "selenium": "engines.selenium:SeleniumEngine",
    "playwright": "engines.playwright:PlaywrightEngine",
    "stub": "engines.stub:StubEngine",
}


def registry(settings: Settings | None = None) -> dict[str, str]:
    """:data:`ENGINES` plus the plug-ins named in ``SCREENSHOT_ENGINES``."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigurationError:
            return dict(ENGINES)
    return {**ENGINES, **settings.engine_plugins}


def engine_names(settings: Settings | None = None) -> list[str]:
    """The names :func:`create_engine` accepts, sorted."""
    return sorted(registry(settings))


def create_engine(name: str, settings: Settings | None = None, **kwargs: Any) -> Engine:
    """Create the engine called ``name``.

    ``settings`` is passed to engines that take it (those driving a browser); ``kwargs`` go to
    the engine's constructor as they are (``recycle_after=``, ``latency=``...).
    """
    try:
        target = registry(settings)[name]
    except KeyError:
        choices = ", ".join(engine_names(settings))
        raise ConfigurationError(f"unknown engine {name!r}: choose one of {choices}") from None
    module_name, class_name = target.split(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    if settings is not None and _takes_settings(engine_class):
        kwargs["settings"] = settings
    engine = engine_class(**kwargs)
    if not isinstance(engine, Engine):  # pragma: no cover - a registry mistake
        raise ConfigurationError(f"{target} is not an Engine")
    return engine


def _takes_settings(engine_class: type) -> bool:
    return "settings" in inspect.signature(engine_class).parameters
