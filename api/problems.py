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

from crlm_kg.store import QueryError

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
        response = problem_response(exc.status_code, str(exc.detail) if exc.detail else "HTTP error")
        for name, value in (getattr(exc, "headers", None) or {}).items():  # e.g. Allow on a 405 (RFC 9110 §15.5.6)
            response.headers[name] = value
        return response

    @app.exception_handler(QueryError)
    async def _store_failed(request: Request, exc: QueryError):
        # a store that cannot answer must never look like an answer (an empty rule set, "not classified")
        log.error("the store failed on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        response = problem_response(503, "The store could not answer", "the knowledge graph is unavailable; nothing was evaluated, retry shortly")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        from .privacy import PATIENT_PATHS

        if request.url.path in PATIENT_PATHS and not request.app.state.settings.log_patients:
            # the exception's message may quote the patient's values: keep the frames, withhold the text
            import traceback

            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("unhandled %s on %s %s (message withheld: CRLM_KG_LOG_PATIENTS is off)\n%s",
                      type(exc).__name__, request.method, request.url.path, frames)
        else:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Internal error", "the server could not answer this request; it has been logged")


PROBLEM_SCHEMA = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem report; errors names each field or parameter and the rule it broke",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "rule", "message"],
                                               "properties": {"field": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


def document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents its request-validation 422 as ``application/json`` (HTTPValidationError);
    the service answers it as a problem report (``_validation`` above). Make the document say so."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        ref = "#/components/schemas/HTTPValidationError"
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422", {})
                content = response.get("content", {})
                if content.get("application/json", {}).get("schema", {}).get("$ref") == ref:
                    del content["application/json"]
                    content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}
                    response["description"] = "the request does not match the documented schema (problem report naming each field)"
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass ``limit``: by its
    Content-Length, or while streaming (never buffered whole)."""
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
