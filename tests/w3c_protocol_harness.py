"""The W3C SPARQL 1.1 Protocol tests, run against this service in-process.

The manifest (``tests/w3c/protocol-manifest.ttl``, vendored from w3c/rdf-tests)
describes each test as HTTP requests (``ht:Request``: method, path, headers,
body and its character encoding) and expected responses (status class, result
format, boolean value). This module turns every entry into an executable
request + expectation and runs it with FastAPI's ``TestClient`` against an app
whose store holds the manifest's test graphs.

Which tests apply. A read-only endpoint implements the query operation, so
every ``query_*`` and ``bad_*`` test applies (the ``bad_update_*`` ones expect a
4xx, which a read-only endpoint must give). The ``update_*`` tests expect
updates to succeed, which this endpoint refuses by design; they are run as
*refusal checks* instead: each update request must get a 4xx and the graph
must be unchanged afterwards.

Manifest erratum. ``query_multiple_dataset`` percent-encodes the ``&`` and
``=`` between its two ``named-graph-uri`` parameters
(``…data1.rdf%26named-graph-uri%3Dhttp…``), which makes one parameter whose
value is not the IRI of either graph; the test's name and its expected
``true`` require the two graphs, so the harness sends the two parameters the
test means and reports that it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

HERE = Path(__file__).resolve().parent
W3C_DIR = HERE / "w3c"
MANIFEST = W3C_DIR / "protocol-manifest.ttl"
MANIFEST_BASE = "http://www.w3.org/2009/sparql/docs/tests/data-sparql11/protocol/manifest.ttl"

MF = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#"
HT = "http://www.w3.org/2011/http#"
CNT = "http://www.w3.org/2011/content#"
UT = "http://www.w3.org/2009/sparql/tests/test-update#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

ERRATA = {
    "query_multiple_dataset": (
        "named-graph-uri parameters joined by an encoded '&' (%26…%3D) sent as two parameters",
        lambda path: path.replace("%26named-graph-uri%3D", "&named-graph-uri="),
    ),
}

RESULT_MEDIA = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "application/json": ox.QueryResultsFormat.JSON,
}


@dataclass
class ProtocolRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    statuses: set[str]  # "2xx", "3xx", "4xx"
    expected_format: str | None = None  # boolean, tabular, RDF
    expected_boolean: bool | None = None
    expectation: str | None = None


@dataclass
class ProtocolTest:
    name: str
    title: str
    requests: list[ProtocolRequest]
    graphs: dict[str, Path] = field(default_factory=dict)  # graph IRI -> data file
    erratum: str | None = None

    @property
    def applicable(self) -> bool:
        return self.name.startswith(("query_", "bad_"))


@dataclass
class Outcome:
    test: ProtocolTest
    ok: bool
    message: str = ""


# --------------------------------------------------------------------------- manifest


def load_manifest(path: Path = MANIFEST) -> list[ProtocolTest]:
    """Every test of the manifest, in manifest order, as requests + expectations."""
    import rdflib
    from rdflib.collection import Collection

    g = rdflib.Graph()
    g.parse(path, format="turtle", publicID=MANIFEST_BASE)
    U = rdflib.URIRef
    manifest = next(g.subjects(U(RDF + "type"), U(MF + "Manifest")))
    entries = Collection(g, g.value(manifest, U(MF + "entries")))
    tests = []
    for entry in entries:
        name = str(entry).rsplit("#", 1)[-1]
        action = g.value(entry, U(MF + "action"))
        requests = []
        for req in Collection(g, g.value(action, U(HT + "requests"))):
            headers = {}
            header_list = g.value(req, U(HT + "headers"))
            if header_list is not None:
                for header in Collection(g, header_list):
                    headers[str(g.value(header, U(HT + "fieldName")))] = str(g.value(header, U(HT + "fieldValue")))
            body = None
            body_node = g.value(req, U(HT + "body"))
            if body_node is not None:
                chars = str(g.value(body_node, U(CNT + "chars")))
                encoding = str(g.value(body_node, U(CNT + "characterEncoding")) or "UTF-8")
                body = chars.encode("utf-16" if encoding.upper() == "UTF-16" else encoding)  # utf-16: with a BOM
            resp = g.value(req, U(HT + "resp"))
            statuses = {str(s).rsplit("StatusCode", 1)[-1] for s in g.objects(resp, U(MF + "expectedStatus"))}
            expected_boolean = g.value(resp, U(MF + "expectedBoolean"))
            expected_format = g.value(resp, U(MF + "expectedFormat"))
            expectation = g.value(resp, U(MF + "expectation"))
            requests.append(ProtocolRequest(
                method=str(g.value(req, U(HT + "methodName"))),
                path=str(g.value(req, U(HT + "absolutePath"))),
                headers=headers,
                body=body,
                statuses=statuses,
                expected_format=str(expected_format) if expected_format is not None else None,
                expected_boolean=bool(expected_boolean.toPython()) if expected_boolean is not None else None,
                expectation=str(expectation) if expectation is not None else None,
            ))
        graphs = {}
        for data in g.objects(entry, U(UT + "graphData")):
            file_iri = str(g.value(data, U(UT + "graph")))
            graphs[str(g.value(data, U(RDFS + "label")))] = W3C_DIR / file_iri.rsplit("/", 1)[-1]
        test = ProtocolTest(name, str(g.value(entry, U(MF + "name"))), requests, graphs)
        if name in ERRATA:
            note, fix = ERRATA[name]
            test.erratum = note
            for request in requests:
                request.path = fix(request.path)
        tests.append(test)
    return tests


def harness_store(tests: list[ProtocolTest]):
    """An EmbeddedStore holding every graph the manifest's tests name."""
    from crlm_kg.store import EmbeddedStore

    quads = []
    seen = set()
    for test in tests:
        for graph, path in test.graphs.items():
            if graph in seen:
                continue
            seen.add(graph)
            target = ox.NamedNode(graph)
            quads += [ox.Quad(t.subject, t.predicate, t.object, target) for t in ox.parse(path=str(path), format=ox.RdfFormat.N_TRIPLES)]
    return EmbeddedStore(quads)


