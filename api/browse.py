"""Browsing: studies, treatments, endpoints and the ontology itself (the named queries are in ``research``)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Optional

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from crlm_kg import paths
from crlm_kg.store import IRI, Store

from .deps import StoreDep
from .linked_data import RDF_FORMATS, choose_media, node_json, rdf_response, short_name
from .negotiation import negotiate
from .problems import Problem

ONTOLOGY_FORMATS = {"ttl": "text/turtle", "owl": "application/rdf+xml", "rdf": "application/rdf+xml", "jsonld": "application/ld+json", "html": "text/html"}
_SLUG = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,120}$")


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class StudySummary(Loose):
    id: str
    label: Optional[str] = None
    design: Optional[str] = None
    setting: Optional[str] = None


class TermInfo(Loose):
    id: str
    label: Optional[str] = None
    parent: Optional[str] = None
    definition: Optional[str] = None


STUDIES = """
SELECT ?study ?label ?design ?setting WHERE {
  ?study a ?d . ?d rdfs:subClassOf* crlm:Study ; rdfs:label ?design .
  FILTER NOT EXISTS { ?study a ?sub . ?sub rdfs:subClassOf+ ?d . FILTER(?sub != ?d) }
  OPTIONAL { ?study rdfs:label ?label }
  OPTIONAL { ?study crlm:studySetting/rdfs:label ?setting }
} ORDER BY ?label"""

# a study's own (asserted) triples: the inferred graph would add every superclass as a type
STUDY_FACTS = "SELECT ?p ?o WHERE { ?study ?p ?o FILTER NOT EXISTS { GRAPH <%s> { ?study ?p ?o } } }" % paths.GRAPH_INFERRED

# criteria through an explicit ?e (here and in STUDY_GRAPH), not the path hasEligibility/hasMember*: the same per
# the SPARQL spec, but Virtuoso missed criteria of a study with several eligibility nodes (Brouquet2011TSH)
STUDY_PARTS = """
SELECT ?kind ?x ?p ?o WHERE {
  { ?x crlm:armOf ?study . BIND("arms" AS ?kind) }
  UNION { ?x crlm:ofStudy ?study . BIND("outcomes" AS ?kind) }
  UNION { ?study crlm:hasEligibility ?e . ?e crlm:hasMember* ?x . FILTER EXISTS { ?x a/rdfs:subClassOf* crlm:EligibilityCriterion } BIND("criteria" AS ?kind) }
  UNION { ?study crlm:reportedIn ?x . BIND("publications" AS ?kind) }
  ?x ?p ?o FILTER NOT EXISTS { GRAPH <%s> { ?x ?p ?o } }
}""" % paths.GRAPH_INFERRED

TERMS = """
SELECT ?term ?label ?parent ?definition WHERE {
  ?term rdfs:subClassOf+ ?root .
  OPTIONAL { ?term rdfs:label ?label }
  OPTIONAL { ?term rdfs:subClassOf ?parent FILTER(isIRI(?parent)) }
  OPTIONAL { ?term skos:definition ?definition }
} ORDER BY ?label"""


router = APIRouter()


@router.get("/studies", tags=["browse"], summary="Every curated study", response_model=list[StudySummary])
def studies(store: StoreDep) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in store.select(STUDIES):
        sid = short_name(row["study"])
        seen.setdefault(sid, {"id": sid, "label": row.get("label"), "design": row.get("design"), "setting": row.get("setting")})
    return list(seen.values())


STUDY_BY_REGISTRY_ID = "SELECT DISTINCT ?study WHERE { ?study crlm:registryId ?id ; a/rdfs:subClassOf* crlm:Study }"

STUDY_GRAPH = """
CONSTRUCT { ?study ?p ?o . ?x ?xp ?xo } WHERE {
  { ?study ?p ?o }
  UNION { ?x crlm:armOf ?study . ?x ?xp ?xo }
  UNION { ?x crlm:ofStudy ?study . ?x ?xp ?xo }
  UNION { ?study crlm:hasEligibility ?e . ?e crlm:hasMember* ?x . ?x ?xp ?xo }
  UNION { ?study crlm:reportedIn ?x . ?x ?xp ?xo }
}"""

STUDY_OFFERS = ["application/json", *RDF_FORMATS]
_REGISTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,60}$")


def _find_study(store: Store, study_id: str) -> str:
    """The study's local name, from its own id or from a verified registry id (NCT…, ISRCTN…, EudraCT)."""
    if not (_SLUG.match(study_id) or _REGISTRY_ID.match(study_id)):
        raise Problem(404, "No such study", "study ids are letters, digits and _; registry ids letters, digits and - (GET /studies lists them)",
                      [{"field": "study_id", "rule": "pattern", "message": "must match ^[A-Za-z][A-Za-z0-9_]*$ or a registry id"}])
    if _SLUG.match(study_id) and store.ask(f"ASK {{ <{paths.CRLMD + study_id}> a/rdfs:subClassOf* crlm:Study }}"):
        return study_id
    if _REGISTRY_ID.match(study_id):
        found = sorted(short_name(r["study"]) for r in store.select(STUDY_BY_REGISTRY_ID, {"id": study_id}))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:  # one registry id, two curated studies: say so rather than pick one
            raise Problem(409, "Ambiguous registry id", f"{study_id} is the registry id of {', '.join(found)}",
                          [{"field": "study_id", "rule": "unique-registry-id", "message": ", ".join(found)}])
    raise Problem(404, "No such study", f"{study_id} is neither a curated study nor a verified registry id; GET /studies lists them",
                  [{"field": "study_id", "rule": "known-study", "message": f"unknown study {study_id}"}])


