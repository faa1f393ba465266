"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served from the app's own files.

FastAPI's default pages load their scripts, styles and fonts from a CDN, which many hospital
networks (and these machines) cannot reach: the pages came up blank. ``scripts/bootstrap.sh``
installs ``swagger-ui-dist`` and ``redoc`` from the npm registry into ``build/apidocs`` (as it
does YASGUI); the pages point at them under ``/static/apidocs``. Without them, a plain page says
what is missing instead of a blank one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from crlm_kg import paths

from .problems import problem_response

STATIC_PATH = "/static/apidocs"
SWAGGER_FILES = ("swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-dist/swagger-ui.css")
REDOC_FILES = ("redoc/bundles/redoc.standalone.js",)
FAVICON = "swagger-ui-dist/favicon-32x32.png"
#: Everything from the service itself; inline scripts are how FastAPI's pages start the viewers,
#: and ReDoc runs its search in a blob: worker.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'self'")

#: The one address ReDoc's bundle hard-codes (the Redocly logo in its side menu, with no option to turn it off):
#: served as an empty data: image, which the viewer's own error handler then hides. Offline, the browser would
#: otherwise try the CDN (or, under the CSP, log an error on every page view).
REWRITES = {REDOC_FILES[0]: (("https://cdn.redoc.ly/redoc/logo-mini.svg", "data:,"),)}

router = APIRouter(include_in_schema=False)


def modules_dir() -> Path:
    return paths.BUILD_DIR / "apidocs" / "node_modules"


def _installed(files: tuple[str, ...]) -> bool:
    return all((modules_dir() / f).is_file() for f in files)


def _missing_page(viewer: str, package: str) -> HTMLResponse:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crlm-kg API: {viewer} is not installed</title></head>
<body style="font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;line-height:1.5">
<h1>{viewer} is not installed on this server</h1>
<p>The API documentation viewer is served from the service's own files, never from a CDN, and
<code>{package}</code> has not been installed from npm. Run <code>scripts/bootstrap.sh</code> (it needs <code>npm</code>).</p>
<p>The API description itself is available: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3). <a href="/">Home</a></p>
</body></html>"""
    return HTMLResponse(body, status_code=503, headers={"Content-Security-Policy": CSP})


def _with_csp(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = CSP
    return response


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    if not _installed(SWAGGER_FILES):
        return _missing_page("Swagger UI", "swagger-ui-dist")
    app = request.app
    return _with_csp(get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title}: API (Swagger UI)",
        swagger_js_url=f"{STATIC_PATH}/{SWAGGER_FILES[0]}", swagger_css_url=f"{STATIC_PATH}/{SWAGGER_FILES[1]}",
        swagger_favicon_url=f"{STATIC_PATH}/{FAVICON}",
        # no "validatorUrl": Swagger UI would otherwise send the document to validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
    ))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    if not _installed(REDOC_FILES):
        return _missing_page("ReDoc", "redoc")
    app = request.app
    return _with_csp(get_redoc_html(
        openapi_url=app.openapi_url, title=f"{app.title}: API (ReDoc)", redoc_js_url=f"{STATIC_PATH}/{REDOC_FILES[0]}",
        redoc_favicon_url=f"{STATIC_PATH}/{FAVICON}", with_google_fonts=False,
    ))


@router.get(STATIC_PATH + "/{path:path}")
def asset(path: str) -> Response:
    """The installed viewer files, and nothing outside their directory."""
    root = modules_dir().resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix not in {".js", ".css", ".png", ".map"}:
        return problem_response(404, "Not found")
    relative = target.relative_to(root).as_posix()
    if relative in REWRITES:
        return Response(_rewritten(relative, target.stat().st_mtime), media_type="text/javascript")
    return FileResponse(target)


@lru_cache(maxsize=4)
def _rewritten(relative: str, mtime: float) -> bytes:  # mtime: a reinstalled package is read again
    text = (modules_dir() / relative).read_text(encoding="utf-8")
    for old, new in REWRITES[relative]:
        text = text.replace(old, new)
    return text.encode("utf-8")