# --------------------------------------------------------------------------- running


def harness_app(store):
    """The service reduced to what the protocol tests exercise (problem reports + the SPARQL
    routes), so the gate measures the endpoint even while another route module is broken."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from crlm_kg.api import problems
    from crlm_kg.api.sparql import SparqlService
    from crlm_kg.settings import Settings

    service = SparqlService(Settings(), store)

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        yield
        service.close()

    app = FastAPI(title="crlm-kg protocol harness", lifespan=lifespan)
    app.state.store = store
    app.state.sparql = service
    problems.install(app)
    app.include_router(service.router)
    return app


def _endpoint_path(path: str) -> str:
    """The manifest's ``/sparql/`` is the service endpoint: here ``/sparql``."""
    from crlm_kg.api.sparql import ENDPOINT_PATH

    if path.startswith("/sparql/"):
        return ENDPOINT_PATH + path[len("/sparql/"):]
    return path


def _status_ok(status: int, classes: set[str]) -> bool:
    return any(status // 100 == int(c[0]) for c in classes)


def check_response(request: ProtocolRequest, response: Any) -> str | None:
    """Why ``response`` does not meet ``request``'s expectation (``None`` when it does)."""
    if not _status_ok(response.status_code, request.statuses):
        return f"{request.method} {request.path}: status {response.status_code}, expected {'/'.join(sorted(request.statuses))}"
    if request.expected_format is None:
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if request.expected_format in ("boolean", "tabular"):
            fmt = RESULT_MEDIA.get(media)
            if fmt is None:
                return f"content type {media!r} is not a SPARQL results format"
            parsed = ox.parse_query_results(response.content, format=fmt)
            if request.expected_format == "boolean":
                if not isinstance(parsed, ox.QueryBoolean):
                    return "expected a boolean result"
                if request.expected_boolean is not None and bool(parsed) != request.expected_boolean:
                    return f"expected {str(request.expected_boolean).lower()}, got {str(bool(parsed)).lower()}"
            elif not isinstance(parsed, ox.QuerySolutions):
                return "expected a tabular (SELECT) result"
            else:
                list(parsed)
        elif request.expected_format == "RDF":
            fmt = ox.RdfFormat.from_media_type(media)
            if fmt is None:
                return f"content type {media!r} is not an RDF format"
            list(ox.parse(response.content, format=fmt))
    except SyntaxError as exc:
        return f"unparseable {media} answer: {exc}"
    return None


def _send(client, request: ProtocolRequest):
    return client.request(request.method, _endpoint_path(request.path), headers=request.headers, content=request.body)


def run_test(client, test: ProtocolTest) -> Outcome:
    """An applicable test: every request must meet its expectation."""
    for request in test.requests:
        problem = check_response(request, _send(client, request))
        if problem:
            return Outcome(test, False, problem)
    return Outcome(test, True, f"erratum applied: {test.erratum}" if test.erratum else "")


def _state(client) -> bytes:
    response = client.post(_endpoint_path("/sparql/"), content=b"CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } }",
                           headers={"content-type": "application/sparql-query", "accept": "application/n-triples"})
    if response.status_code != 200:
        return b"<unavailable>"
    # blank-node labels are scoped to one answer, so the comparison ignores them
    return b"\n".join(sorted(re.sub(rb"_:\S+", b"_:b", line) for line in response.content.splitlines()))


def run_refusal(client, test: ProtocolTest) -> Outcome:
    """An update test: each update request must be refused and change nothing."""
    before = _state(client)
    for request in test.requests:
        content_type = request.headers.get("content-type", "")
        is_update = "sparql-update" in content_type or (request.body or b"").startswith(b"update=")
        if not is_update:
            continue
        response = _send(client, request)
        if not 400 <= response.status_code < 500:
            return Outcome(test, False, f"update {request.method} {request.path} answered {response.status_code}, expected a 4xx refusal")
    after = _state(client)
    if before != after or before == b"<unavailable>":
        return Outcome(test, False, "the graph changed (or could not be read) after the refused update")
    return Outcome(test, True, "refused, graph unchanged")


def run_all(tests: list[ProtocolTest] | None = None) -> tuple[list[Outcome], list[Outcome]]:
    """(outcomes of the applicable tests, outcomes of the update-refusal checks)."""
    from fastapi.testclient import TestClient

    tests = tests if tests is not None else load_manifest()
    app = harness_app(harness_store(tests))
    with TestClient(app) as client:
        applicable = [run_test(client, t) for t in tests if t.applicable]
        refusals = [run_refusal(client, t) for t in tests if not t.applicable]
    return applicable, refusals


def protocol_gates():
    """``crlm-kg check``: the W3C protocol tests as quality gates."""
    from crlm_kg.gates import GateResult

    if not MANIFEST.is_file():
        return [GateResult("W3C SPARQL protocol tests", True, f"skipped: {MANIFEST} is missing", skipped=True)]
    applicable, refusals = run_all()
    passed = sum(o.ok for o in applicable)
    errata = [o.test.name for o in applicable if o.test.erratum]
    summary = f"{passed} of {len(applicable)} applicable W3C protocol tests pass"
    if errata:
        summary += f" ({len(errata)} with a manifest erratum corrected: {', '.join(errata)})"
    refused = sum(o.ok for o in refusals)
    return [
        GateResult("W3C SPARQL protocol tests", passed == len(applicable), summary,
                   [f"{o.test.name}: {o.message}" for o in applicable if not o.ok]),
        GateResult("SPARQL endpoint is read-only", refused == len(refusals),
                   f"{refused} of {len(refusals)} W3C update tests refused with the graph unchanged (update is not applicable to a read-only endpoint)",
                   [f"{o.test.name}: {o.message}" for o in refusals if not o.ok]),
    ]


if __name__ == "__main__":  # pragma: no cover
    for gate in protocol_gates():
        print(("PASS" if gate.ok else "FAIL"), gate.name, "-", gate.summary)
        for problem in gate.problems:
            print("   ", problem)