@router.get(
    "/studies/{study_id}",
    tags=["browse"],
    summary="One study with its arms, criteria, outcomes and sources, by its id or a registry id (NCT…)",
    description="JSON by default; Turtle, JSON-LD, RDF/XML or N-Triples by content negotiation (or ?format=ttl|jsonld|rdf|nt). "
    "A registry id answers with the study it identifies (Content-Location names it).",
    responses={200: {"content": {m: {} for m in STUDY_OFFERS}}, 404: {"description": "no such study"},
               406: {"description": "none of the offered formats is acceptable"}},
)
def study(study_id: str, request: Request, store: StoreDep) -> Response:
    media = choose_media(request, STUDY_OFFERS)
    name = _find_study(store, study_id)
    location = f"/studies/{name}" if name != study_id else None
    iri = IRI(paths.CRLMD + name)
    if media != "application/json":
        return rdf_response(store.construct(STUDY_GRAPH, {"study": iri}), media, location)
    facts = [(r["p"], r["o"]) for r in store.select(STUDY_FACTS, {"study": iri})]
    result = {"id": name, **node_json(facts)}
    parts: dict[str, dict[str, list]] = {}
    for row in store.select(STUDY_PARTS, {"study": iri}):
        parts.setdefault(row["kind"], {}).setdefault(short_name(row["x"]), []).append((row["p"], row["o"]))
    for kind in ("publications", "arms", "criteria", "outcomes"):
        result[kind] = [{"id": node, **node_json(pairs)} for node, pairs in sorted(parts.get(kind, {}).items())]
    headers = {"Vary": "Accept", **({"Content-Location": location} if location else {})}
    return JSONResponse(jsonable_encoder(result), headers=headers)


def _terms(store: Store, root: str) -> list[dict[str, Any]]:
    rows = store.select(TERMS, {"root": IRI(paths.CRLM + root)})
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        tid = short_name(row["term"])
        seen.setdefault(tid, {"id": tid, "label": row.get("label"), "parent": short_name(row["parent"]) if "parent" in row else None,
                              "definition": row.get("definition")})
    return list(seen.values())


@router.get("/treatments", tags=["browse"], summary="The treatment taxonomy", response_model=list[TermInfo])
def treatments(store: StoreDep) -> list[dict[str, Any]]:
    return _terms(store, "Treatment")


@router.get("/endpoints", tags=["browse"], summary="The endpoint taxonomy", response_model=list[TermInfo])
def endpoints(store: StoreDep) -> list[dict[str, Any]]:
    return _terms(store, "Endpoint")


@router.get(
    "/ontology",
    tags=["ontology"],
    summary="The ontology: Turtle, RDF/XML, JSON-LD or HTML documentation by content negotiation",
    responses={200: {"content": {"text/turtle": {}, "application/rdf+xml": {}, "application/ld+json": {}, "text/html": {}}},
               400: {"description": "an unknown format"},
               406: {"description": "none of the offered formats is acceptable"}},
    openapi_extra={"parameters": [{"name": "format", "in": "query", "required": False,
                                   "description": "overrides Accept: ttl, owl, rdf, jsonld or html",
                                   "schema": {"type": "string", "enum": list(ONTOLOGY_FORMATS)}}]},
)
def ontology(request: Request) -> Response:
    # read by hand, so that the OpenAPI document declares the one enum parameter of openapi_extra
    format = request.query_params.get("format")
    offered = ONTOLOGY_FORMATS
    if format is not None:
        if format not in offered:
            raise Problem(400, "Unknown format", f"format must be one of {', '.join(offered)}",
                          [{"field": "format", "rule": "in", "message": f"one of {', '.join(offered)}"}])
        media = offered[format]
    else:
        media = negotiate(request.headers.get("accept"), ["text/turtle", "application/rdf+xml", "application/ld+json", "text/html"])
        if media is None:
            raise Problem(406, "Not acceptable", "the ontology is served as text/turtle, application/rdf+xml, application/ld+json or text/html")
    return _ontology_response(media)


@lru_cache(maxsize=8)
def _ontology_bytes(media: str) -> bytes:
    if media == "text/turtle":
        return paths.ONTOLOGY_TTL.read_bytes()
    from crlm_kg.ontology import load_graph

    graph = load_graph()
    if media == "application/rdf+xml":
        return graph.serialize(format="xml").encode("utf-8")
    return graph.serialize(format="json-ld").encode("utf-8")


def _ontology_response(media: str) -> Response:
    if media == "text/html":
        if not paths.ONTOLOGY_DOCS.exists():
            from crlm_kg.ontology import write_docs

            try:
                write_docs()
            except Exception:
                raise Problem(503, "Documentation not built", "run `crlm-kg build` to generate the ontology documentation") from None
        return FileResponse(paths.ONTOLOGY_DOCS, media_type="text/html")
    return Response(_ontology_bytes(media), media_type=media)
