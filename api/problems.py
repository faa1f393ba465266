"""JSON problem reports (RFC 9457) for every error the service returns.

Clients get a ``type``/``title``/``status``/``detail`` document and, for bad
input, ``errors`` naming each field or parameter and the rule it broke;
never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("crlm_kg.api")
PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a route to answer with a problem report."""

    def __init__(self, status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


def problem_response(status: int, title: str, detail: str = "", errors: list[dict[str, Any]] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, exc.errors, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"field": _field_name(tuple(e.get("loc", ()))), "rule": e.get("type", "invalid"), "message": e.get("msg", "")} for e in exc.errors()]
        return problem_response(422, "Invalid request", "the request does not match the documented schema", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem_response(exc.status_code, str(exc.detail) if exc.detail else "HTTP error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Internal error", "the server could not answer this request; it has been logged")


DEFAULT_MAX_BODY = 1024 * 1024


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The request body, refused early (413) past the limit (``CRLM_KG_MAX_BODY_BYTES``, default 1 MiB)."""
    import os

    limit = limit if limit is not None else int(os.environ.get("CRLM_KG_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY)))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Request body too large", f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Request body too large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
