"""The API's documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from
this server: the files come from the ``fastapi-offline`` package instead of a CDN, and Swagger
UI starts from a static script rather than FastAPI's inline one, so both work under the
``script-src 'self'`` policy of ``web.security_headers``."""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR_DIR = Path(fastapi_offline.__file__).parent / "static"
VENDOR_URL = "/static-docs"


def swagger_ui_page(*, title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head>
<meta charset="utf-8"><title>{escape(title)}</title>
<link rel="stylesheet" href="{VENDOR_URL}/swagger-ui.css">
<link rel="icon" href="{VENDOR_URL}/favicon.png">
</head><body>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{VENDOR_URL}/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body></html>"""


def install_api_docs(app: FastAPI, *, title: str, openapi_url: str = "/openapi.json") -> None:
    """Adds /docs and /redoc; the app is built with ``docs_url=None, redoc_url=None``."""
    app.mount(VENDOR_URL, StaticFiles(directory=VENDOR_DIR), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_ui_page(title=f"{title} - Swagger UI",
                                            openapi_url=openapi_url))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                              redoc_js_url=f"{VENDOR_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{VENDOR_URL}/favicon.png",
                              with_google_fonts=False)
