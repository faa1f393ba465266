"""The ``/sparql`` routes as an ``APIRouter``, bound to a ``SparqlService``; what they promise a client is
``ENDPOINT_DESCRIPTION`` (also the OpenAPI description)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ..problems import problem_response
from . import page
from .description import serialize_description
from .errors import PoolBusy, QueryTimeout, Refusal, WorkerCrashed
from .formats import GRAPH_TYPES, HTML, HTML_TYPES, RESULT_TYPES, SD_TYPES, choose, content_type
from .protocol import parse_protocol_request
from ..negotiation import negotiate

if TYPE_CHECKING:  # pragma: no cover
    from .service import SparqlService

ENDPOINT_PATH = "/sparql"
ENDPOINT_DESCRIPTION = """``/sparql``: a read-only SPARQL 1.1 Protocol endpoint.

What a client can rely on (SPARQL 1.1 Protocol, section 2.1 "query operation"):

* ``GET /sparql?query=…``, ``POST`` with ``application/x-www-form-urlencoded``
  (``query=…`` in the body; ``default-graph-uri``/``named-graph-uri`` in the body
  or the URL) and ``POST`` with ``application/sparql-query`` (the query is the
  UTF-8 body; dataset parameters in the URL).
* ``default-graph-uri`` and ``named-graph-uri`` (each may repeat) replace the
  dataset: the default graph is the merge of the ``default-graph-uri`` graphs
  (empty if none is given) and the named graphs are exactly the
  ``named-graph-uri`` graphs (none if none is given); ``FROM``/``FROM NAMED`` in
  the query are then ignored, as the protocol requires. Without them a query's
  own ``FROM``/``FROM NAMED`` are honoured, and without those the default graph
  is the union of every graph (the ontology and the evidence graphs) and every
  named graph is available to ``GRAPH``.
* Relative IRIs in a query resolve against the endpoint URL.
* Answers: ``SELECT``/``ASK`` as ``application/sparql-results+json`` (default),
  ``application/sparql-results+xml``, ``text/csv`` or ``text/tab-separated-values``;
  ``CONSTRUCT``/``DESCRIBE`` as ``text/turtle`` (default), ``application/n-triples``,
  ``application/rdf+xml`` or ``application/ld+json``; chosen from ``Accept`` with
  q-values; ``406`` when nothing acceptable can be produced.
* Errors are JSON problem reports (``application/problem+json``):
  ``400`` no query, two queries, malformed query, an update, a ``SERVICE`` clause,
  a dataset IRI that is not an absolute IRI, a query over ``CRLM_KG_MAX_QUERY_BYTES``; ``405`` a method other than
  GET/POST; ``413`` a body over ``CRLM_KG_MAX_BODY_BYTES`` (default 1 MiB);
  ``414`` a GET query string over the same limit; ``415`` a POST body that is
  not form-encoded or ``application/sparql-query`` (including
  ``application/sparql-update``) or is not UTF-8; ``422`` a result over
  ``CRLM_KG_MAX_RESULTS`` rows or triples (default 10000) or over
  ``CRLM_KG_MAX_ANSWER_BYTES`` bytes (the result is
  **refused, never truncated**, so no client mistakes a partial answer for the
  whole one: add a ``LIMIT``); ``429`` (with ``Retry-After``) a client that already
  has ``CRLM_KG_QUERY_PER_CLIENT`` queries in flight; ``503`` a query that ran past
  ``CRLM_KG_QUERY_TIMEOUT`` seconds (default 5), or (with ``Retry-After``) found
  every worker busy for that long or ``CRLM_KG_QUERY_QUEUE`` queries already waiting.
* The endpoint is read-only in every spelling: an ``update`` parameter, an
  ``application/sparql-update`` body or an update operation in ``query`` is
  refused before anything runs, and queries run on copies of the dataset in
  worker processes that only ever call the query engine.
* ``SERVICE`` (federated query) is refused: Oxigraph would otherwise fetch the
  remote endpoint from the server (checked: it does).
* ``GET /sparql`` without a query answers a SPARQL 1.1 Service Description
  (Turtle by default, or N-Triples, RDF/XML, JSON-LD) or, for a browser
  (``Accept: text/html``), the YASGUI query editor served from
  ``/static/yasgui`` (installed from npm by ``scripts/bootstrap.sh``; a plain
  HTML form when it is missing). Nothing is loaded from a CDN.
