"""Capture options: what a screenshot looks like, validated once, hashed into its storage key.

Options come from three places, in increasing precedence: the defaults, the command line, and
a row of the URL file (JSON Lines or CSV, see :mod:`screenshots.batch.inputs`) or of an API
request. Values from files and flags are *loose* (``"true"``, ``"400-599"``, ``"0,0,300,200"``,
a JSON list or object); :meth:`CaptureOptions.from_dict` turns them into the canonical,
hashable form the model holds, and every bad value raises
:class:`~screenshots.core.errors.InvalidOption` naming the option.

The options are declared once, in :mod:`screenshots.core.options.model` (a pydantic model:
type, default, bounds, help, key rule, text form and flag of each); README.md's options table
is generated from it (``python -m screenshots.dev.docs``). The package:

- :mod:`~screenshots.core.options.limits`: bounds and vocabularies;
- :mod:`~screenshots.core.options.loose`: the loose text forms;
- :mod:`~screenshots.core.options.checks`: checks beyond a type and bounds, canonical forms;
- :mod:`~screenshots.core.options.spec`: the declaration read back, and the error messages;
- :mod:`~screenshots.core.options.model`: :class:`CaptureOptions`, the declaration.

Every option but ``timeout`` and ``fail_on_status`` can change the image, so every other
option is in the storage key (:meth:`CaptureOptions.image_fields`).
"""

from __future__ import annotations

from typing import Any

from screenshots.core.errors import InvalidOption
from screenshots.core.options.checks import range_text
from screenshots.core.options.limits import (
    BLOCK_ADS,
    CONTENT_TYPES,
    DEFAULT_HEIGHT,
    DEFAULT_TIMEOUT,
    DEFAULT_WIDTH,
    EXTENSIONS,
    MAX_DELAY_MS,
    MAX_DIMENSION,
    MAX_ENTRIES,
    MAX_FULL_PAGE_HEIGHT,
    MAX_SCALE,
    MAX_TEXT,
    MAX_TIMEOUT,
    MIN_SCALE,
    RESOURCE_TYPES,
    WAIT_UNTIL,
)
from screenshots.core.options.model import NOT_IN_KEY, PIPELINE_OPTIONS, SPECS, CaptureOptions
from screenshots.core.options.spec import Option, OptionSpec

__all__ = [
    "BLOCK_ADS", "CONTENT_TYPES", "DEFAULT_HEIGHT", "DEFAULT_TIMEOUT", "DEFAULT_WIDTH",
    "EXTENSIONS", "MAX_DELAY_MS", "MAX_DIMENSION", "MAX_ENTRIES", "MAX_FULL_PAGE_HEIGHT",
    "MAX_SCALE", "MAX_TEXT", "MAX_TIMEOUT", "MIN_SCALE", "NOT_IN_KEY", "PIPELINE_OPTIONS",
    "RESOURCE_TYPES", "SPECS", "WAIT_UNTIL", "CaptureOptions", "Option", "OptionSpec",
    "coerce", "option_names", "option_specs", "status_fails",
]


def option_names() -> tuple[str, ...]:
    """Every option name, in the order of :class:`CaptureOptions`."""
    return tuple(SPECS)


def option_specs() -> tuple[OptionSpec, ...]:
    """Every option's declaration, in the order of :class:`CaptureOptions`."""
    return tuple(SPECS.values())


def coerce(name: str, value: Any) -> Any:
    """``value`` for option ``name`` from a file or a flag, in the type the field holds.

    Text is parsed (``"true"``, ``"12"``, ``"0,0,10,10"``, ``"400-599"``, JSON lists and
    objects); values already of the right type pass through. Range checks are left to
    :class:`CaptureOptions`.
    """
    spec = SPECS.get(name)
    if spec is None:
        raise InvalidOption(f"unknown option {name!r}")
    return spec.read(name, value)


def status_fails(options: CaptureOptions, status: int | None) -> str | None:
    """The ``fail_on_status`` range that ``status`` falls in, as text, or ``None``."""
    if status is None:
        return None
    for low, high in options.fail_on_status:
        if low <= status <= high:
            return range_text(low, high)
    return None
