"""The tree stays what the README says it is: the layout table names every module of every
folder, the root keeps only the entry points, and no module of the product grows past ~500 lines.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the repository's root may hold: the design card's entry points, packaging and docs.
ROOT_ENTRIES = {
    ".ci", ".dockerignore", ".gitignore", "Dockerfile", "compose.yaml", "deploy", "docs",
    "Makefile", "Procfile", "README.md", "SECURITY.md", "api.py", "celeryconfig.py",
    "dispatcher.py", "engines", "pyproject.toml", "requirements.txt", "screenshots", "tasks",
    "tests",
}
#: "No module of the product is over ~500 lines"; the developer tooling (screenshots/dev) and
#: the tests are not the product.
MAX_PRODUCT_LINES = 520
PRODUCT = ("screenshots", "tasks", "engines")


def tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return [Path(name) for name in listed if (ROOT / name).exists()]


def layout_rows() -> dict[str, str]:
    """The README's layout table: first cell's path (without backticks) → the rest of the row."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    assert rows, "README.md has no layout table"
    return rows


def test_the_root_keeps_only_entry_points_packaging_and_docs() -> None:
    top = {path.parts[0] for path in tracked()}
    assert top <= ROOT_ENTRIES, f"unexpected at the root: {sorted(top - ROOT_ENTRIES)}"


def test_every_path_in_the_layout_table_exists() -> None:
    missing = [path for path in layout_rows() if not (ROOT / path).exists()]
    assert not missing, f"README's layout table names paths that do not exist: {missing}"


def test_the_layout_table_names_every_module_of_each_folder() -> None:
    rows = layout_rows()
    folders = [path.rstrip("/") for path in rows if path.endswith("/")]
    assert {"screenshots/core", "tasks", "engines"} <= set(folders)
    wrong: list[str] = []
    for folder in folders:
        if folder == "tests":
            continue
        on_disk = {
            path.name for path in tracked()
            if path.suffix == ".py" and path.parent == Path(folder)
            and path.name not in ("__init__.py", "__main__.py")
        }
        named = set(re.findall(r"`([\w]+\.py)`", rows[folder + "/"]))
        if on_disk != named:
            wrong.append(
                f"{folder}/: not in the table {sorted(on_disk - named)}, "
                f"not on disk {sorted(named - on_disk)}"
            )
    # Every folder of the product that holds a module (the package's root only has its
    # __init__, described above the table).
    packages = {
        str(path.parent) for path in tracked()
        if path.suffix == ".py" and path.parts[0] in PRODUCT
        and path.name not in ("__init__.py", "__main__.py")
    }
    unlisted = sorted(packages - set(folders))
    assert not wrong and not unlisted, "\n".join([*wrong, f"folders not in the table: {unlisted}"])


@pytest.mark.parametrize("package", PRODUCT)
def test_no_module_of_the_product_is_over_500_lines(package: str) -> None:
    long = {
        str(path): lines
        for path in tracked()
        if path.parts[0] == package and path.suffix == ".py" and path.parts[:2] != (
            "screenshots", "dev")
        and (lines := len((ROOT / path).read_text(encoding="utf-8").splitlines()))
        > MAX_PRODUCT_LINES
    }
    assert not long, f"split these by job: {long}"
