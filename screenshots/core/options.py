"""Capture options: what a screenshot looks like, validated once, hashed into its storage key.

Options come from three places, in increasing precedence: the defaults below, the command
line, and a row of the URL file (JSON Lines or CSV, see :mod:`screenshots.batch.inputs`). Values
from files and
flags are *loose* (``"true"``, ``"400-599"``, ``"0,0,300,200"``, a JSON list or object);
:meth:`CaptureOptions.from_dict` turns them into the canonical, hashable form this dataclass
holds, and every bad value raises :class:`~screenshots.core.errors.InvalidOption` naming the option.

| option | type | default | meaning |
|---|---|---|---|
| ``width``, ``height`` | int | 1280, 800 | viewport in CSS pixels |
| ``full_page`` | bool | false | capture the whole page (cut at :data:`MAX_FULL_PAGE_HEIGHT`) |
| ``scale`` | float | 1 | device scale factor: the image is ``scale`` times the CSS size |
| ``format``, ``quality`` | str, int | png, 80 | png, jpeg or webp; quality for jpeg/webp |
| ``selector`` | CSS selector | none | capture just the first element it matches |
| ``clip`` | x,y,width,height | none | capture just this rectangle (CSS pixels, page coordinates) |
| ``hide_selectors`` | list of selectors | none | hidden (``visibility:hidden``) |
| ``css``, ``js`` | str | none | a style sheet added / a script run after load, before capture |
| ``wait_until`` | str | load | ``load``, ``domcontentloaded`` or ``networkidle`` |
| ``wait_for`` | CSS selector | none | wait until an element matching it is visible |
| ``wait_for_js`` | JS expression | none | wait until it is truthy |
| ``delay_ms`` | int | 0 | wait this long after everything else, before capture |
| ``scroll`` | bool | false | scroll through the page (lazy images), then back to the top |
| ``user_agent`` | str | Chromium's | the User-Agent header and ``navigator.userAgent`` |
| ``headers`` | object | none | extra HTTP request headers |
| ``cookies`` | object | none | cookies (name → value) set for the URL before loading it |
| ``dark_mode`` | bool | false | emulate ``prefers-color-scheme: dark`` |
| ``reduced_motion`` | bool | false | emulate ``prefers-reduced-motion: reduce`` |
| ``timezone`` | str | the machine's | IANA time zone (``Europe/Paris``) |
| ``locale`` | str | Chromium's | BCP 47 locale (``fr-FR``) |
| ``block`` | list | none | resource types (font, image, media…), URL patterns, hosts, ``ads`` |
| ``fail_on_status`` | list of ranges | none | document HTTP statuses that make an error row |
| ``timeout`` | float | 30 | seconds the whole capture may take |

Every option but ``timeout`` and ``fail_on_status`` can change the image, so every other
option is in the storage key (:meth:`CaptureOptions.image_fields`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from screenshots.core.errors import InvalidOption

#: Viewport width in CSS pixels when none is asked for.
DEFAULT_WIDTH = 1280
#: Viewport height in CSS pixels when none is asked for.
DEFAULT_HEIGHT = 800
#: Seconds one capture may take, navigation included, before it is abandoned.
DEFAULT_TIMEOUT = 30.0
#: Largest width or viewport height accepted, in pixels.
MAX_DIMENSION = 8192
#: A full-page capture is cut at this height (image pixels). Chromium's own texture limit is
#: 16384; taller pages are captured from the top down to this height.
MAX_FULL_PAGE_HEIGHT = 16384
#: Longest capture deadline accepted, in seconds. Kept far below RabbitMQ's consumer timeout.
MAX_TIMEOUT = 300.0
#: Longest wait after load, in milliseconds.
MAX_DELAY_MS = 60_000
#: Smallest and largest device scale factor.
MIN_SCALE, MAX_SCALE = 0.25, 4.0
#: Longest text accepted for ``css``, ``js`` and selectors, in characters.
MAX_TEXT = 32 * 1024
#: Most entries in ``headers``, ``cookies``, ``block`` and ``hide_selectors``.
MAX_ENTRIES = 100

#: Image formats and their MIME types.
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: File name extension per format.
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
#: Accepted ``wait_until`` values.
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle")
#: Resource types ``block`` accepts (Chromium's names, lower case), with their plural aliases.
RESOURCE_TYPES = ("font", "image", "media", "stylesheet", "script", "xhr", "fetch", "websocket")
_TYPE_ALIASES = {
    "fonts": "font", "images": "image", "stylesheets": "stylesheet", "css": "stylesheet",
    "scripts": "script", "websockets": "websocket",
}
#: ``block`` entry that stands for every host in ``data/adhosts.txt``.
BLOCK_ADS = "ads"

#: Options every engine honours: the pipeline applies them, not the browser.
PIPELINE_OPTIONS = frozenset({"timeout", "fail_on_status"})
#: Options that do not change the image, so are not in the storage key.
NOT_IN_KEY = frozenset({"timeout", "fail_on_status"})
#: The options of the first version: always in the key, so its keys stay valid. Options added
#: later are in the key only when they differ from their default.
_V1_KEY_FIELDS = ("width", "height", "full_page", "format", "quality", "delay_ms")

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z0-9-]{1,63}$")
_RANGE = re.compile(r"^(\d{3})(?:\s*-\s*(\d{3}))?$|^([1-5])xx$", re.IGNORECASE)

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CaptureOptions:
    """How to take one screenshot; see the module docstring for every option and its default.

    Immutable and hashable. Collections are held as tuples (``headers`` and ``cookies`` as
    sorted ``(name, value)`` pairs, ``fail_on_status`` as ``(low, high)`` ranges); the
    constructor also accepts lists and mappings and converts them.
    """

    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    full_page: bool = False
    #: Device scale factor: 2 gives a "retina" image twice the CSS size.
    scale: float = 1.0
    format: str = "png"
    #: JPEG/WebP quality, 1-100. ``None`` lets the engine choose (80). Ignored for PNG.
    quality: int | None = None
    #: Capture only the first element matching this CSS selector.
    selector: str | None = None
    #: Capture only this rectangle: ``(x, y, width, height)`` in CSS pixels of the page.
    clip: tuple[int, int, int, int] | None = None
    #: CSS selectors of elements hidden before capture.
    hide_selectors: tuple[str, ...] = ()
    #: A style sheet added to the page after load.
    css: str | None = None
    #: A script run in the page after load (after ``css``); a returned promise is awaited.
    js: str | None = None
    #: The navigation event to wait for: ``load``, ``domcontentloaded`` or ``networkidle``
    #: (no request for 500 ms after load).
    wait_until: str = "load"
    #: Wait until an element matching this CSS selector is visible.
    wait_for: str | None = None
    #: Wait until this JavaScript expression is truthy.
    wait_for_js: str | None = None
    #: Milliseconds to wait after the other waits, just before capturing.
    delay_ms: int = 0
    #: Scroll to the bottom step by step (lazy-loaded content), then back to the top.
    scroll: bool = False
    #: User-Agent header and ``navigator.userAgent``; ``None`` keeps Chromium's.
    user_agent: str | None = None
    #: Extra HTTP request headers, as sorted ``(name, value)`` pairs.
    headers: Pairs = ()
    #: Cookies set for the captured URL before loading it, as sorted ``(name, value)`` pairs.
    cookies: Pairs = ()
    #: Emulate ``prefers-color-scheme: dark``.
    dark_mode: bool = False
    #: Emulate ``prefers-reduced-motion: reduce``.
    reduced_motion: bool = False
    #: IANA time zone of the page (``Europe/Paris``); ``None`` keeps the machine's.
    timezone: str | None = None
    #: BCP 47 locale of the page (``fr-FR``): ``navigator.language``, ``Intl`` and the
    #: ``Accept-Language`` header; ``None`` keeps Chromium's.
    locale: str | None = None
    #: What not to load: resource types (:data:`RESOURCE_TYPES`), ``ads`` (the hosts of
    #: ``data/adhosts.txt``), host names (and their subdomains) or URL patterns with ``*``.
    block: tuple[str, ...] = ()
    #: Main-document HTTP status ranges, ``(low, high)`` inclusive, that make the row an error.
    fail_on_status: tuple[tuple[int, int], ...] = ()
    #: Seconds the whole capture may take.
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        _check_int("width", self.width, 1, MAX_DIMENSION)
        _check_int("height", self.height, 1, MAX_DIMENSION)
        _check_bool("full_page", self.full_page)
        self._set("scale", _number("scale", self.scale, MIN_SCALE, MAX_SCALE))
        if self.format not in CONTENT_TYPES:
            choices = ", ".join(CONTENT_TYPES)
            raise InvalidOption(f"format must be one of {choices}, not {self.format!r}")
        if self.quality is not None:
            _check_int("quality", self.quality, 1, 100)
        for name in ("selector", "wait_for"):
            _check_text(name, getattr(self, name), allow_none=True, blank=False)
        for name in ("css", "js", "wait_for_js"):
            _check_text(name, getattr(self, name), allow_none=True, blank=False)
        if self.clip is not None:
            self._set("clip", _clip(self.clip))
        self._set("hide_selectors", _strings("hide_selectors", self.hide_selectors))
        if self.wait_until not in WAIT_UNTIL:
            choices = ", ".join(WAIT_UNTIL)
            raise InvalidOption(f"wait_until must be one of {choices}, not {self.wait_until!r}")
        _check_int("delay_ms", self.delay_ms, 0, MAX_DELAY_MS)
        _check_bool("scroll", self.scroll)
        _check_text("user_agent", self.user_agent, allow_none=True, blank=False, line=True)
        self._set("headers", _pairs("headers", self.headers, _check_header))
        self._set("cookies", _pairs("cookies", self.cookies, _check_cookie))
        _check_bool("dark_mode", self.dark_mode)
        _check_bool("reduced_motion", self.reduced_motion)
        if self.timezone is not None:
            _check_timezone(self.timezone)
        if self.locale is not None and (
            not isinstance(self.locale, str) or not _LOCALE.match(self.locale)
        ):
            raise InvalidOption(f"locale must be a language tag such as fr-FR, not {self.locale!r}")
        self._set("block", _block(self.block))
        self._set("fail_on_status", _ranges(self.fail_on_status))
        self._set("timeout", _number("timeout", self.timeout, 0, MAX_TIMEOUT, low_open=True))
        if self.selector is not None and self.clip is not None:
            raise InvalidOption("selector and clip cannot be used together: choose one")
        if self.full_page and (self.selector is not None or self.clip is not None):
            what = "selector" if self.selector is not None else "clip"
            raise InvalidOption(f"full_page cannot be used with {what}")
        if self.width * self.scale > MAX_DIMENSION * 2:
            raise InvalidOption(f"width × scale must be at most {MAX_DIMENSION * 2} pixels")

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def effective_quality(self) -> int | None:
        """The quality the encoder uses: ``None`` for PNG, else the asked value or 80."""
        if self.format == "png":
            return None
        return 80 if self.quality is None else self.quality

    def requested(self) -> list[str]:
        """Names of the options set to something other than their default, in field order."""
        return [
            f.name for f in dataclasses.fields(self) if getattr(self, f.name) != _DEFAULTS[f.name]
        ]

    def image_fields(self) -> dict[str, Any]:
        """The fields that change the image, for the key (JSON-ready).

        The first version's fields are always there (their keys stay valid); later ones only
        when they differ from their default. ``timeout`` and ``fail_on_status`` never are.
        """
        plain = self.to_dict()
        fields = {name: plain[name] for name in _V1_KEY_FIELDS}
        fields["quality"] = self.effective_quality
        for name in self.requested():
            if name not in NOT_IN_KEY and name not in fields:
                fields[name] = plain[name]
        return fields

    def to_dict(self) -> dict[str, Any]:
        """Every option as plain JSON values; :meth:`from_dict` reads it back unchanged."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("headers", "cookies"):
                value = dict(value)
            elif f.name == "fail_on_status":
                value = [_range_text(low, high) for low, high in value]
            elif isinstance(value, tuple):
                value = list(value)
            values[f.name] = value
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CaptureOptions:
        """Build options from a mapping of loose values (file rows, flags, messages).

        ``None`` (JSON ``null``) and ``""`` (an empty CSV cell) mean "not given": the default
        applies. Raises :class:`~screenshots.core.errors.InvalidOption` naming the first unknown
        option or
        bad value.
        """
        return cls().merged(values)

    def merged(self, values: Mapping[str, Any]) -> CaptureOptions:
        """These options with ``values`` (loose, as in :meth:`from_dict`) laid over them."""
        unknown = sorted(set(values) - set(_DEFAULTS))
        if unknown:
            raise InvalidOption(f"unknown option {unknown[0]!r}")
        changes = {}
        for name, value in values.items():
            if value is None or value == "":
                continue
            changes[name] = coerce(name, value)
        if not changes:
            return self
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:  # pragma: no cover - names are checked above
            raise InvalidOption(str(exc)) from None

    def replace(self, **changes: Any) -> CaptureOptions:
        return dataclasses.replace(self, **changes)


