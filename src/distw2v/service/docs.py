"""The API's documentation pages (/docs: Swagger UI, /redoc: ReDoc), served without a CDN.

FastAPI's own pages load their JavaScript and CSS from a CDN, and so are blank on a cluster
without internet access. Here the same pages load them from this server: the assets come from
the `fastapi-offline` package (installed with the `service` extra), mounted under ASSETS.

Each page's Content-Security-Policy allows what it needs and no more: scripts from this
server plus its own inline script (by hash, computed from the page as sent), no framing;
inline styles (Swagger UI and ReDoc set them as they draw) and ReDoc's search worker (blob:).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
SWAGGER_JS, SWAGGER_CSS = "swagger-ui-bundle.js", "swagger-ui.css"
REDOC_JS, FAVICON = "redoc.standalone.js", "favicon.png"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's files in the installed fastapi-offline."""
    return Path(str(resources.files("fastapi_offline") / "static"))


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with its security headers; its inline scripts are allowed by their hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode()))
    page.headers.update({
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'{hashes}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src blob:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
    return page


def add_docs(app: FastAPI, title: str) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc with local assets (none in the schema).

    The app must be made with `docs_url=None, redoc_url=None`, so that FastAPI's CDN pages
    are not registered first."""
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return with_policy(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{title} - API",
            swagger_js_url=f"{root}{ASSETS}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS}/{FAVICON}",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            # no validator badge: it is an image fetched from the validator's own site
            swagger_ui_parameters={"validatorUrl": None},
        ))

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return with_policy(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{title} - API",
            redoc_js_url=f"{root}{ASSETS}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS}/{FAVICON}",
            with_google_fonts=False,
        ))
