"""/docs and /redoc without a CDN: Swagger UI and ReDoc from files an installed package ships, or not at all.

FastAPI's own pages load their scripts from cdn.jsdelivr.net, so they are blank on a machine without internet
access. The serve extra installs fastapi-offline, which ships those files; where no package ships them, the
pages are left out (the schema stays at /openapi.json) and `emozoo serve` says so when it starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL, REDOC_URL = "/docs", "/redoc"
ASSETS_URL = "/docs-assets"
SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", \
    "favicon.png"
ASSET_PACKAGES = (("fastapi_offline", "static"),)  # (package, its folder holding the files)


def swagger_assets() -> Path | None:
    """A folder holding swagger-ui-bundle.js and swagger-ui.css from an installed package, else None."""
    for package, folder in ASSET_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / folder
            if (candidate / SWAGGER_JS).is_file() and (candidate / SWAGGER_CSS).is_file():
                return candidate
    return None


def install_docs(app: FastAPI, assets: Path | None) -> str:
    """Serve /docs from `assets` (no request leaves the machine); return a note for the start-up line."""
    if assets is None:
        return f"no {DOCS_URL} (no installed package ships Swagger UI: pip install fastapi-offline); schema at " \
               f"{app.openapi_url}"
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    favicon = f"{ASSETS_URL}/{FAVICON}" if (assets / FAVICON).is_file() else ""

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{favicon}" if favicon else "data:,",
        )

    if (assets / REDOC_JS).is_file():
        @app.get(REDOC_URL, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "").rstrip("/")
            return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
                                  redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
                                  redoc_favicon_url=f"{root}{favicon}" if favicon else "data:,",
                                  with_google_fonts=False)

    return f"API docs at {DOCS_URL}"
