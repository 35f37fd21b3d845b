"""What the declaration of the capture options says, read back for the code derived from it.

Each field of :class:`~screenshots.core.options.model.CaptureOptions` carries, beside its type,
default, bounds and help text (pydantic's), an :class:`Option`: whether it is in the storage
key, how it is read from text, and how it appears on the command line. :func:`read_specs`
gathers all of it into one :class:`OptionSpec` per option, which the dispatcher's flags, the
file readers, the API schema and the README table are built from; :func:`invalid_option`
turns pydantic's first error into the :class:`~screenshots.core.errors.InvalidOption` users
have always read (``width must be between 1 and 8192, not 0``).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ValidationError

from screenshots.core.errors import InvalidOption
from screenshots.core.options import loose
from screenshots.core.options.loose import Reader

#: Whether an option is in the storage key: ``always`` (the first version's options, so their
#: keys stay valid), ``when set`` (options added later: only when not at their default, so
#: earlier keys stay valid), or ``never`` (it cannot change the image).
KeyRule = Literal["always", "when set", "never"]


@dataclass(frozen=True)
class Option:
    """An option's declaration beyond what pydantic's ``Field`` holds."""

    key: KeyRule = "when set"
    #: Applied by the pipeline rather than the browser, so every engine honours it.
    pipeline: bool = False
    #: Reads the option's loose text form; ``None``: the reader of its type.
    read: Reader | None = None
    #: The command-line flag, when it is not ``--<name-with-dashes>``.
    flag: str | None = None
    metavar: str | None = None
    #: The flag may be repeated; its values are collected in a list.
    repeat: bool = False
    #: The flag takes ``@path`` to read the value from a file.
    from_file: bool = False
    #: Repeated ``NAME<separator>VALUE`` flags make an object (``headers``, ``cookies``).
    pair_separator: str | None = None
    #: How a value is written, for the README, when its type alone does not say.
    form: str | None = None
    #: What happens when the option is not given (its default is ``None``), for the README.
    unset: str = "—"
    #: In :meth:`~screenshots.core.options.model.CaptureOptions.to_dict` (task messages) even
    #: at its default. Options added after the message form was pinned say ``False``: a worker
    #: of an earlier version, which refuses unknown options, still reads the messages of shots
    #: that leave them at their default.
    sent_at_default: bool = True


@dataclass(frozen=True)
class OptionSpec:
    """Everything declared about one option."""

    name: str
    help: str
    default: Any
    #: ``bool``, ``int``, ``float``, ``str`` or ``tuple`` (a collection with its own checks).
    kind: type
    choices: tuple[str, ...]
    low: int | float | None
    high: int | float | None
    #: ``low`` itself is refused (``timeout`` must be more than 0).
    low_open: bool
    max_length: int | None
    option: Option
    read: Reader

    @property
    def flag(self) -> str:
        return self.option.flag or "--" + self.name.replace("_", "-")

    @property
    def in_key(self) -> KeyRule:
        return self.option.key

    def bounds(self) -> str:
        """``"1–8192"``, ``"0.25–4"``, or ``""`` without bounds."""
        if self.low is None or self.high is None:
            return ""
        return f"{self.low:g}–{self.high:g}"


def read_specs(model: type[BaseModel]) -> dict[str, OptionSpec]:
    """One :class:`OptionSpec` per field of ``model``, in field order."""
    specs = {}
    for name, info in model.model_fields.items():
        option = next((m for m in info.metadata if isinstance(m, Option)), Option())
        low: Any = None
        high: Any = None
        max_length: int | None = None
        low_open = False
        for item in info.metadata:
            if isinstance(item, annotated_types.Ge):
                low = item.ge
            elif isinstance(item, annotated_types.Gt):
                low, low_open = item.gt, True
            elif isinstance(item, annotated_types.Le):
                high = item.le
            elif isinstance(item, annotated_types.MaxLen):
                max_length = item.max_length
        kind, choices = _kind(info.annotation)
        specs[name] = OptionSpec(
            name=name,
            help=info.description or "",
            default=info.default,
            kind=kind,
            choices=choices,
            low=low,
            high=high,
            low_open=low_open,
            max_length=max_length,
            option=option,
            read=option.read or _READERS.get(kind, loose.as_is),
        )
    return specs


_READERS: dict[type, Reader] = {bool: loose.as_bool, int: loose.as_int, float: loose.as_float}


def _kind(annotation: Any) -> tuple[type, tuple[str, ...]]:
    """The base type of an annotation (``X | None`` → ``X``) and a ``Literal``'s values."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(arg for arg in args if arg is not type(None))
        args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return str, tuple(str(arg) for arg in args)
    if typing.get_origin(annotation) is tuple:
        return tuple, ()
    return annotation, ()


def invalid_option(exc: ValidationError, specs: dict[str, OptionSpec]) -> InvalidOption:
    """The first error of ``exc`` as the message users read, naming the option."""
    error = exc.errors(include_url=False)[0]
    kind, value = error["type"], error.get("input")
    if kind == "value_error":  # raised by a check of checks.py: its message is the one
        return InvalidOption(str(error["ctx"]["error"]))
    name = str(error["loc"][0]) if error["loc"] else ""
    spec = specs.get(name)
    if kind == "extra_forbidden" or spec is None:
        return InvalidOption(f"unknown option {name!r}")
    if kind.startswith(("greater_than", "less_than")) or (
        kind == "finite_number" and value == value  # infinity: out of range, NaN: no number
    ):
        if spec.kind is int:
            return InvalidOption(
                f"{name} must be between {spec.low} and {spec.high}, not {value}"
            )
        return InvalidOption(
            f"{name} must be between {spec.low:g} and {spec.high:g}, not {value:g}"
        )
    if spec.choices:
        return InvalidOption(f"{name} must be one of {', '.join(spec.choices)}, not {value!r}")
    what = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if spec.kind in what:
        return InvalidOption(f"{name} must be {what[spec.kind]}, not {value!r}")
    return InvalidOption(f"{name}: {error['msg']}")  # pragma: no cover - every kind is above
