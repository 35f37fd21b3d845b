"""The declaration of the capture options: one pydantic model, each field with its type,
default, bounds, help text and :class:`~screenshots.core.options.spec.Option` (key rule, text
form, flag).

Everything else about options is derived from it: the checks of file rows, flags and API
bodies (:meth:`CaptureOptions.from_dict`), the dispatcher's flags, the API's request schema
and the README's options table (``python -m screenshots.dev.docs``). Adding an option is adding
a field here (and teaching the engines to apply it).

The model is strict: the constructor takes values of the field's type (collections may be
lists and mappings, held as tuples); loose text (``"true"``, ``"400-599"``) goes through
:meth:`~CaptureOptions.from_dict`. Frozen, so hashable; every bad value raises
:class:`~screenshots.core.errors.InvalidOption` naming the first bad option, in field order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from screenshots.core.errors import InvalidOption
from screenshots.core.options import checks, loose
from screenshots.core.options.checks import Pairs, range_text
from screenshots.core.options.limits import (
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
)
from screenshots.core.options.spec import Option, OptionSpec, invalid_option, read_specs
from screenshots.visual import regions


def _text(value: Any, info: ValidationInfo) -> Any:
    return value if value is None else checks.check_text(str(info.field_name), value)


def _line(value: Any, info: ValidationInfo) -> Any:
    return value if value is None else checks.check_text(str(info.field_name), value, line=True)


def _strings(value: Any, info: ValidationInfo) -> Any:
    return checks.strings(str(info.field_name), value)


def _optional(check: Any) -> BeforeValidator:
    return BeforeValidator(lambda value: value if value is None else check(value))


#: Text: not blank, at most :data:`MAX_TEXT` characters.
Text = Annotated[str | None, BeforeValidator(_text), Field(max_length=MAX_TEXT)]
#: One line of text.
Line = Annotated[str | None, BeforeValidator(_line), Field(max_length=MAX_TEXT)]
_TEXT_LIST = {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ENTRIES}
_OBJECT = {
    "type": "object", "additionalProperties": {"type": "string"}, "maxProperties": MAX_ENTRIES,
}


class CaptureOptions(BaseModel):
    """How to take one screenshot. Immutable and hashable; collections are held as tuples
    (``headers`` and ``cookies`` as sorted ``(name, value)`` pairs, ``fail_on_status`` as
    ``(low, high)`` ranges)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    width: Annotated[
        int,
        Field(ge=1, le=MAX_DIMENSION, description="viewport width in CSS pixels"),
        Option(key="always"),
    ] = DEFAULT_WIDTH
    height: Annotated[
        int,
        Field(ge=1, le=MAX_DIMENSION, description="viewport height in CSS pixels"),
        Option(key="always"),
    ] = DEFAULT_HEIGHT
    full_page: Annotated[
        bool,
        Field(
            description=f"capture the whole page, cut at {MAX_FULL_PAGE_HEIGHT} px "
            "(the stub engine: the viewport)"
        ),
        Option(key="always"),
    ] = False
    scale: Annotated[
        float,
        Field(
            ge=MIN_SCALE, le=MAX_SCALE, allow_inf_nan=False,
            description="device scale factor: 2 gives a retina image twice the CSS size",
        ),
    ] = 1.0
    format: Annotated[
        Literal["png", "jpeg", "webp"],
        Field(description="image format"),
        Option(key="always"),
    ] = "png"
    quality: Annotated[
        int | None,
        Field(ge=1, le=100, description="JPEG/WebP quality; ignored for PNG"),
        Option(key="always", unset="80"),
    ] = None
    selector: Annotated[
        Text,
        Field(description="capture only the first element matching this CSS selector"),
        Option(metavar="CSS", form="CSS selector"),
    ] = None
    clip: Annotated[
        tuple[int, int, int, int] | None,
        _optional(checks.clip),
        WithJsonSchema({
            "anyOf": [
                {"type": "array", "items": {"type": "integer", "minimum": 0},
                 "minItems": 4, "maxItems": 4},
                {"type": "string", "examples": ["0,0,800,600"]},
                {"type": "null"},
            ]
        }),
        Field(description="capture only this rectangle, in CSS pixels of the page"),
        Option(read=loose.comma_list, metavar="X,Y,W,H", form="x,y,width,height"),
    ] = None
    hide_selectors: Annotated[
        tuple[str, ...],
        BeforeValidator(_strings),
        WithJsonSchema(_TEXT_LIST),
        Field(description="CSS selectors of elements hidden (visibility: hidden) before capture"),
        Option(
            read=loose.list_reader("\n,"), flag="--hide-selector", metavar="CSS", repeat=True,
            form="list of CSS selectors",
        ),
    ] = ()
    css: Annotated[
        Text,
        Field(description="a style sheet added to the page after load"),
        Option(from_file=True, form="style sheet (flag: text or @file)"),
    ] = None
    js: Annotated[
        Text,
        Field(description="a script run after load and css; a returned promise is awaited"),
        Option(from_file=True, form="script (flag: text or @file)"),
    ] = None
    wait_until: Annotated[
        Literal["load", "domcontentloaded", "networkidle"],
        Field(description="navigation event to wait for (networkidle: 500 ms without requests)"),
    ] = "load"
    wait_for: Annotated[
        Text,
        Field(description="wait until an element matching this CSS selector is visible"),
        Option(metavar="CSS", form="CSS selector"),
    ] = None
    wait_for_js: Annotated[
        Text,
        Field(description="wait until this JavaScript expression is truthy"),
        Option(metavar="EXPR", form="JS expression"),
    ] = None
    delay_ms: Annotated[
        int,
        Field(
            ge=0, le=MAX_DELAY_MS,
            description="milliseconds to wait after the other waits, just before capture",
        ),
        Option(key="always"),
    ] = 0
    scroll: Annotated[
        bool,
        Field(description="scroll to the bottom step by step (lazy images), then back to the top"),
    ] = False
    user_agent: Annotated[
        Line,
        Field(description="User-Agent header and navigator.userAgent"),
        Option(unset="Chromium's"),
    ] = None
    headers: Annotated[
        Pairs,
        BeforeValidator(lambda value: checks.pairs("headers", value, checks.check_header)),
        WithJsonSchema(_OBJECT),
        Field(description="extra HTTP request headers"),
        Option(
            read=loose.pairs_reader(":"), flag="--header", metavar="'NAME: VALUE'", repeat=True,
            pair_separator=":", form="object name → value",
        ),
    ] = ()
    cookies: Annotated[
        Pairs,
        BeforeValidator(lambda value: checks.pairs("cookies", value, checks.check_cookie)),
        WithJsonSchema(_OBJECT),
        Field(description="cookies set for the URL before loading it"),
        Option(
            read=loose.pairs_reader("="), flag="--cookie", metavar="NAME=VALUE", repeat=True,
            pair_separator="=", form="object name → value",
        ),
    ] = ()
    dark_mode: Annotated[bool, Field(description="emulate prefers-color-scheme: dark")] = False
    reduced_motion: Annotated[
        bool, Field(description="emulate prefers-reduced-motion: reduce")
    ] = False
    timezone: Annotated[
        str | None,
        _optional(checks.timezone),
        Field(description="IANA time zone of the page, e.g. Europe/Paris"),
        Option(form="IANA time zone", unset="the machine's"),
    ] = None
    locale: Annotated[
        str | None,
        _optional(checks.locale),
        Field(
            description="BCP 47 locale, e.g. fr-FR: navigator.language, Intl, Accept-Language"
        ),
        Option(form="BCP 47 tag", unset="Chromium's"),
    ] = None
    block: Annotated[
        tuple[str, ...],
        BeforeValidator(checks.block),
        WithJsonSchema(_TEXT_LIST),
        Field(
            description="what not to load: resource types, ads (the hosts of "
            "data/adhosts.txt), hosts (and subdomains) or URL patterns with * "
            "(selenium: types by file extension, not xhr, fetch, websocket)"
        ),
        Option(
            read=loose.list_reader(","), metavar="WHAT", repeat=True,
            form=f"list: {', '.join(RESOURCE_TYPES)}, ads, hosts, URL patterns",
        ),
    ] = ()
    isolation: Annotated[
        Literal["standard", "strict"],
        Field(
            description="standard: an anonymous capture may use the HTTP cache earlier "
            "captures of the same site filled (one with cookies, headers or a user:pass@ "
            "URL never does); strict: nothing, the cache included, reaches the next capture"
        ),
        # Not in the key: where the page's files come from (the site's own cache rules decide
        # what a cached copy may be) does not change what was asked for, so a strict shot and
        # a standard one of the same page share one stored image, and no key changes.
        Option(key="never", form="standard or strict", sent_at_default=False),
    ] = "standard"
    fail_on_status: Annotated[
        tuple[tuple[int, int], ...],
        BeforeValidator(checks.ranges),
        WithJsonSchema({
            "anyOf": [
                {"type": "array", "items": {"anyOf": [
                    {"type": "integer", "minimum": 100, "maximum": 599},
                    {"type": "string", "examples": ["400-599", "5xx"]},
                ]}},
                {"type": "string", "examples": ["400-599"]},
            ]
        }),
        Field(description="HTTP statuses of the page that make the row an error"),
        Option(
            key="never", pipeline=True, read=loose.status_ranges, metavar="RANGE", repeat=True,
            form="status ranges: 404, 400-599, 5xx",
        ),
    ] = ()
    timeout: Annotated[
        float,
        Field(
            gt=0, le=MAX_TIMEOUT, allow_inf_nan=False,
            description="seconds the whole capture may take, navigation included",
        ),
        Option(key="never", pipeline=True),
    ] = DEFAULT_TIMEOUT

    # -- run comparison (issue #12): not in the key, they do not change the image ------------
    ignore: Annotated[
        tuple[str, ...],
        BeforeValidator(regions.check_regions),
        WithJsonSchema(_TEXT_LIST),
        Field(
            description="regions a comparison with an earlier run (--compare) leaves out: "
            "x,y,w,h rectangles in CSS pixels of the image, or CSS selectors whose elements "
            "are measured at capture time (a clock, an ad, a carousel)"
        ),
        Option(
            key="never", pipeline=True, read=loose.list_reader(";"), metavar="X,Y,W,H|SELECTOR",
            repeat=True, form="list of x,y,w,h rectangles or CSS selectors",
            sent_at_default=False,
        ),
    ] = ()
    changed_above: Annotated[
        float,
        Field(
            ge=0, le=100, allow_inf_nan=False,
            description="percent of changed pixels above which a compared URL is changed "
            "(and listed in changes.jsonl)",
        ),
        Option(key="never", pipeline=True, sent_at_default=False),
    ] = 0.1

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise invalid_option(exc, SPECS) from None

    @model_validator(mode="after")
    def _compatible(self) -> CaptureOptions:
        if self.selector is not None and self.clip is not None:
            raise checks.BadValue("selector and clip cannot be used together: choose one")
        if self.full_page and (self.selector is not None or self.clip is not None):
            what = "selector" if self.selector is not None else "clip"
            raise checks.BadValue(f"full_page cannot be used with {what}")
        if self.width * self.scale > MAX_DIMENSION * 2:
            raise checks.BadValue(f"width × scale must be at most {MAX_DIMENSION * 2} pixels")
        return self

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
        values = self.__dict__
        return [name for name, default in _DEFAULTS.items() if values[name] != default]

    def image_fields(self) -> dict[str, Any]:
        """The fields that change the image, for the key (JSON-ready).

        The first version's fields are always there (their keys stay valid); later ones only
        when they differ from their default. ``timeout`` and ``fail_on_status`` never are.
        """
        plain = self.to_dict()
        fields = {name: plain[name] for name in _ALWAYS_IN_KEY}
        fields["quality"] = self.effective_quality
        for name in self.requested():
            if name not in NOT_IN_KEY and name not in fields:
                fields[name] = plain[name]
        return fields

    def to_dict(self) -> dict[str, Any]:
        """Every option as plain JSON values (but those added later, at their default);
        :meth:`from_dict` reads it back unchanged."""
        values: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if name in _UNSENT_AT_DEFAULT and value == _DEFAULTS[name]:
                continue
            if name in ("headers", "cookies"):
                value = dict(value)
            elif name == "fail_on_status":
                value = [range_text(low, high) for low, high in value]
            elif isinstance(value, tuple):
                value = list(value)
            values[name] = value
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CaptureOptions:
        """Build options from a mapping of loose values (file rows, flags, messages).

        ``None`` (JSON ``null``) and ``""`` (an empty CSV cell) mean "not given": the default
        applies. Raises :class:`~screenshots.core.errors.InvalidOption` naming the first
        unknown option or bad value.
        """
        return _DEFAULT.merged(values)

    def merged(self, values: Mapping[str, Any]) -> CaptureOptions:
        """These options with ``values`` (loose, as in :meth:`from_dict`) laid over them."""
        unknown = sorted(set(values) - _DEFAULTS.keys())
        if unknown:
            raise InvalidOption(f"unknown option {unknown[0]!r}")
        changes = {}
        for name, value in values.items():
            if value is None or value == "":
                continue
            changes[name] = SPECS[name].read(name, value)
        if not changes:
            return self
        return self.replace(**changes)

    def replace(self, **changes: Any) -> CaptureOptions:
        """A copy with ``changes`` (of the fields' types), checked like the constructor's."""
        # only the fields not at their default are checked again: defaults are valid
        current = {name: value for name, value in self.__dict__.items() if value != _DEFAULTS[name]}
        return CaptureOptions(**{**current, **changes})


#: Every option's declaration, read back (see :mod:`screenshots.core.options.spec`).
SPECS: dict[str, OptionSpec] = read_specs(CaptureOptions)
_DEFAULTS: dict[str, Any] = {name: spec.default for name, spec in SPECS.items()}
_DEFAULT = CaptureOptions()
#: The options of the first version: always in the key, so its keys stay valid. Options added
#: later are in the key only when they differ from their default.
_ALWAYS_IN_KEY = tuple(name for name, spec in SPECS.items() if spec.in_key == "always")
#: Options that do not change the image, so are not in the storage key.
NOT_IN_KEY = frozenset(name for name, spec in SPECS.items() if spec.in_key == "never")
#: Options left out of :meth:`CaptureOptions.to_dict` at their default (see ``Option``).
_UNSENT_AT_DEFAULT = frozenset(n for n, spec in SPECS.items() if not spec.option.sent_at_default)
#: Options every engine honours: the pipeline applies them, not the browser.
PIPELINE_OPTIONS = frozenset(name for name, spec in SPECS.items() if spec.option.pipeline)
