"""Pages for people: server-rendered HTML (Jinja2), readable without JavaScript.

A browser (``Accept: text/html``, or ``?format=html``) gets a page on the same IRIs as the data:
``/studies``, ``/studies/{id}``, ``/data/{name}``, ``/ontology/{name}``; every other client gets what
``browse`` and ``linked_data`` answer (JSON, Turtle…), unchanged: these routes come first and hand
anything that is not a page over to them. Pages of their own: ``/`` (the landing page), ``/terms``
(search over labels and synonyms), ``/endpoints/{name}`` (comparisons across studies, with a forest
plot) and ``/evidence/form`` (the evidence for one patient, from a form or a pasted JSON record).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser

from crlm_kg import paths, patients
from crlm_kg.store import IRI, Store

from . import browse, linked_data, page_views, privacy
from .deps import Body, LookupDep, SettingsDep, StoreDep, patient_limits
from .evidence_form import form_fields, form_values, grouped, record_from_form
from .forest import forest_svg
from .negotiation import negotiate
from .problems import Problem

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
#: Only the service itself: pages load nothing from elsewhere (and need no script at all).
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; script-src 'none'; frame-ancestors 'self'; form-action 'self'"
HTML = "text/html"

router = APIRouter(include_in_schema=False)  # the data routes these stand in front of document the paths


def wants_html(request: Request, offers: list[str]) -> bool:
    """``?format=html``, or an ``Accept`` that prefers HTML to every one of ``offers``."""
    name = request.query_params.get("format")
    if name is not None:
        return name == "html"
    return negotiate(request.headers.get("accept"), [*offers, HTML]) == HTML


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    version = request.app.state.data_version
    response = templates.TemplateResponse(request, template, {"data_version": version.label if version else None, **context},
                                          status_code=status)
    response.headers["Vary"] = "Accept"
    response.headers["Content-Security-Policy"] = CSP
    return response


def guarded(request: Request, build: Callable[[], Response]) -> Response:
    """The page ``build`` makes, or, when it raises a problem (no such study, bad filter), a page saying
    so with the same status: a person who followed a broken link reads why, not a JSON report."""
    try:
        return build()
    except Problem as problem:
        return page(request, "error.html", status=problem.status, problem=problem)


def link_for(iri: str) -> str | None:
    """The page of one of the graph's IRIs (None: not ours)."""
    if iri.startswith(paths.CRLMD):
        return "/data/" + iri[len(paths.CRLMD):]
    if iri.startswith(paths.CRLM):
        return "/ontology/" + iri[len(paths.CRLM):]
    return None


templates.env.globals["link_for"] = link_for


@router.get("/")
def home(request: Request, store: StoreDep) -> Response:
    counts = page_views.landing(store)
    if negotiate(request.headers.get("accept"), [HTML, "application/json"]) == "application/json":
        return JSONResponse({"service": request.app.title, "dataVersion": request.app.state.data_version.label, "counts": counts,
                             "links": {k: v for k, v, _ in PARTS}})
    return page(request, "home.html", counts=counts, parts=PARTS)


PARTS = [
    ("studies", "/studies", "Every curated study, with search and filters"),
    ("evidence", "/evidence/form", "The evidence for one patient: scores, cautions, recommendations, trials"),
    ("terms", "/terms", "Search the ontology's terms (labels and synonyms)"),
    ("endpoint", "/endpoints/OverallSurvival", "Overall-survival hazard ratios across studies (forest plot)"),
    ("ontology", "/ontology", "The ontology's full documentation (also Turtle, RDF/XML, JSON-LD)"),
    ("sparql", "/sparql", "SPARQL endpoint with a query editor"),
    ("docs", "/docs", "The HTTP API (Swagger UI)"),
    ("redoc", "/redoc", "The HTTP API (ReDoc)"),
    ("openapi", "/openapi.json", "The OpenAPI document"),
]


@router.get("/static/pages/{name}")
def stylesheet(name: str) -> Response:
    if name != "pages.css":
        raise Problem(404, "Not found")
    return FileResponse(HERE / "templates" / "pages.css", media_type="text/css")


