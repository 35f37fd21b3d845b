"""Which Chromium a worker runs when ``SCREENSHOT_CHROMIUM`` is not set (issue #15): Debian's
headless shell when it is installed, else the full browser; the variable always wins."""

from __future__ import annotations

from pathlib import Path

from screenshots.core.settings import (
    DEFAULT_CHROMIUM,
    FULL_CHROMIUM,
    HEADLESS_SHELL,
    default_chromium,
    load_settings,
)


def executable(path: Path) -> str:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_the_headless_shell_is_the_default_where_it_is_installed(tmp_path: Path) -> None:
    shell = executable(tmp_path / "chromium-headless-shell")
    assert default_chromium(shell, FULL_CHROMIUM) == shell


def test_the_full_browser_is_the_default_without_the_shell(tmp_path: Path) -> None:
    assert default_chromium(str(tmp_path / "nothing"), FULL_CHROMIUM) == FULL_CHROMIUM
    not_runnable = tmp_path / "chromium-headless-shell"
    not_runnable.write_text("")
    assert default_chromium(str(not_runnable), FULL_CHROMIUM) == FULL_CHROMIUM


def test_make_install_puts_the_shell_where_the_default_looks() -> None:
    assert DEFAULT_CHROMIUM == HEADLESS_SHELL, f"{HEADLESS_SHELL} missing: run make install"
    assert load_settings({}).chromium_path == HEADLESS_SHELL


def test_screenshot_chromium_chooses_the_browser() -> None:
    chosen = load_settings({"SCREENSHOT_CHROMIUM": FULL_CHROMIUM})
    assert chosen.chromium_path == FULL_CHROMIUM