"""


def endpoint_url(request: Request) -> str:
    return str(request.url.replace(query="", fragment=""))


def client_key(request: Request) -> str:
    """The address the per-client limit counts (behind the reverse proxy: the proxy's, unless it sets the client's)."""
    return request.client.host if request.client else "unknown"


def build_router(service: "SparqlService") -> APIRouter:
    settings = service.settings
    router = APIRouter(tags=["sparql"])

    async def sparql(request: Request) -> Response:
        try:
            parsed = await parse_protocol_request(request, settings.max_body_bytes)
            if parsed is None:
                return describe(request)
            with service.client_slot(client_key(request)):
                shape = await service.check(parsed.query)
                results_media, graph_media = choose(request.headers.get("accept"), shape)
                reply = await service.run({
                    "query": parsed.query,
                    "base_iri": endpoint_url(request),
                    "default_graphs": parsed.default_graphs,
                    "named_graphs": parsed.named_graphs,
                    "has_dataset": shape.has_dataset,
                    "results_media": results_media,
                    "graph_media": graph_media,
                })
        except Refusal as refusal:
            return refusal.response()
        except QueryTimeout:
            return problem_response(503, f"query exceeded the {settings.query_timeout:g} s limit",
                                    f"the query was stopped after {settings.query_timeout:g} s (CRLM_KG_QUERY_TIMEOUT); narrow it or add a LIMIT")
        except PoolBusy as busy:
            response = problem_response(503, "Query service busy", f"{busy or 'every query worker is busy'}; retry shortly")
            response.headers["Retry-After"] = "1"
            return response
        except WorkerCrashed:
            return problem_response(503, "Query too expensive", "the worker running this query died (out of memory, or a query nested or "
                                    "chained too deeply for the parser's stack); it has been replaced")
        if reply[0] == "ok":
            _, media, body = reply
            return Response(content=body, media_type=content_type(media), headers={"Vary": "Accept"})
        _, status, title, detail, rule = reply
        field = "accept" if status == 406 else "query"
        errors = [{"field": field, "rule": rule, "message": detail}] if 400 <= status < 500 else None
        return problem_response(status, title, detail, errors)

    def describe(request: Request) -> Response:
        endpoint = endpoint_url(request)
        media = negotiate(request.headers.get("accept"), SD_TYPES)
        if media is None:
            return problem_response(406, "Not acceptable", f"the service description is served as: {', '.join(SD_TYPES)}",
                                    [{"field": "accept", "rule": "media-type", "message": "no acceptable type"}])
        if media in HTML_TYPES:
            return HTMLResponse(page.browser_page(endpoint, settings), headers={"Vary": "Accept", "Content-Security-Policy": page.CSP})
        body = serialize_description(endpoint, service.store, media)
        return Response(content=body, media_type=content_type(media), headers={"Vary": "Accept"})

    async def method_not_allowed(request: Request) -> Response:
        response = problem_response(405, "Method not allowed", f"{request.method} is not a SPARQL 1.1 Protocol query operation; use GET or POST")
        response.headers["Allow"] = "GET, POST"
        return response

    async def yasgui_asset(path: str) -> Response:
        """The locally installed YASGUI files (``scripts/bootstrap.sh``); nothing outside its directory."""
        root = page.yasgui_dir().resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return problem_response(404, "Not found")
        return FileResponse(target)

    for method, extra in (("GET", _OPENAPI_GET), ("POST", _OPENAPI_POST)):
        router.add_api_route(
            ENDPOINT_PATH, sparql, methods=[method], name=f"sparql_{method.lower()}", operation_id=f"sparql_{method.lower()}",
            summary=f"SPARQL 1.1 Protocol query operation via {method} (read-only)", description=ENDPOINT_DESCRIPTION,
            response_class=Response, openapi_extra={**extra, "responses": _OPENAPI_RESPONSES},
        )
    # every other method (OPTIONS and TRACE too) gets 405 with the full Allow list; without this route
    # Starlette answers from the GET route alone, with "Allow: GET"
    router.add_api_route(ENDPOINT_PATH, method_not_allowed, methods=["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"], include_in_schema=False)
    router.add_api_route(page.YASGUI_PATH + "/{path:path}", yasgui_asset, methods=["GET"], include_in_schema=False)
    return router


_DATASET_PARAMETERS = [
    {"name": "default-graph-uri", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True,
     "description": "graphs whose merge is the default graph (replaces the union default and FROM)"},
    {"name": "named-graph-uri", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True,
     "description": "the named graphs (replaces FROM NAMED)"},
]
_OPENAPI_GET = {
    "parameters": [
        {"name": "query", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "the SPARQL query; without it the answer is the service description (or the query editor for a browser)"},
        *_DATASET_PARAMETERS,
    ],
}
_OPENAPI_POST = {
    "parameters": _DATASET_PARAMETERS,
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
                "query": {"type": "string"},
                "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                "named-graph-uri": {"type": "array", "items": {"type": "string"}},
            }, "required": ["query"]}},
            "application/sparql-query": {"schema": {"type": "string"}},
        },
    },
}
_OPENAPI_RESPONSES = {
    "200": {"description": "query results or the service description", "content": {m: {} for m in list(RESULT_TYPES) + list(GRAPH_TYPES) + [HTML]}},
    "400": {"description": "missing, duplicated or malformed query; update; SERVICE", "content": {"application/problem+json": {}}},
    "405": {"description": "method other than GET or POST", "content": {"application/problem+json": {}}},
    "406": {"description": "no acceptable result format", "content": {"application/problem+json": {}}},
    "413": {"description": "request body over CRLM_KG_MAX_BODY_BYTES", "content": {"application/problem+json": {}}},
    "414": {"description": "query string over CRLM_KG_MAX_BODY_BYTES", "content": {"application/problem+json": {}}},
    "415": {"description": "body neither form-encoded nor application/sparql-query, or not UTF-8", "content": {"application/problem+json": {}}},
    "422": {"description": "result over CRLM_KG_MAX_RESULTS rows or triples (refused, not truncated)", "content": {"application/problem+json": {}}},
    "503": {"description": "query over CRLM_KG_QUERY_TIMEOUT seconds, or every worker busy", "content": {"application/problem+json": {}}},
}
