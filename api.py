"""The HTTP API's entry point: ``uvicorn api:app``. The application lives in
:mod:`screenshots.api`; this module only names it where uvicorn and the Procfile look."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    app: FastAPI

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    # Built on first use, as screenshots.api does, so importing this module stays cheap.
    if name == "app":
        from screenshots.api import app

        globals()["app"] = app
        return app
    raise AttributeError(name)