def option_names() -> tuple[str, ...]:
    """Every option name, in the order of :class:`CaptureOptions`."""
    return tuple(f.name for f in dataclasses.fields(CaptureOptions))


# -- loose values to canonical ones --------------------------------------------------------

_BOOLS = {"true": True, "yes": True, "1": True, "on": True,
          "false": False, "no": False, "0": False, "off": False}
_INTS = {"width", "height", "quality", "delay_ms"}
_FLOATS = {"scale", "timeout"}
_BOOL_FIELDS = {"full_page", "scroll", "dark_mode", "reduced_motion"}
_LISTS = {"hide_selectors", "block"}


def coerce(name: str, value: Any) -> Any:
    """``value`` for option ``name`` from a file or a flag, in the type the field holds.

    Text is parsed (``"true"``, ``"12"``, ``"0,0,10,10"``, ``"400-599"``, JSON lists and
    objects); values already of the right type pass through. Range checks are left to
    :class:`CaptureOptions`.
    """
    if name in _BOOL_FIELDS:
        if isinstance(value, str):
            key = value.strip().lower()
            if key not in _BOOLS:
                raise InvalidOption(f"{name} must be true or false, not {value!r}")
            return _BOOLS[key]
        return value
    if name in _INTS:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise InvalidOption(f"{name} must be a whole number, not {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if name in _FLOATS:
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise InvalidOption(f"{name} must be a number, not {value!r}") from None
        return value
    if name == "clip" and isinstance(value, str):
        return _split(value, ",")
    if name in _LISTS and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return _json(name, text)
        return [part for part in _split(text, "," if name == "block" else "\n,") if part]
    if name == "fail_on_status":
        if isinstance(value, str):
            text = value.strip()
            return _json(name, text) if text.startswith("[") else _split(text, ",")
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        return value
    if name in ("headers", "cookies") and isinstance(value, str):
        text = value.strip()
        if text.startswith("{") or text.startswith("["):
            return _json(name, text)
        return _name_values(name, text)
    return value


def _split(text: str, separators: str) -> list[str]:
    parts = [text]
    for separator in separators:
        parts = [piece for part in parts for piece in part.split(separator)]
    return [part.strip() for part in parts]


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidOption(f"{name} is not valid JSON: {text[:80]!r}") from None


def _name_values(name: str, text: str) -> dict[str, str]:
    """``"a=1; b=2"`` (cookies) or ``"X-A: 1; X-B: 2"`` (headers) as a dict."""
    separator = ":" if name == "headers" else "="
    result = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, found, value = part.partition(separator)
        if not found:
            raise InvalidOption(f"{name} entry {part.strip()!r} has no {separator!r}")
        result[key.strip()] = value.strip()
    return result


# -- checks --------------------------------------------------------------------------------


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOption(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise InvalidOption(f"{name} must be between {low} and {high}, not {value}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidOption(f"{name} must be true or false, not {value!r}")


def _number(name: str, value: object, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidOption(f"{name} must be a number, not {value!r}")
    if value > high or value < low or (low_open and value == low):
        raise InvalidOption(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return float(value)


def _check_text(
    name: str, value: object, *, allow_none: bool, blank: bool, line: bool = False
) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, str):
        raise InvalidOption(f"{name} must be text, not {value!r}")
    if not blank and not value.strip():
        raise InvalidOption(f"{name} must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidOption(f"{name} is longer than {MAX_TEXT} characters")
    if line and ("\n" in value or "\r" in value):
        raise InvalidOption(f"{name} must be one line")


def _clip(value: object) -> tuple[int, int, int, int]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidOption(f"clip must be x,y,width,height, not {value!r}")
    items = list(value)
    if len(items) != 4:
        raise InvalidOption(f"clip must be 4 numbers x,y,width,height, not {len(items)}")
    numbers = []
    for item, what in zip(items, ("x", "y", "width", "height"), strict=True):
        if isinstance(item, str):
            try:
                item = int(item)
            except ValueError:
                raise InvalidOption(f"clip {what} must be a whole number, not {item!r}") from None
        _check_int(f"clip {what}", item, 0 if what in "xy" else 1, 100_000)
        numbers.append(int(item))
    if numbers[2] > MAX_DIMENSION or numbers[3] > MAX_FULL_PAGE_HEIGHT:
        raise InvalidOption(
            f"clip must be at most {MAX_DIMENSION} wide and {MAX_FULL_PAGE_HEIGHT} high"
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidOption(f"{name} must be a list of text, not {value!r}")
    items = list(value)
    if len(items) > MAX_ENTRIES:
        raise InvalidOption(f"{name} has more than {MAX_ENTRIES} entries")
    for item in items:
        _check_text(name, item, allow_none=False, blank=False, line=True)
    return tuple(items)


def _check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise InvalidOption(f"headers: {name!r} is not a valid header name")
    if name.lower() in ("host", "content-length", "cookie"):
        raise InvalidOption(f"headers: {name} cannot be set (use cookies for cookies)")
    if "\n" in value or "\r" in value:
        raise InvalidOption(f"headers: the value of {name} must be one line")


def _check_cookie(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise InvalidOption(f"cookies: {name!r} is not a valid cookie name")
    if any(c in value for c in ';\r\n'):
        raise InvalidOption(f"cookies: the value of {name} must not contain ';' or line breaks")


def _pairs(name: str, value: object, check: Any) -> Pairs:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidOption(f"{name} must be an object of names and values, not {value!r}")
    else:
        items = []
        for item in value:
            if isinstance(item, Mapping) and "name" in item and "value" in item:
                item = (item["name"], item["value"])
            if isinstance(item, str) or not isinstance(item, Iterable) or len(list(item)) != 2:
                raise InvalidOption(f"{name} must be an object of names and values")
            item_name, item_value = list(item)
            items.append((item_name, item_value))
    if len(items) > MAX_ENTRIES:
        raise InvalidOption(f"{name} has more than {MAX_ENTRIES} entries")
    result = []
    for key, val in items:
        if not isinstance(key, str) or not isinstance(val, str | int | float) or isinstance(
            val, bool
        ):
            raise InvalidOption(f"{name}: {key!r} must have a text value, not {val!r}")
        text = str(val)
        check(key, text)
        result.append((key, text))
    return tuple(sorted(result))


def _check_timezone(value: object) -> None:
    if not isinstance(value, str) or not value or ".." in value or value.startswith("/"):
        raise InvalidOption(f"timezone must be an IANA name such as Europe/Paris, not {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidOption(f"timezone {value!r} is not a known IANA time zone") from None


def _block(value: object) -> tuple[str, ...]:
    """Canonical ``block`` entries: sorted, without duplicates, aliases resolved."""
    items = _strings("block", value)
    result = set()
    for item in items:
        entry = item.strip()
        lowered = entry.lower()
        if lowered in RESOURCE_TYPES or lowered == BLOCK_ADS:
            result.add(lowered)
        elif lowered in _TYPE_ALIASES:
            result.add(_TYPE_ALIASES[lowered])
        elif "*" in entry or "/" in entry:
            result.add(entry)
        elif _HOST.match(entry):
            result.add(lowered)
        else:
            types = ", ".join(RESOURCE_TYPES)
            raise InvalidOption(
                f"block: {entry!r} is not a resource type ({types}), 'ads', a host name or a "
                "URL pattern with *"
            )
    return tuple(sorted(result))


def _ranges(value: object) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidOption(f"fail_on_status must be a list of status ranges, not {value!r}")
    ranges = set()
    for item in value:
        if isinstance(item, bool):
            raise InvalidOption(f"fail_on_status: {item!r} is not a status or a range")
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
            raise InvalidOption(
                f"fail_on_status: {item!r} is not a status or a range such as 400-599"
            )
        if not (isinstance(low, int) and isinstance(high, int)) or not (
            100 <= low <= high <= 599
        ):
            raise InvalidOption(f"fail_on_status: {item!r} must be within 100-599, low first")
        ranges.add((low, high))
    return tuple(sorted(ranges))


def _range_text(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"


def status_fails(options: CaptureOptions, status: int | None) -> str | None:
    """The ``fail_on_status`` range that ``status`` falls in, as text, or ``None``."""
    if status is None:
        return None
    for low, high in options.fail_on_status:
        if low <= status <= high:
            return _range_text(low, high)
    return None


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(CaptureOptions)}
