"""README.md's options table, generated from the capture options' declaration
(:mod:`screenshots.core.options.model`), so the table cannot drift from the code.

``python -m screenshots.dev.docs`` rewrites the table between the markers
``<!-- options-table:start -->`` and ``<!-- options-table:end -->`` of README.md;
``--check`` only says whether it is up to date (exit status 1 when not), as
``tests/test_docs_readme.py`` does. The engines column comes from the engines' own ``supports``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from engines import ENGINES
from screenshots.core.options import OptionSpec, option_specs

START = "<!-- options-table:start -->"
END = "<!-- options-table:end -->"
#: The repository's README.md.
README = Path(__file__).resolve().parents[2] / "README.md"


def options_table() -> str:
    """The options table in Markdown, one row per option, in declaration order."""
    supports = _engine_supports()
    lines = [
        "<!-- generated from screenshots/core/options/model.py: python -m screenshots.dev.docs -->",
        "",
        "| option | type | default | in the storage key | engines | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for spec in option_specs():
        cells = (
            f"`{spec.name}`", _type(spec), _default(spec), _key(spec),
            _engines(spec, supports), spec.help,
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def with_table(text: str, table: str) -> str:
    """``text`` (README.md's) with ``table`` between the markers; ``ValueError`` without them."""
    head, found, rest = text.partition(START)
    _old, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"README.md has no {START} ... {END} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"


def _type(spec: OptionSpec) -> str:
    if spec.option.form:
        return spec.option.form
    if spec.choices:
        return " / ".join(spec.choices)
    names = {bool: "bool", int: "int", float: "number", str: "text"}
    kind = names.get(spec.kind, spec.kind.__name__)
    return f"{kind} {spec.bounds()}" if spec.bounds() else kind


def _default(spec: OptionSpec) -> str:
    value = spec.default
    if value is None:
        return spec.option.unset
    if value == ():
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _key(spec: OptionSpec) -> str:
    if spec.in_key == "always":
        return "yes"
    if spec.in_key == "never":
        return "no"
    if spec.kind is bool:
        return "yes, when true"
    if spec.default not in (None, ()):
        return f"yes, when not {_default(spec)}"
    return "yes, when set"


def _engines(spec: OptionSpec, supports: dict[str, frozenset[str]]) -> str:
    if spec.option.pipeline:
        return "all (the pipeline's)"
    names = [name for name, options in supports.items() if spec.name in options]
    return "all" if len(names) == len(supports) else ", ".join(names)


def _engine_supports() -> dict[str, frozenset[str]]:
    """The options each built-in engine applies, by engine name (the engine's ``supports``)."""
    result = {}
    for name, target in sorted(ENGINES.items()):
        module_name, class_name = target.split(":")
        engine_class = getattr(importlib.import_module(module_name), class_name)
        result[name] = frozenset(engine_class.supports)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m screenshots.dev.docs",
        description="Write README.md's options table from the options' declaration.",
    )
    parser.add_argument("--check", action="store_true", help="only check it is up to date")
    parser.add_argument("--readme", type=Path, default=README, help="the README to update")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = with_table(text, options_table())
    if updated == text:
        return 0
    if args.check:
        print(f"{args.readme}: the options table is out of date: "
              "run python -m screenshots.dev.docs", file=sys.stderr)
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: options table updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
