"""Linked data: the service answers for its own IRIs.

``https://w3id.org/crlm-kg/X`` redirects (``deploy/w3id/.htaccess``) to ``/X`` here:

* ``/data/{name}``: a node of the evidence (a DESCRIBE: its triples and its blank nodes'),
* ``/ontology/{name}``: a term of the ontology (``…/ontology#name``),
* ``/context/patient.jsonld``: the JSON-LD context of the patient record,

each in Turtle, JSON-LD, RDF/XML or N-Triples by content negotiation, and plain JSON (the
browsing API's shape) for ``application/json``. ``?format=`` overrides ``Accept``.
"""

from __future__ import annotations

import re
from typing import Any

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response

from crlm_kg import paths
from crlm_kg.queries import plain
from crlm_kg.store import IRI, Store

from .deps import StoreDep
from .negotiation import negotiate
from .problems import Problem

RDF_FORMATS = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
}
FORMAT_NAMES = {"ttl": "text/turtle", "jsonld": "application/ld+json", "rdf": "application/rdf+xml", "owl": "application/rdf+xml",
                "nt": "application/n-triples", "json": "application/json"}
#: Turtle first: a client that says nothing (or */*) gets the form people read.
NODE_OFFERS = [*RDF_FORMATS, "application/json"]
CONTEXT_FILE = paths.VALIDATION_DIR / "patient-context.jsonld"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}$")

router = APIRouter(tags=["linked data"])


def choose_media(request: Request, offers: list[str]) -> str:
    """``?format=`` if given, else the ``Accept`` header negotiated over ``offers``; 400 or 406 otherwise."""
    name = request.query_params.get("format")
    if name is not None:
        media = FORMAT_NAMES.get(name)
        if media not in offers:
            allowed = ", ".join(k for k, v in FORMAT_NAMES.items() if v in offers)
            raise Problem(400, "Unknown format", f"format must be one of {allowed}",
                          [{"field": "format", "rule": "in", "message": f"one of {allowed}"}])
        return media
    media = negotiate(request.headers.get("accept"), offers)
    if media is None:
        raise Problem(406, "Not acceptable", f"this resource is served as {', '.join(offers)}")
    return media


def rdf_response(triples: list[ox.Triple], media: str, content_location: str | None = None) -> Response:
    body = ox.serialize(triples, format=RDF_FORMATS[media], prefixes=paths.PREFIXES if media == "text/turtle" else None)
    headers = {"Vary": "Accept"}
    if content_location:
        headers["Content-Location"] = content_location
    return Response(body, media_type=media, headers=headers)


def describe(store: Store, iri: str) -> list[ox.Triple]:
    """The node's triples and, recursively, those of its blank nodes (the engine's DESCRIBE)."""
    return store.construct(f"DESCRIBE <{iri}>")


def short_name(value: Any) -> Any:
    """An IRI of the graph's namespaces as its local name; any other value as plain JSON."""
    if isinstance(value, IRI):
        text = value.value
        for prefix in (paths.CRLMD, paths.CRLM):
            if text.startswith(prefix):
                return text[len(prefix):]
        return text
    return plain(value)


def node_json(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """(predicate, object) pairs as one JSON object keyed by the predicates' local names (repeated: a list)."""
    out: dict[str, Any] = {}
    for p, o in pairs:
        key = short_name(p) if isinstance(p, IRI) else str(p)
        key = key.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        value = short_name(o)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            if value not in out[key]:
                out[key].append(value)
        else:
            out[key] = value
    return out


def node_description(store: Store, iri: str) -> dict[str, Any]:
    """The node as plain JSON, in the browsing API's shape."""
    rows = store.select("SELECT ?p ?o WHERE { ?node ?p ?o }", {"node": IRI(iri)})
    return {"iri": iri, **node_json([(r["p"], r["o"]) for r in rows])}


def _node(request: Request, store: Store, namespace: str, name: str, what: str) -> Response:
    if not _NAME.match(name):
        raise Problem(404, f"No such {what}", f"{name!r} is not a {what} name",
                      [{"field": "name", "rule": "pattern", "message": "letters, digits, _ . -"}])
    iri = namespace + name
    media = choose_media(request, NODE_OFFERS)
    triples = describe(store, iri)
    if not any(t.subject == ox.NamedNode(iri) for t in triples):
        raise Problem(404, f"No such {what}", f"nothing in the graph is described as <{iri}>",
                      [{"field": "name", "rule": "known-node", "message": f"unknown {what} {name}"}])
    if media == "application/json":
        return _json(node_description(store, iri))
    return rdf_response(triples, media)


def _json(body: dict[str, Any]) -> Response:
    return JSONResponse(jsonable_encoder(body), headers={"Vary": "Accept"})


_NODE_RESPONSES = {
    200: {"content": {m: {} for m in NODE_OFFERS}},
    400: {"description": "an unknown format"},
    404: {"description": "the graph has nothing about this IRI"},
    406: {"description": "none of the offered formats is acceptable"},
}


@router.get("/data/{name}", summary="A node of the evidence graph, by its IRI (https://w3id.org/crlm-kg/data/{name})",
            responses=_NODE_RESPONSES)
def data_node(name: str, request: Request, store: StoreDep) -> Response:
    return _node(request, store, paths.CRLMD, name, "node")


@router.get("/ontology/{name}", summary="A term of the ontology, by its IRI (https://w3id.org/crlm-kg/ontology#{name})",
            responses=_NODE_RESPONSES)
def ontology_term(name: str, request: Request, store: StoreDep) -> Response:
    return _node(request, store, paths.CRLM, name, "ontology term")


@router.get("/context/patient.jsonld", summary="The JSON-LD context of the patient record, at its IRI",
            responses={200: {"content": {"application/ld+json": {}}}})
def patient_context() -> Response:
    return FileResponse(CONTEXT_FILE, media_type="application/ld+json", headers={"Access-Control-Allow-Origin": "*"})
