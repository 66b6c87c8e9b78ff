"""The web page at `/`: static files inside the package, plain HTML and JavaScript.

Nothing is loaded from elsewhere (the page works offline), and the Content-Security-Policy
says so to the browser: scripts, styles and requests only from this server, no inline script,
no framing. The page itself needs no token; every request it makes does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # a new version of the page is picked up at once
}


class _Static(StaticFiles):
    """StaticFiles with the page's security headers on every file."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


def add_web_page(app: FastAPI) -> None:
    app.mount("/static", _Static(directory=STATIC), name="static")

    @app.get("/", tags=["service"], response_class=FileResponse,
             responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                              "description": "the web page (it asks for a token)"}})
    def page() -> FileResponse:
        """The web page: sign in, jobs, submit form, job pages, model explorer."""
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)
