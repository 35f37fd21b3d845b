"""The Procfile's lines, as the tests read them (one place: the process names and commands)."""

from __future__ import annotations

from pathlib import Path

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def procfile() -> dict[str, str]:
    """``{process name: command line}``, in the Procfile's order (comments and blanks out)."""
    lines = PROCFILE.read_text(encoding="utf-8").splitlines()
    return dict(
        (name.strip(), command.strip())
        for name, command in (
            line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")
        )
    )
