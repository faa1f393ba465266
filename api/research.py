"""For researchers: the named queries (negotiated as JSON, CSV, TSV or SPARQL results XML) and
pooled estimates (random-effects meta-analyses of comparable hazard ratios)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from crlm_kg.pooling import METHODS, PoolingRefused, pool
from crlm_kg.queries import FORMATS, QueryLibrary, QueryParameterError, format_table, result_document

from .deps import StoreDep
from .negotiation import negotiate
from .problems import Problem

# media types a named query's answer is offered in, the server's preference first; application/xml
# is what generic clients ask for and gets the SPARQL results XML
OFFERS = [FORMATS["json"], FORMATS["csv"], FORMATS["tsv"], FORMATS["xml"], "application/xml"]
MEDIA_FORMAT = {**{media: name for name, media in FORMATS.items()}, "application/xml": "xml"}


class AllowedValueInfo(BaseModel):
    value: str
    label: Optional[str] = None


class QueryParameterInfo(BaseModel):
    name: str
    type: str
    example: str
    description: str
    required: bool
    allowedValues: Optional[list[AllowedValueInfo]] = None


class QueryInfo(BaseModel):
    name: str
    title: str
    description: str
    parameters: list[QueryParameterInfo]
    columns: list[str]


class QueryResult(BaseModel):
    query: str
    columns: list[str]
    rows: list[dict[str, Any]]


@lru_cache(maxsize=1)
def _library() -> QueryLibrary:
    return QueryLibrary.load()


router = APIRouter()


@router.get("/queries", tags=["queries"], summary="The named queries with their parameters and the values each parameter allows",
            response_model=list[QueryInfo])
def list_queries(store: StoreDep) -> list[dict[str, Any]]:
    library = _library()
    return [q.describe(library.allowed_values(store, q.name)) for q in library.all()]


def _media(request: Request) -> str:
    requested = request.query_params.get("format")
    if requested is not None:
        if requested.lower() not in FORMATS:
            raise Problem(400, "Unknown format", f"format must be one of {', '.join(FORMATS)}",
                          [{"field": "format", "rule": "in", "message": f"one of {', '.join(FORMATS)}", "allowed": list(FORMATS)}])
        return FORMATS[requested.lower()]
    media = negotiate(request.headers.get("accept"), OFFERS)
    if media is None:
        raise Problem(406, "Not acceptable", f"a named query's answer is served as {', '.join(OFFERS)}")
    return media


@router.get(
    "/queries/{name}",
    tags=["queries"],
    summary="Run a named query",
    description="Query-string parameters are the query's parameters (see GET /queries); they are typed and bound as values. "
                "A parameter with allowed values matches them case-insensitively by code or label. The answer is JSON "
                "(every column in every row, null where unbound: the shape of `crlm-kg query --format json`), CSV, TSV or "
                "SPARQL results XML, chosen by Accept or by ?format=json|csv|tsv|xml.",
    response_model=QueryResult,
    responses={200: {"content": {m: {} for m in OFFERS[1:]}},
               400: {"description": "a missing, unknown or badly typed parameter, a value outside the allowed ones, or an unknown format"},
               404: {"description": "no such query"}, 406: {"description": "no acceptable format"},
               503: {"description": "the store could not answer"}},
)
def run_query(name: str, request: Request, store: StoreDep) -> Response:
    library = _library()
    if name not in library.queries:
        raise Problem(404, "No such named query", f"{name!r} is not a named query; GET /queries lists them",
                      [{"field": "name", "rule": "known-query", "message": f"unknown query {name!r}"}])
    media = _media(request)
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key == "format":
            continue
        if key in params:
            raise Problem(400, "Repeated parameter", f"parameter {key} was given twice",
                          [{"field": key, "rule": "single-value", "message": f"give {key} once"}])
        params[key] = value
    try:
        columns, rows = library.run(store, name, params)
    except QueryParameterError as exc:
        error: dict[str, Any] = {"field": exc.parameter or "parameters", "rule": "allowed-values" if exc.allowed else "parameter",
                                 "message": str(exc)}
        if exc.allowed:
            error["allowed"] = exc.allowed
        raise Problem(400, "Invalid query parameter", str(exc), [error]) from None
    fmt = MEDIA_FORMAT[media]
    if fmt == "json":
        return JSONResponse(result_document(name, columns, rows))
    text = format_table(columns, rows, fmt, name)
    return Response(text + "\n", media_type=f"{media}; charset=utf-8" if media.startswith("text/") else media)


@router.get(
    "/pooled",
    tags=["research"],
    summary="Random-effects pooled hazard ratio of comparable comparisons",
    description="A meta-analysis (statsmodels combine_effects, DerSimonian-Laird by default) of the log hazard ratios of the "
                "comparisons that share the endpoint, add a treatment of the intervention class to the same comparator, are in "
                "one setting and (by default) come from RCTs; one figure per study (intention-to-treat first). Returns the pooled HR, "
                "its 95% CI, tau², I², Q, the studies used with their weights and the figures left out with the reason. Too few or "
                "incomparable inputs are a 422 that says why.",
    responses={422: {"description": "the inputs are not comparable, or fewer than two remain: the reason and what was left out"}},
)
def pooled(store: StoreDep,
           endpoint: Optional[str] = Query(None, description="endpoint class, e.g. ProgressionFreeSurvival", max_length=200),
           intervention: Optional[str] = Query(None, description="treatment class the intervention arm adds, e.g. Chemotherapy", max_length=200),
           comparator: Optional[str] = Query(None, description="treatment class the comparator gets instead (default: add-on comparisons)", max_length=200),
           setting: Optional[str] = Query(None, description="Resectable, BorderlineResectable or Unresectable", max_length=200),
           design: str = Query("rct", pattern="^(rct|any)$", description="rct (default) or any"),
           figure: Optional[list[str]] = Query(None, description="pool exactly these hazard-ratio figures", max_length=50),
           method: str = Query("dl", pattern="^(" + "|".join(METHODS) + ")$", description="dl (DerSimonian-Laird) or pm (Paule-Mandel)"),
           ) -> dict[str, Any]:
    try:
        return pool(store, endpoint=endpoint, intervention=intervention, comparator=comparator, setting=setting,
                    randomised_only=design == "rct", figures=figure, method=method)
    except PoolingRefused as exc:
        raise Problem(422, "Not poolable", exc.reason, [{"field": "parameters", "rule": "comparable", "message": exc.reason}],
                      excluded=exc.excluded) from None