@router.get("/studies")
def studies(request: Request, store: StoreDep, lookup: LookupDep) -> Any:
    if not wants_html(request, ["application/json"]):
        return browse.studies(store)
    rows = page_views.study_rows(store, lookup)
    chosen = {k: request.query_params.get(k, "").strip() for k in ("q", "design", "phase", "setting", "treatment", "source")}
    shown = page_views.filter_studies(rows, chosen)
    return page(request, "studies.html", rows=shown, total=len(rows), chosen=chosen, options=page_views.facet_options(rows))


@router.get("/studies/{study_id}")
def study(study_id: str, request: Request, store: StoreDep, lookup: LookupDep) -> Response:
    if not wants_html(request, browse.STUDY_OFFERS):
        return browse.study(study_id, request, store)
    return guarded(request, lambda: study_page(request, store, lookup, browse._find_study(store, study_id)))


def study_page(request: Request, store: Store, lookup: Any, name: str) -> Response:
    study = page_views.study_detail(store, lookup, name)
    for group in study["endpoints"]:
        group["forests"] = _forests(group["rows"], group["endpoint"], with_study=False)
    return page(request, "study.html", study=study)


def _forests(rows: list[dict[str, Any]], endpoint: str, with_study: bool) -> list[str]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in page_views.ratio_rows(rows):
        by_kind.setdefault(row["comparisonLabel"], []).append(row)
    return [{"svg": forest_svg(kind_rows, f"{endpoint}: {kind}", f"{kind} (log scale)", with_study),
             "caption": f"{endpoint}: {kind} with its confidence interval, for the group the table names first against its "
                        f"comparator (below 1: fewer events in that group); dashed line: no difference. The numbers are in the table."}
            for kind, kind_rows in sorted(by_kind.items())]


@router.get("/data/{name}")
def data_node(name: str, request: Request, store: StoreDep, lookup: LookupDep) -> Response:
    if not wants_html(request, linked_data.NODE_OFFERS):
        return linked_data.data_node(name, request, store)
    return guarded(request, lambda: node_page(request, store, lookup, name))


def node_page(request: Request, store: Store, lookup: Any, name: str) -> Response:
    if paths.CRLMD + name in lookup.structure.studies:
        return study_page(request, store, lookup, name)
    rows = store.select(NODE, {"node": IRI(paths.CRLMD + name)}) if linked_data._NAME.match(name) else []
    if not rows:
        raise Problem(404, "No such node", f"nothing in the graph is described as <{paths.CRLMD + name}>")
    facts = [{"property": r.get("plabel") or r["p"].value.rsplit("#", 1)[-1].rsplit("/", 1)[-1], "propertyLink": link_for(r["p"].value),
              "value": r.get("olabel") or (linked_data.short_name(r["o"]) if isinstance(r["o"], IRI) else r["o"]),
              "link": link_for(r["o"].value) if isinstance(r["o"], IRI) else None} for r in rows if not str(r["o"]).startswith("_:")]
    label = next((f["value"] for f in facts if f["property"] == "label"), name)
    return page(request, "node.html", name=name, label=label, iri=paths.CRLMD + name, facts=facts)


NODE = """
SELECT ?p ?plabel ?o ?olabel WHERE {
  ?node ?p ?o . FILTER NOT EXISTS { GRAPH <%s> { ?node ?p ?o } }
  OPTIONAL { ?p rdfs:label ?plabel } OPTIONAL { ?o rdfs:label ?olabel }
} ORDER BY ?plabel""" % paths.GRAPH_INFERRED


@router.get("/ontology/{name}")
def term(name: str, request: Request, store: StoreDep) -> Response:
    if not wants_html(request, linked_data.NODE_OFFERS):
        return linked_data.ontology_term(name, request, store)
    return guarded(request, lambda: term_page(request, store, name))


def term_page(request: Request, store: Store, name: str) -> Response:
    found = page_views.term_detail(store, name) if linked_data._NAME.match(name) else None
    if found is None:
        raise Problem(404, "No such ontology term", f"nothing in the graph is described as <{paths.CRLM + name}>")
    forests = []
    if any(p["id"] in ("Endpoint",) for p in found["parents"]) or found["usages"] and any(u["how"] == "figure" for u in found["usages"]):
        forests = _forests(page_views.endpoint_results(store, request.app.state.lookup, name), found["label"], with_study=True)
    return page(request, "term.html", term=found, forests=forests)


@router.get("/terms")
def terms(request: Request, store: StoreDep, q: str = "") -> Response:
    query = q.strip()[:100]
    return page(request, "terms.html", q=query, results=page_views.search_terms(store, query) if query else [])


