"""Checks of the capture options whose rules are more than a type and bounds, each turning an
accepted value into its canonical form (sorted, without duplicates, aliases resolved).

They run inside the pydantic declaration (:mod:`screenshots.core.options.model`) as
validators, so they raise :class:`BadValue`, a :class:`ValueError` pydantic collects; the model
turns the first one into :class:`~screenshots.core.errors.InvalidOption` with the message
written here, which names the option.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from screenshots.core.options.limits import (
    BLOCK_ADS,
    MAX_CLIP,
    MAX_DIMENSION,
    MAX_ENTRIES,
    MAX_FULL_PAGE_HEIGHT,
    MAX_TEXT,
    RESOURCE_TYPES,
    TYPE_ALIASES,
)

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z0-9-]{1,63}$")
_RANGE = re.compile(r"^(\d{3})(?:\s*-\s*(\d{3}))?$|^([1-5])xx$", re.IGNORECASE)

Pairs = tuple[tuple[str, str], ...]


class BadValue(ValueError):
    """A bad option value; the message names the option and is shown to the user as it is."""


def check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadValue(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise BadValue(f"{name} must be between {low} and {high}, not {value}")
    return value


def check_text(name: str, value: object, *, line: bool = False) -> str:
    """Text that is not blank and not longer than :data:`MAX_TEXT`; one line if ``line``."""
    if not isinstance(value, str):
        raise BadValue(f"{name} must be text, not {value!r}")
    if not value.strip():
        raise BadValue(f"{name} must not be empty")
    if len(value) > MAX_TEXT:
        raise BadValue(f"{name} is longer than {MAX_TEXT} characters")
    if line and ("\n" in value or "\r" in value):
        raise BadValue(f"{name} must be one line")
    return value


def clip(value: object) -> tuple[int, int, int, int]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise BadValue(f"clip must be x,y,width,height, not {value!r}")
    items = list(value)
    if len(items) != 4:
        raise BadValue(f"clip must be 4 numbers x,y,width,height, not {len(items)}")
    numbers = []
    for item, what in zip(items, ("x", "y", "width", "height"), strict=True):
        if isinstance(item, str):
            try:
                item = int(item)
            except ValueError:
                raise BadValue(f"clip {what} must be a whole number, not {item!r}") from None
        numbers.append(check_int(f"clip {what}", item, 0 if what in "xy" else 1, MAX_CLIP))
    if numbers[2] > MAX_DIMENSION or numbers[3] > MAX_FULL_PAGE_HEIGHT:
        raise BadValue(
            f"clip must be at most {MAX_DIMENSION} wide and {MAX_FULL_PAGE_HEIGHT} high"
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


def strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise BadValue(f"{name} must be a list of text, not {value!r}")
    items = list(value)
    if len(items) > MAX_ENTRIES:
        raise BadValue(f"{name} has more than {MAX_ENTRIES} entries")
    for item in items:
        check_text(name, item, line=True)
    return tuple(items)


def check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise BadValue(f"headers: {name!r} is not a valid header name")
    if name.lower() in ("host", "content-length", "cookie"):
        raise BadValue(f"headers: {name} cannot be set (use cookies for cookies)")
    if "\n" in value or "\r" in value:
        raise BadValue(f"headers: the value of {name} must be one line")


def check_cookie(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise BadValue(f"cookies: {name!r} is not a valid cookie name")
    if any(c in value for c in ';\r\n'):
        raise BadValue(f"cookies: the value of {name} must not contain ';' or line breaks")


def pairs(name: str, value: object, check: Callable[[str, str], None]) -> Pairs:
    """Sorted ``(name, value)`` pairs from a mapping, pairs, or ``{"name", "value"}`` objects."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str) or not isinstance(value, Iterable):
        raise BadValue(f"{name} must be an object of names and values, not {value!r}")
    else:
        items = []
        for item in value:
            if isinstance(item, Mapping) and "name" in item and "value" in item:
                item = (item["name"], item["value"])
            if isinstance(item, str) or not isinstance(item, Iterable) or len(list(item)) != 2:
                raise BadValue(f"{name} must be an object of names and values")
            item_name, item_value = list(item)
            items.append((item_name, item_value))
    if len(items) > MAX_ENTRIES:
        raise BadValue(f"{name} has more than {MAX_ENTRIES} entries")
    result = []
    for key, val in items:
        if not isinstance(key, str) or not isinstance(val, str | int | float) or isinstance(
            val, bool
        ):
            raise BadValue(f"{name}: {key!r} must have a text value, not {val!r}")
        text = str(val)
        check(key, text)
        result.append((key, text))
    return tuple(sorted(result))


def timezone(value: object) -> str:
    if not isinstance(value, str) or not value or ".." in value or value.startswith("/"):
        raise BadValue(f"timezone must be an IANA name such as Europe/Paris, not {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadValue(f"timezone {value!r} is not a known IANA time zone") from None
    return value


def locale(value: object) -> str:
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise BadValue(f"locale must be a language tag such as fr-FR, not {value!r}")
    return value


def block(value: object) -> tuple[str, ...]:
    """Canonical ``block`` entries: sorted, without duplicates, aliases resolved."""
    items = strings("block", value)
    result = set()
    for item in items:
        entry = item.strip()
        lowered = entry.lower()
        if lowered in RESOURCE_TYPES or lowered == BLOCK_ADS:
            result.add(lowered)
        elif lowered in TYPE_ALIASES:
            result.add(TYPE_ALIASES[lowered])
        elif "*" in entry or "/" in entry:
            result.add(entry)
        elif _HOST.match(entry):
            result.add(lowered)
        else:
            types = ", ".join(RESOURCE_TYPES)
            raise BadValue(
                f"block: {entry!r} is not a resource type ({types}), 'ads', a host name or a "
                "URL pattern with *"
            )
    return tuple(sorted(result))


def ranges(value: object) -> tuple[tuple[int, int], ...]:
    """Sorted, distinct ``(low, high)`` status ranges from statuses, pairs or ``"400-599"``."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise BadValue(f"fail_on_status must be a list of status ranges, not {value!r}")
    found = set()
    for item in value:
        low: Any
        high: Any
        if isinstance(item, bool):
            raise BadValue(f"fail_on_status: {item!r} is not a status or a range")
        if isinstance(item, int):
            low = high = item
        elif isinstance(item, list | tuple) and len(item) == 2:
            low, high = item
        elif isinstance(item, str) and (match := _RANGE.match(item.strip())):
            if match.group(3):
                low, high = int(match.group(3)) * 100, int(match.group(3)) * 100 + 99
            else:
                low = int(match.group(1))
                high = int(match.group(2) or match.group(1))
        else:
            raise BadValue(f"fail_on_status: {item!r} is not a status or a range such as 400-599")
        if not (isinstance(low, int) and isinstance(high, int)) or not (
            100 <= low <= high <= 599
        ):
            raise BadValue(f"fail_on_status: {item!r} must be within 100-599, low first")
        found.add((low, high))
    return tuple(sorted(found))


def range_text(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"
