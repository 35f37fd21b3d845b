"""Regions a comparison ignores (the ``ignore`` option): ``x,y,w,h`` rectangles in CSS pixels of
the page (a clock, an ad slot, a carousel).

The option also names the form of CSS selectors, whose rectangles must be measured in the page
at capture time; the engines do not measure them yet, so a selector is refused with a clear
message rather than silently compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from screenshots.core.options.checks import BadValue

#: One rectangle: left, top, width, height.
Rect = tuple[int, int, int, int]

_RECT = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
#: Rectangles per shot, at most.
MAX_REGIONS = 50


class BadRegion(BadValue):
    """An ``ignore`` entry that is not a rectangle."""


def parse_rect(text: str) -> Rect:
    """``"x,y,w,h"`` as a rectangle; :class:`BadRegion` otherwise."""
    match = _RECT.match(text)
    if match is None:
        raise BadRegion(
            f"{text[:60]!r} is not an x,y,w,h rectangle (CSS selectors are not measured in "
            "the page yet: give the region as x,y,w,h)"
        )
    x, y, w, h = (int(part) for part in match.groups())
    if w <= 0 or h <= 0:
        raise BadRegion(f"{text!r}: width and height must be positive")
    return (x, y, w, h)


def check_regions(value: object) -> tuple[str, ...]:
    """The ``ignore`` option's validator: text (comma-free entries separated by ``;``) or a list
    of ``x,y,w,h`` strings, each checked; returned normalised (``"x,y,w,h"``)."""
    if value is None:
        return ()
    items: Iterable[object]
    if isinstance(value, str):
        items = [part for part in value.split(";") if part.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise BadRegion("ignore must be a list of x,y,w,h rectangles")
    try:
        rects = [parse_rect(str(item)) for item in items]
    except BadRegion as exc:
        raise BadRegion(f"ignore: {exc}") from None
    if len(rects) > MAX_REGIONS:
        raise BadRegion(f"ignore: at most {MAX_REGIONS} regions")
    return tuple(",".join(str(n) for n in rect) for rect in rects)


def scaled(regions: Iterable[str], scale: float) -> list[Rect]:
    """The rectangles of ``regions`` in image pixels (CSS pixels × ``scale``)."""
    rects = []
    for text in regions:
        x, y, w, h = parse_rect(text)
        rects.append((round(x * scale), round(y * scale), round(w * scale), round(h * scale)))
    return rects
