"""The web page at ``/``: paste URLs or upload a file, watch progress, browse a gallery.

It is static (``api/static``) and talks to the same ``/v1`` API with the key the person
types in (kept in the browser's ``localStorage``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: The page's files.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Headers of the page: its own scripts and styles only, images from itself or blobs.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def add_web_page(app: FastAPI) -> None:
    """Serve ``/`` and ``/static/*``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        page = STATIC_DIR / "index.html"
        return FileResponse(page, media_type="text/html", headers=PAGE_HEADERS)