@router.get("/endpoints/{name}")
def endpoint(name: str, request: Request, store: StoreDep, lookup: LookupDep, treatment: str = "") -> Response:
    if wants_html(request, ["application/json"]):
        return guarded(request, lambda: endpoint_answer(name, request, store, lookup, treatment))
    return endpoint_answer(name, request, store, lookup, treatment)


def endpoint_answer(name: str, request: Request, store: Store, lookup: Any, treatment: str) -> Response:
    if not (linked_data._NAME.match(name) and paths.CRLM + name in lookup.structure.subclasses_of(paths.CRLM + "Endpoint")):
        raise Problem(404, "No such endpoint", f"{name} is not an endpoint of the ontology; GET /endpoints lists them",
                      [{"field": "name", "rule": "known-endpoint", "message": f"unknown endpoint {name}"}])
    if treatment and not linked_data._NAME.match(treatment):
        raise Problem(422, "Unknown treatment", "treatment is an ontology term's local name, e.g. PerioperativeChemotherapy",
                      [{"field": "treatment", "rule": "pattern", "message": "letters, digits, _ . -"}])
    rows = page_views.endpoint_results(store, lookup, name, treatment or None)
    label = next((r["label"] for r in store.select("SELECT ?label WHERE { ?t rdfs:label ?label }", {"t": IRI(paths.CRLM + name)})), name)
    if not wants_html(request, ["application/json"]):
        return JSONResponse({"endpoint": name, "label": label, "treatment": treatment or None, "results": rows}, headers={"Vary": "Accept"})
    treatments = browse._terms(store, "Treatment")
    return page(request, "endpoint.html", name=name, label=label, rows=rows, treatment=treatment, treatments=treatments,
                forests=_forests(rows, label, with_study=True))


# --------------------------------------------------------------------------- the evidence page


@router.get("/evidence/form")
def evidence_form(request: Request, store: StoreDep) -> Response:
    fields = form_fields(store)
    return page(request, "evidence.html", groups=grouped(fields), values={}, errors={}, pasted="", answer=None)


async def _submitted_form(request: Request, body: bytes) -> tuple[dict[str, list[str]], str | None]:
    """The form's fields, and the text of an uploaded record file if one was chosen. The page
    posts multipart (it has a file input); a plain urlencoded post works too. The body is
    already read within its limit (``Body``), so the multipart parser reads that copy."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True), None
    async def already_read():
        yield body

    fields: dict[str, list[str]] = {}
    uploaded = None
    try:
        form = await MultiPartParser(request.headers, already_read(), max_files=1, max_fields=256).parse()
    except MultiPartException as exc:
        raise Problem(400, "The form could not be read", exc.message,
                      errors=[{"field": "(body)", "rule": "multipart", "message": exc.message}]) from None
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(name, []).append(value)
            elif name == "recordFile" and value.filename:
                uploaded = (await value.read()).decode("utf-8", "replace").strip() or None
    finally:
        await form.close()
    return fields, uploaded


@router.post("/evidence/form")
async def evidence_answer(request: Request, body: Body, store: StoreDep, lookup: LookupDep, settings: SettingsDep) -> Response:
    privacy.record_received("/evidence/form", body, settings)
    form, uploaded = await _submitted_form(request, body)
    fields = form_fields(store)
    pasted = uploaded if uploaded is not None else (form.get("record") or [""])[0].strip()
    record: Any = None
    errors: dict[str, list[str]] = {}
    if pasted:
        try:
            record = json.loads(pasted)
        except json.JSONDecodeError as exc:
            errors["record"] = [f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]
    else:
        record = record_from_form(form, fields)
    answer = None
    if record is not None:
        document = json.dumps(record).encode("utf-8")
        report, records = await run_in_threadpool(patients.parse_and_validate_fast, document, None, "application/json", patient_limits(settings, 1))
        for violation in report.violations:
            errors.setdefault(violation.field if not pasted else "record", []).append(
                violation.message if not pasted else f"{violation.field}: {violation.message}")
        if report.conforms and len(records) == 1:
            answer = await run_in_threadpool(lookup.evaluate, records[0])
    values = form_values(record) if isinstance(record, dict) and not pasted else {}
    return page(request, "evidence.html", status=200 if answer else 422, groups=grouped(fields), values=values, errors=errors,
                pasted=pasted, answer=answer)
