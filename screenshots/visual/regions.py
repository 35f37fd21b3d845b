"""Regions a comparison ignores (the ``ignore`` option): ``x,y,w,h`` rectangles in CSS pixels of
the image, or CSS selectors (a clock, an ad slot, a carousel).

A rectangle is compared as given. A selector is measured in the page at capture time, just
before the image is taken (:func:`engines.tab.ignored_regions`): every element it matches
becomes a rectangle of the row's ``ignored_regions`` column, in CSS pixels of the image. A
comparison leaves out the union of both runs' measured rectangles, so an element that moved
between the runs is left out where it was and where it is. A selector that matches nothing
leaves nothing out (the ad was not served this time); one the browser cannot parse makes the
capture an error row that says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from screenshots.core.options.checks import BadValue

#: One rectangle: left, top, width, height.
Rect = tuple[int, int, int, int]

_RECT = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
#: Entries (rectangles and selectors) per shot, at most.
MAX_REGIONS = 50
#: Characters of one selector, at most.
MAX_SELECTOR = 300
#: Rectangles measured for one selector, at most (a ``*`` must not make a huge row).
MAX_MATCHES = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadRegion(BadValue):
    """An ``ignore`` entry that is neither a rectangle nor a possible selector."""


def is_rect(text: str) -> bool:
    """Whether ``text`` has the form of an ``x,y,w,h`` rectangle (else it is a selector)."""
    return _RECT.match(text) is not None


def parse_rect(text: str) -> Rect:
    """``"x,y,w,h"`` as a rectangle; :class:`BadRegion` otherwise."""
    match = _RECT.match(text)
    if match is None:
        raise BadRegion(f"{text[:60]!r} is not an x,y,w,h rectangle")
    x, y, w, h = (int(part) for part in match.groups())
    if w <= 0 or h <= 0:
        raise BadRegion(f"{text!r}: width and height must be positive")
    return (x, y, w, h)


def _entry(item: object) -> str:
    """One ``ignore`` entry, normalised: ``"x,y,w,h"`` or the selector's text."""
    text = str(item).strip()
    if not text:
        raise BadRegion("an empty entry is neither a rectangle nor a selector")
    if is_rect(text):
        return ",".join(str(n) for n in parse_rect(text))
    if any(ch.isdigit() for ch in text) and set(text) <= set("0123456789, \t-."):
        # "10,10,5" or "1,2,-3,4": meant as a rectangle, not a selector.
        raise BadRegion(f"{text[:60]!r} is not an x,y,w,h rectangle of non-negative integers")
    if len(text) > MAX_SELECTOR:
        raise BadRegion(f"a selector longer than {MAX_SELECTOR} characters")
    if _CONTROL.search(text):
        raise BadRegion(f"{text[:60]!r}: control characters in a selector")
    return text


def check_regions(value: object) -> tuple[str, ...]:
    """The ``ignore`` option's validator: text (entries separated by ``;``) or a list of
    ``x,y,w,h`` rectangles and CSS selectors; returned normalised."""
    if value is None:
        return ()
    items: Iterable[object]
    if isinstance(value, str):
        items = [part for part in value.split(";") if part.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise BadRegion("ignore must be a list of x,y,w,h rectangles or CSS selectors")
    try:
        entries = tuple(_entry(item) for item in items)
    except BadRegion as exc:
        raise BadRegion(f"ignore: {exc}") from None
    if len(entries) > MAX_REGIONS:
        raise BadRegion(f"ignore: at most {MAX_REGIONS} entries")
    return entries


def selectors(regions: Iterable[str]) -> tuple[str, ...]:
    """The CSS selectors among ``regions`` (the entries measured in the page)."""
    return tuple(text for text in regions if not is_rect(text))


def scaled(regions: Iterable[str], scale: float) -> list[Rect]:
    """The rectangles of ``regions`` in image pixels (CSS pixels × ``scale``); selectors,
    measured at capture time, come in as rectangles through the rows, not here."""
    rects = []
    for text in regions:
        if not is_rect(text):
            continue
        x, y, w, h = parse_rect(text)
        rects.append((round(x * scale), round(y * scale), round(w * scale), round(h * scale)))
    return rects
