"""README.md's options table is the one generated from the options' declaration."""

from __future__ import annotations

import pytest

from screenshots.core.options import option_names
from screenshots.dev import docs


def test_readme_options_table_is_generated_from_the_declaration() -> None:
    pytest.importorskip("playwright", reason="the engines column reads every built-in engine")
    text = docs.README.read_text(encoding="utf-8")
    assert docs.with_table(text, docs.options_table()) == text, (
        "README.md's options table is out of date: run python -m screenshots.dev.docs"
    )


def test_the_table_has_a_row_per_option_and_says_what_is_in_the_key() -> None:
    pytest.importorskip("playwright", reason="the engines column reads every built-in engine")
    rows = {
        line.split(" | ")[0].strip("| `"): line.split(" | ")
        for line in docs.options_table().splitlines()
        if line.startswith("| `")
    }
    assert tuple(rows) == option_names()
    assert rows["width"][3] == "yes" and rows["timeout"][3] == "no"
    assert rows["scale"][3] == "yes, when not 1" and rows["dark_mode"][3] == "yes, when true"
    assert rows["fail_on_status"][4] == "all (the pipeline's)"


def test_the_command_checks_and_rewrites_the_table(tmp_path) -> None:
    pytest.importorskip("playwright", reason="the engines column reads every built-in engine")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{docs.START}\n| old |\n{docs.END}\n\nAfter.\n")
    assert docs.main(["--check", "--readme", str(readme)]) == 1
    assert docs.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\n") and text.endswith("\n\nAfter.\n")
    assert "| `width` | int 1–8192 | 1280 | yes |" in text and "| old |" not in text
    assert docs.main(["--check", "--readme", str(readme)]) == 0


def test_a_readme_without_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="options-table:start"):
        docs.with_table("# no markers\n", "| table |")
