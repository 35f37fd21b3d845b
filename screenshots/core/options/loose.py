"""The loose forms users write options in, turned into the values the model checks.

Files and flags hold text: ``"true"``, ``"12"``, ``"0,0,300,200"``, ``"400-599"``,
``"a=1; b=2"``, JSON lists and objects in CSV cells. Each option's declaration
(:mod:`screenshots.core.options.model`) names its reader here, or gets one from its type
(whole number, number, true/false). Values already of the right type pass through; range
checks are left to the model. Every reader takes the option's name, for the message of the
:class:`~screenshots.core.errors.InvalidOption` it raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from screenshots.core.errors import InvalidOption

#: A loose-value reader: ``(option name, value) -> value of the field's type``.
Reader = Callable[[str, Any], Any]

_BOOLS = {"true": True, "yes": True, "1": True, "on": True,
          "false": False, "no": False, "0": False, "off": False}


def as_bool(name: str, value: Any) -> Any:
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in _BOOLS:
            raise InvalidOption(f"{name} must be true or false, not {value!r}")
        return _BOOLS[key]
    return value


def as_int(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidOption(f"{name} must be a whole number, not {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def as_float(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise InvalidOption(f"{name} must be a number, not {value!r}") from None
    return value


def as_is(name: str, value: Any) -> Any:
    return value


def comma_list(name: str, value: Any) -> Any:
    """``"0,0,300,200"`` → ``["0", "0", "300", "200"]`` (``clip``)."""
    return split(value, ",") if isinstance(value, str) else value


def list_reader(separators: str) -> Reader:
    """A JSON list, or text cut at any of ``separators`` (empty parts dropped)."""

    def read(name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return parse_json(name, text)
        return [part for part in split(text, separators) if part]

    return read


def status_ranges(name: str, value: Any) -> Any:
    """``"400-599,5xx"``, a JSON list, or one status as a number (``fail_on_status``)."""
    if isinstance(value, str):
        text = value.strip()
        return parse_json(name, text) if text.startswith("[") else split(text, ",")
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return value


def pairs_reader(separator: str) -> Reader:
    """A JSON object (or list of pairs), or ``"a=1; b=2"`` / ``"X-A: 1; X-B: 2"`` text."""

    def read(name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{") or text.startswith("["):
            return parse_json(name, text)
        return name_values(name, text, separator)

    return read


def split(text: str, separators: str) -> list[str]:
    parts = [text]
    for separator in separators:
        parts = [piece for part in parts for piece in part.split(separator)]
    return [part.strip() for part in parts]


def parse_json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidOption(f"{name} is not valid JSON: {text[:80]!r}") from None


def name_values(name: str, text: str, separator: str) -> dict[str, str]:
    """``"a=1; b=2"`` (cookies) or ``"X-A: 1; X-B: 2"`` (headers) as a dict."""
    result = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, found, value = part.partition(separator)
        if not found:
            raise InvalidOption(f"{name} entry {part.strip()!r} has no {separator!r}")
        result[key.strip()] = value.strip()
    return result


def name_value(name: str, item: str, separator: str) -> tuple[str, str]:
    """One ``NAME: VALUE`` (or ``NAME=VALUE``) item, as a repeated flag gives it."""
    key, found, value = item.partition(separator)
    if not found:
        raise InvalidOption(f"{name}: {item!r} has no {separator!r}")
    return key.strip(), value.strip()
