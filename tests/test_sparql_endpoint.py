"""The /sparql endpoint, driven through the ASGI TestClient (plus one real uvicorn).

A small store of a few quads in three named graphs covers the protocol
behaviour; a few tests run on the repository graph (without exact counts:
curators add data files all the time).
"""

from __future__ import annotations

import http.server
import csv
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient

from crlm_kg.api import sparql
from crlm_kg.api.app import create_app
from crlm_kg.api.negotiation import negotiate
from crlm_kg.api.sparql import description
from crlm_kg.api.sparql import page as sparql_page
from crlm_kg import paths
from crlm_kg.settings import Settings
from crlm_kg.store import EmbeddedStore, RemoteStore
from tests.support import scaled, wait_until

ROOT = Path(__file__).resolve().parent.parent
EX = "http://example.org/"
G_ONTO = paths.GRAPH_ONTOLOGY
G_EVID = paths.GRAPH_EVIDENCE
G_OTHER = EX + "graph/other"
TIMEOUT = scaled(1.5)  # the workers' limit; longer on a machine with CRLM_KG_TIME_FACTOR > 1
MAX_RESULTS = 20
MAX_BODY = 4096
JSON_RESULTS = "application/sparql-results+json"
# 7 unconstrained patterns over ~30 triples: 30^7 solutions to count, far beyond any time limit
RUNAWAY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n1 ?o . ?p ?q ?r . ?s ?t ?u }"


def n(local: str) -> ox.NamedNode:
    return ox.NamedNode(EX + local)


def small_quads() -> list[ox.Quad]:
    onto, evid, other = ox.NamedNode(G_ONTO), ox.NamedNode(G_EVID), ox.NamedNode(G_OTHER)
    label = ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label")
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    quads = [
        ox.Quad(n("Study"), rdf_type, ox.NamedNode("http://www.w3.org/2002/07/owl#Class"), onto),
        ox.Quad(n("Study"), label, ox.Literal("Study", language="en"), onto),
        ox.Quad(n("Trial"), label, ox.Literal("Trial, \"quoted\"\tand tabbed", language="en"), onto),
        ox.Quad(n("epoc"), rdf_type, n("Study"), evid),
        ox.Quad(n("epoc"), n("patients"), ox.Literal("364", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")), evid),
        ox.Quad(n("epoc"), n("arm"), ox.BlankNode("arm1"), evid),
        ox.Quad(ox.BlankNode("arm1"), label, ox.Literal("FOLFOX4"), evid),
        ox.Quad(n("other"), label, ox.Literal("only in the other graph"), other),
    ]
    # filler so that result caps and runaway queries have something to chew on
    quads += [ox.Quad(n(f"item{i}"), n("index"), ox.Literal(str(i)), other) for i in range(25)]
    return quads


@pytest.fixture(scope="module")
def small_store() -> EmbeddedStore:
    return EmbeddedStore(small_quads())


@pytest.fixture(scope="module")
def client(small_store):
    app = create_app(Settings(query_timeout=TIMEOUT, max_results=MAX_RESULTS, max_body_bytes=MAX_BODY, query_workers=2), small_store)
    with TestClient(app) as c:
        yield c


def select(client, query: str, **params) -> list[dict]:
    response = client.get("/sparql", params={"query": query, **params})
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"]


def values(rows: list[dict], var: str) -> set[str]:
    return {row[var]["value"] for row in rows if var in row}


def assert_problem(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    text = (body["title"] + " " + body.get("detail", "")).lower()
    for word in words:
        assert word.lower() in text, (word, body)
    return body


# --------------------------------------------------------------------------- the three ways to send a query


def test_get_query_answers_json_results_by_default(client):
    response = client.get("/sparql", params={"query": "SELECT ?s WHERE { ?s a <http://example.org/Study> }"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON_RESULTS)
    assert response.json()["results"]["bindings"] == [{"s": {"type": "uri", "value": EX + "epoc"}}]


def test_post_form_encoded(client):
    response = client.post("/sparql", data={"query": "ASK { <http://example.org/epoc> ?p ?o }"})
    assert response.status_code == 200
    assert response.json() == {"head": {}, "boolean": True}


def test_post_direct_sparql_query_body(client):
    response = client.post("/sparql", content="SELECT ?o WHERE { <http://example.org/epoc> <http://example.org/patients> ?o }".encode(),
                           headers={"content-type": "application/sparql-query"})
    assert response.status_code == 200
    row = response.json()["results"]["bindings"][0]["o"]
    assert row == {"type": "literal", "value": "364", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}


def test_post_direct_with_charset_utf8_and_non_ascii_text(client):
    query = 'ASK { FILTER("café" = "café") }'
    response = client.post("/sparql", content=query.encode("utf-8"), headers={"content-type": "application/sparql-query; charset=UTF-8"})
    assert response.status_code == 200 and response.json()["boolean"] is True


# --------------------------------------------------------------------------- dataset


def test_default_graph_is_the_union_of_every_graph(client):
    rows = select(client, "SELECT DISTINCT ?s WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l }")
    assert {EX + "Study", EX + "Trial", EX + "other"} <= values(rows, "s")


def test_named_graphs_are_available_to_graph_patterns(client):
    rows = select(client, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert values(rows, "g") == {G_ONTO, G_EVID, G_OTHER}


def test_default_graph_uri_replaces_the_union(client):
    query = "SELECT DISTINCT ?s WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l }"
    rows = select(client, query, **{"default-graph-uri": G_OTHER})
    assert values(rows, "s") == {EX + "other"}
    response = client.get("/sparql", params=[("query", query), ("default-graph-uri", G_OTHER), ("default-graph-uri", G_ONTO)])
    assert values(response.json()["results"]["bindings"], "s") == {EX + "other", EX + "Study", EX + "Trial"}


def test_default_graph_uri_alone_leaves_no_named_graphs(client):
    rows = select(client, "SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", **{"default-graph-uri": G_OTHER})
    assert rows == []


def test_named_graph_uri_restricts_graph_patterns_and_empties_the_default(client):
    response = client.post("/sparql?named-graph-uri=" + G_EVID, content=b"SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
                           headers={"content-type": "application/sparql-query"})
    assert values(response.json()["results"]["bindings"], "g") == {G_EVID}
    rows = select(client, "SELECT * WHERE { ?s ?p ?o }", **{"named-graph-uri": G_EVID})
    assert rows == []


def test_dataset_parameters_in_a_form_body(client):
    response = client.post("/sparql", data={"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", "named-graph-uri": [G_ONTO, G_OTHER]})
    assert values(response.json()["results"]["bindings"], "g") == {G_ONTO, G_OTHER}


def test_from_clause_is_honoured_without_protocol_dataset(client):
    rows = select(client, f"SELECT DISTINCT ?s FROM <{G_ONTO}> WHERE {{ ?s ?p ?o }}")
    assert values(rows, "s") == {EX + "Study", EX + "Trial"}


def test_protocol_dataset_overrides_from_clause(client):
    rows = select(client, f"SELECT DISTINCT ?s FROM <{G_ONTO}> WHERE {{ ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l }}",
                  **{"default-graph-uri": G_OTHER})
    assert values(rows, "s") == {EX + "other"}


def test_relative_iris_resolve_against_the_endpoint(client):
    rows = select(client, "SELECT ?x WHERE { BIND(<thing> AS ?x) }")
    assert rows[0]["x"]["value"] == "http://testserver/thing"


def test_graph_iri_must_be_absolute(client):
    response = client.get("/sparql", params={"query": "ASK {}", "default-graph-uri": "not an iri"})
    assert_problem(response, 400, "graph IRI")


# --------------------------------------------------------------------------- bad requests


def test_two_query_parameters_are_refused(client):
    response = client.get("/sparql", params=[("query", "ASK {}"), ("query", "SELECT * {}")])
    body = assert_problem(response, 400, "more than one query")
    assert body["errors"][0]["field"] == "query"


def test_query_in_body_and_url_is_refused(client):
    response = client.post("/sparql?query=ASK%20%7B%7D", content=b"ASK {}", headers={"content-type": "application/sparql-query"})
    assert_problem(response, 400, "more than one query")


@pytest.mark.parametrize("how", ["form", "get-with-dataset", "empty", "blank-direct"])
def test_missing_query_is_refused(client, how):
    if how == "form":
        response = client.post("/sparql", data={"default-graph-uri": G_ONTO})
    elif how == "get-with-dataset":
        response = client.get("/sparql", params={"default-graph-uri": G_ONTO})
    elif how == "empty":
        response = client.get("/sparql", params={"query": ""})
    else:
        response = client.post("/sparql", content=b"  \n", headers={"content-type": "application/sparql-query"})
    assert_problem(response, 400, "missing query")


@pytest.mark.parametrize("query", ["ASK {", "SELECT ?x WHERE { ?x ?y }", "SELEKT * {}", "SELECT * { ?s ?p ?o } LIMIT -1"])
def test_malformed_query_is_a_400_problem(client, query):
    body = assert_problem(client.get("/sparql", params={"query": query}), 400)
    assert body["title"] == "Malformed query" and "syntax error" in body["detail"].lower(), body


def test_other_methods_are_405_with_allow(client):
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.request(method, "/sparql?query=ASK%20%7B%7D")
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json", "application/sparql-results+json"])
def test_post_with_another_media_type_is_415(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/sparql", content=b"ASK {}", headers=headers)
    assert_problem(response, 415, "media type")


def test_non_utf8_bodies_are_refused(client):
    utf16 = client.post("/sparql", content="ASK {}".encode("utf-16"), headers={"content-type": "application/sparql-query; charset=UTF-16"})
    assert_problem(utf16, 415, "UTF-16")
    latin1 = client.post("/sparql", content='ASK { FILTER("caf\xe9" = "x") }'.encode("latin-1"), headers={"content-type": "application/sparql-query"})
    assert_problem(latin1, 415, "UTF-8")
    form = client.post("/sparql", content=b"query=ASK%20%7B%E9%7D", headers={"content-type": "application/x-www-form-urlencoded"})
    assert_problem(form, 400, "UTF-8")


# --------------------------------------------------------------------------- read-only


def graph_state(client) -> list:
    """What the workers see (per-graph counts) and what the server holds (the dump)."""
    response = client.post("/sparql", content=b"SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g",
                           headers={"content-type": "application/sparql-query", "accept": "text/tab-separated-values"})
    assert response.status_code == 200
    return [response.text, client.app.state.store.dump()]


UPDATES = [
    "INSERT DATA { <http://example.org/x> <http://example.org/y> 1 }",
    "DELETE DATA { <http://example.org/epoc> a <http://example.org/Study> }",
    "DELETE WHERE { ?s ?p ?o }",
    "LOAD <http://example.org/data.ttl>",
    "CLEAR ALL",
    "DROP GRAPH <https://w3id.org/crlm-kg/graph/evidence>",
    "CREATE GRAPH <http://example.org/new>",
    "ADD DEFAULT TO <http://example.org/g>",
    "MOVE DEFAULT TO <http://example.org/g>",
    "COPY DEFAULT TO <http://example.org/g>",
    "WITH <http://example.org/g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    "PREFIX ex: <http://example.org/>\n# a comment\ninsert data { ex:a ex:b ex:c }",
    "BASE <http://example.org/> PREFIX : <x#> DELETE WHERE { ?s ?p ?o }",
]


@pytest.mark.parametrize("update", UPDATES)
def test_updates_in_every_spelling_are_refused_and_change_nothing(client, small_store, update):
    before = graph_state(client)
    size = small_store.triple_count()
    attempts = [
        client.get("/sparql", params={"query": update}),
        client.post("/sparql", data={"query": update}),
        client.post("/sparql", content=update.encode(), headers={"content-type": "application/sparql-query"}),
        client.get("/sparql", params={"update": update}),
        client.post("/sparql", data={"update": update}),
    ]
    for response in attempts:
        assert_problem(response, 400, "update")
    direct = client.post("/sparql", content=update.encode(), headers={"content-type": "application/sparql-update"})
    assert_problem(direct, 415, "update")
    assert graph_state(client) == before
    assert small_store.triple_count() == size


def test_update_keywords_elsewhere_do_not_trip_the_check(client):
    rows = select(client, 'SELECT ?insert WHERE { BIND("DELETE DATA { }" AS ?insert) } # CLEAR ALL')
    assert rows[0]["insert"]["value"] == "DELETE DATA { }"


# --------------------------------------------------------------------------- federation


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A SPARQL endpoint that records each request (path, then body) and answers one row."""

    hits: list[str] = []
    bodies: list[bytes] = []
    ANSWER = b'{"head":{"vars":["x"]},"results":{"bindings":[{"x":{"type":"literal","value":"leak"}}]}}'

    def do_GET(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).bodies.append(body)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("content-type", JSON_RESULTS)
        self.send_header("content-length", str(len(self.ANSWER)))
        self.end_headers()
        self.wfile.write(self.ANSWER)

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture()
def remote_recorder():
    _Recorder.hits, _Recorder.bodies = [], []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sparql", _Recorder.hits
    server.shutdown()


@pytest.mark.parametrize("template", [
    "SELECT * WHERE {{ SERVICE <{url}> {{ ?x ?y ?z }} }}",
    "SELECT * WHERE {{ service silent <{url}> {{ ?x ?y ?z }} }}",
    "SELECT * WHERE {{ BIND(<{url}> AS ?e) SERVICE ?e {{ ?x ?y ?z }} }}",
    "SELECT * WHERE {{ ?a ?b ?c OPTIONAL {{ SeRvIcE <{url}> {{ ?x ?y ?z }} }} }}",
    "SELECT * WHERE {{ \\u0053ERVICE <{url}> {{ ?x ?y ?z }} }}",
])
def test_service_is_refused_and_nothing_is_fetched(client, remote_recorder, template):
    url, hits = remote_recorder
    response = client.get("/sparql", params={"query": template.format(url=url)})
    assert response.status_code == 400
    assert_nothing_fetched(url, hits)


def assert_nothing_fetched(url: str, hits: list[str]) -> None:
    """The recorder serves one request at a time, in order: once a marker request sent now has
    been recorded, any request the server had started before it has been recorded too."""
    assert httpx.get(url + "?marker", timeout=scaled(10)).status_code == 200
    wait_until(lambda: "/sparql?marker" in hits, 10, "the recorder to see the marker request")
    assert hits == ["/sparql?marker"]


def test_the_word_service_elsewhere_is_fine(client):
    rows = select(client, 'PREFIX service: <http://example.org/service#> SELECT ?service WHERE { BIND("SERVICE" AS ?service) '
                          'FILTER(?service != service:x) FILTER(?service != <http://example.org/SERVICE>) }')
    assert rows[0]["service"]["value"] == "SERVICE"


def test_sanity_pyoxigraph_would_federate(remote_recorder):
    """Why the check exists: Oxigraph itself fetches SERVICE endpoints (it POSTs the inner
    pattern and joins the answer in). If a pyoxigraph upgrade stops federating, this fails:
    the refusal is then belt-and-braces, and this test should say so instead."""
    url, hits = remote_recorder
    rows = list(ox.Store().query(f"SELECT ?x WHERE {{ SERVICE <{url}> {{ ?x ?y ?z }} }}"))
    assert [row["x"].value for row in rows] == ["leak"]
    assert hits == ["/sparql"]
    assert b"?x ?y ?z" in _Recorder.bodies[0]


# --------------------------------------------------------------------------- content negotiation

SELECT_Q = "SELECT ?s ?l WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?l } ORDER BY ?s"


@pytest.mark.parametrize("accept,media", [
    (None, JSON_RESULTS),
    ("*/*", JSON_RESULTS),
    ("application/sparql-results+json", JSON_RESULTS),
    ("application/sparql-results+xml", "application/sparql-results+xml"),
    ("text/csv", "text/csv"),
    ("text/tab-separated-values", "text/tab-separated-values"),
    ("application/json", "application/json"),
    ("text/csv;q=0.5, application/sparql-results+xml", "application/sparql-results+xml"),
    ("application/sparql-results+json;q=0.1, text/tab-separated-values;q=0.9", "text/tab-separated-values"),
    ("application/sparql-results+json;q=0, */*;q=0.5", "application/sparql-results+xml"),
    ("text/*;q=0.9, application/sparql-results+xml;q=0.2", "text/csv"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON_RESULTS),
])
def test_select_negotiation(client, accept, media):
    headers = {"accept": accept} if accept else {}
    response = client.get("/sparql", params={"query": SELECT_Q}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media
    assert "accept" in response.headers.get("vary", "").lower()
    fmt = {"text/csv": ox.QueryResultsFormat.CSV, "text/tab-separated-values": ox.QueryResultsFormat.TSV,
           "application/sparql-results+xml": ox.QueryResultsFormat.XML}.get(media, ox.QueryResultsFormat.JSON)
    if media == "text/csv":  # lossy: pyoxigraph does not read it back
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert 'Trial, "quoted"\tand tabbed' in {row["l"] for row in rows}
    else:
        rows = list(ox.parse_query_results(response.content, format=fmt))
    assert len(rows) == 4  # Study, Trial, other and the blank-node arm (epoc has no label)
    if media == "text/tab-separated-values":
        assert '"Trial, \\"quoted\\"\\tand tabbed"@en' in response.text


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "application/sparql-results+xml", "text/csv", "text/tab-separated-values"])
def test_ask_formats(client, accept):
    response = client.get("/sparql", params={"query": "ASK { ?s a <http://example.org/Study> }"}, headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == accept
    if accept.startswith("application/"):
        fmt = ox.QueryResultsFormat.JSON if accept.endswith("json") else ox.QueryResultsFormat.XML
        assert bool(ox.parse_query_results(response.content, format=fmt)) is True
    else:
        assert response.text.strip() == "true"


CONSTRUCT_Q = "CONSTRUCT { ?s ?p ?o } WHERE { GRAPH <https://w3id.org/crlm-kg/graph/evidence> { ?s ?p ?o } }"


@pytest.mark.parametrize("accept,media", [
    (None, "text/turtle"),
    ("*/*", "text/turtle"),
    ("text/turtle", "text/turtle"),
    ("application/n-triples", "application/n-triples"),
    ("application/rdf+xml", "application/rdf+xml"),
    ("application/ld+json", "application/ld+json"),
    ("application/rdf+xml;q=0.4, application/n-triples;q=0.6, text/turtle;q=0.5", "application/n-triples"),
    ("application/sparql-results+json, application/*;q=0.1", "application/n-triples"),
])
def test_construct_negotiation(client, accept, media):
    headers = {"accept": accept} if accept else {}
    response = client.get("/sparql", params={"query": CONSTRUCT_Q}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media
    graph = rdflib.Graph()
    graph.parse(data=response.content, format={"text/turtle": "turtle", "application/n-triples": "nt",
                                               "application/rdf+xml": "xml", "application/ld+json": "json-ld"}[media])
    assert len(graph) == 4
    assert (rdflib.URIRef(EX + "epoc"), rdflib.RDF.type, rdflib.URIRef(EX + "Study")) in graph


def test_describe_is_rdf(client):
    response = client.get("/sparql", params={"query": "DESCRIBE <http://example.org/epoc>"}, headers={"accept": "application/n-triples"})
    assert response.status_code == 200
    triples = list(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
    assert any(t.predicate.value == EX + "patients" for t in triples)


@pytest.mark.parametrize("query,accept", [
    (SELECT_Q, "image/png"),
    (SELECT_Q, "text/turtle"),
    (CONSTRUCT_Q, "application/sparql-results+json"),
    ("ASK {}", "application/sparql-results+json;q=0, application/sparql-results+xml;q=0, text/*;q=0, application/json;q=0"),
])
def test_nothing_acceptable_is_406(client, query, accept):
    body = assert_problem(client.get("/sparql", params={"query": query}, headers={"accept": accept}), 406, "acceptable")
    assert body["errors"][0]["field"] == "accept"


def test_negotiate_unit():
    offers = ["a/x", "a/y", "b/z"]
    assert negotiate(None, offers) == "a/x"
    assert negotiate("", offers) == "a/x"
    assert negotiate("b/z", offers) == "b/z"
    assert negotiate("a/*;q=0.5, b/z;q=0.4", offers) == "a/x"
    assert negotiate("a/*;q=0.5, a/y;q=0.9", offers) == "a/y"
    assert negotiate("*/*;q=0.1, a/x;q=0", offers) == "a/y"
    assert negotiate("c/*", offers) is None
    assert negotiate("garbage", offers) == "a/x"
    assert negotiate("A/Y", offers) == "a/y"


# --------------------------------------------------------------------------- protection


def test_result_cap_refuses_rather_than_truncates(client):
    big = client.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    body = assert_problem(big, 422, "result too large", str(MAX_RESULTS), "LIMIT")
    assert body["errors"][0]["rule"] == "max-results"
    ok = client.get("/sparql", params={"query": f"SELECT * WHERE {{ ?s ?p ?o }} LIMIT {MAX_RESULTS}"}, headers={"accept": "text/csv"})
    assert ok.status_code == 200
    assert len(ok.text.strip().splitlines()) == MAX_RESULTS + 1
    construct = client.get("/sparql", params={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"})
    assert_problem(construct, 422, "triples")


def test_body_limit_is_413(client):
    padding = "#" + "x" * MAX_BODY + "\nASK {}"
    response = client.post("/sparql", content=padding.encode(), headers={"content-type": "application/sparql-query"})
    assert_problem(response, 413, str(MAX_BODY))

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"#" + b"x" * 1000 + b"\n"

    response = client.post("/sparql", content=chunks(), headers={"content-type": "application/sparql-query"})
    assert_problem(response, 413)
    long_get = client.get("/sparql", params={"query": padding})
    assert long_get.status_code == 414


@pytest.mark.slow
def test_runaway_query_is_stopped_and_others_are_served(client):
    engine = client.app.state.sparql
    respawns = engine.status()["respawns"]

    def runaway():
        started = time.monotonic()
        return client.get("/sparql", params={"query": RUNAWAY}), time.monotonic() - started

    with ThreadPoolExecutor(2) as executor:
        slow = executor.submit(runaway)
        time.sleep(scaled(0.3))  # the runaway query has reached a worker
        quick_started = time.monotonic()
        quick = client.get("/sparql", params={"query": "ASK { ?s a <http://example.org/Study> }"})
        quick_elapsed = time.monotonic() - quick_started
        response, elapsed = slow.result(timeout=30)
    assert quick.status_code == 200 and quick.json()["boolean"] is True
    assert quick_elapsed < TIMEOUT, "another client waited for the runaway query"
    assert_problem(response, 503, f"query exceeded the {TIMEOUT:g} s limit")
    assert TIMEOUT <= elapsed < TIMEOUT + scaled(5)
    assert engine.status()["respawns"] == respawns + 1
    # the killed worker is replaced: the pool is back to full strength and answers
    wait_until(lambda: engine.status()["workers_alive"] == 2, 20, "the pool to replace the killed worker")
    assert select(client, "SELECT ?s WHERE { ?s a <http://example.org/Study> }")


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("CRLM_KG_QUERY_TIMEOUT", "2.5")
    monkeypatch.setenv("CRLM_KG_MAX_RESULTS", "7")
    monkeypatch.setenv("CRLM_KG_MAX_BODY_BYTES", "2048")
    settings = Settings()
    assert (settings.query_timeout, settings.max_results, settings.max_body_bytes) == (2.5, 7, 2048)
    monkeypatch.delenv("CRLM_KG_QUERY_TIMEOUT")
    monkeypatch.delenv("CRLM_KG_MAX_RESULTS")
    monkeypatch.delenv("CRLM_KG_MAX_BODY_BYTES")
    settings = Settings()
    assert (settings.query_timeout, settings.max_results, settings.max_body_bytes) == (5.0, 10_000, 1 << 20)
    monkeypatch.setenv("CRLM_KG_QUERY_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="query_timeout"):
        Settings()


def test_inspect_query_unit():
    shape = sparql.inspect_query("PREFIX s: <http://x/SERVICE#> # SERVICE in a comment\nSELECT * FROM <http://g> { ?service s:SERVICE 'SERVICE' }")
    assert (shape.form, shape.update, shape.service, shape.has_dataset) == ("SELECT", None, False, True)
    assert sparql.inspect_query("construct where { ?s ?p ?o }").form == "CONSTRUCT"
    assert sparql.inspect_query('ASK { FILTER(?a < 3 && ?b > 2) SERVICE <x> {} }').service
    assert sparql.inspect_query('SELECT * { ?a ?b """multi\nline "quoted" """ } ').form == "SELECT"
    assert sparql.inspect_query("base <x> prefix : <y> drop all").update == "DROP"
    assert not sparql.inspect_query("SELECT ?from WHERE { ?s <http://x/from> ?from }").has_dataset


# --------------------------------------------------------------------------- service description and browser page


def test_service_description_is_turtle_by_default(client):
    response = client.get("/sparql")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/turtle")
    graph = rdflib.Graph().parse(data=response.text, format="turtle")
    SD = rdflib.Namespace(description.SD)
    service = rdflib.URIRef("http://testserver/sparql")
    assert (service, rdflib.RDF.type, SD.Service) in graph
    assert (service, SD.endpoint, service) in graph
    assert (service, SD.supportedLanguage, SD.SPARQL11Query) in graph
    assert (service, SD.feature, SD.UnionDefaultGraph) in graph
    formats = {str(o) for o in graph.objects(service, SD.resultFormat)}
    assert "http://www.w3.org/ns/formats/SPARQL_Results_JSON" in formats and "http://www.w3.org/ns/formats/Turtle" in formats
    names = {str(o) for o in graph.objects(None, SD.name)}
    assert names == {G_ONTO, G_EVID, G_OTHER, paths.GRAPH_INFERRED}
    inferred = next(graph.subjects(SD.name, rdflib.URIRef(paths.GRAPH_INFERRED)))
    assert "RDFS" in str(graph.value(inferred, rdflib.DCTERMS.description))


@pytest.mark.parametrize("accept,fmt", [("application/ld+json", "json-ld"), ("application/rdf+xml", "xml"), ("application/n-triples", "nt"), ("*/*", "turtle")])
def test_service_description_in_other_rdf_formats(client, accept, fmt):
    response = client.get("/sparql", headers={"accept": accept})
    assert response.status_code == 200
    graph = rdflib.Graph().parse(data=response.content, format=fmt)
    assert (None, rdflib.RDF.type, rdflib.URIRef(description.SD + "Service")) in graph


def test_browser_gets_the_query_editor(client):
    response = client.get("/sparql", headers={"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert "cdn" not in page.lower() and "https://" not in page.split("</header>")[-1].split("PREFIX")[0]
    if (sparql_page.yasgui_dir() / "yasgui.min.js").is_file():
        assert "/static/yasgui/yasgui.min.js" in page and "new Yasgui(" in page
        assert '"endpoint": "http://testserver/sparql"' in page
        asset = client.get("/static/yasgui/yasgui.min.js")
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        assert client.get("/static/yasgui/yasgui.min.css").status_code == 200
    else:
        assert '<textarea name="query"' in page


def test_plain_form_when_yasgui_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(sparql_page, "yasgui_dir", lambda: tmp_path / "missing")
    html = sparql_page.browser_page("http://testserver/sparql", Settings())
    assert '<form method="post" action="http://testserver/sparql">' in html and "<textarea" in html


def test_service_description_406(client):
    assert_problem(client.get("/sparql", headers={"accept": "image/png"}), 406)


def test_openapi_documents_the_endpoint(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/sparql"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"query", "default-graph-uri", "named-graph-uri"}
    assert "application/sparql-query" in spec["paths"]["/sparql"]["post"]["requestBody"]["content"]


# --------------------------------------------------------------------------- the repository graph


@pytest.fixture(scope="module")
def repo_client():
    store = EmbeddedStore.from_repository()
    with TestClient(create_app(store=store)) as c:
        yield c, store


def test_repository_graph_union_and_named_graphs(repo_client):
    client, store = repo_client
    rows = select(client, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert int(rows[0]["n"]["value"]) == store.triple_count() > 0
    per_graph = select(client, "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
    counts = {row["g"]["value"]: int(row["n"]["value"]) for row in per_graph}
    assert counts[G_ONTO] > 0 and counts[G_EVID] > 0
    assert sum(counts.values()) == store.triple_count()


def test_repository_ontology_classes_and_restriction_to_evidence(repo_client):
    """default-graph-uri restricts the query to that graph: the endpoint's counts of owl:Class
    subjects are those of the store's union and of its evidence graph, which differ."""
    client, store = repo_client
    count = "PREFIX owl: <http://www.w3.org/2002/07/owl#> SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?c a owl:Class }"
    # the store's own answer, from its quads (not through the endpoint under test)
    quads = ox.parse(store.dump(), format=ox.RdfFormat.N_QUADS)
    owl_class = ox.NamedNode("http://www.w3.org/2002/07/owl#Class")
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    typed = [q for q in quads if q.predicate == rdf_type and q.object == owl_class]
    in_union = {q.subject for q in typed}
    in_evidence = {q.subject for q in typed if q.graph_name == ox.NamedNode(G_EVID)}
    assert len(in_union) > len(in_evidence)  # the ontology graph declares the classes
    assert int(select(client, count)[0]["n"]["value"]) == len(in_union)
    assert int(select(client, count, **{"default-graph-uri": G_EVID})[0]["n"]["value"]) == len(in_evidence)
    described = client.get("/sparql", params={"query": f"CONSTRUCT WHERE {{ <{paths.ONTOLOGY_IRI}> ?p ?o }}"})
    assert described.status_code == 200 and paths.ONTOLOGY_IRI in described.text


def test_repository_service_description_lists_both_graphs(repo_client):
    client, store = repo_client
    graph = rdflib.Graph().parse(data=client.get("/sparql").text, format="turtle")
    names = {str(o) for o in graph.objects(None, rdflib.URIRef(description.SD + "name"))}
    assert {G_ONTO, G_EVID} <= names


# --------------------------------------------------------------------------- a real server (and the remote-store proxy)


@pytest.mark.slow
def test_real_uvicorn_server(live_server):
    endpoint = live_server + "/sparql"
    with httpx.Client(timeout=30) as http:
        response = http.get(endpoint, params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"})
        assert response.status_code == 200 and int(response.json()["results"]["bindings"][0]["n"]["value"]) > 0
        response = http.post(endpoint, content=b"ASK { GRAPH <https://w3id.org/crlm-kg/graph/ontology> { ?s ?p ?o } }",
                             headers={"content-type": "application/sparql-query", "accept": "application/sparql-results+xml"})
        assert response.status_code == 200 and "<boolean>true</boolean>" in response.text
        assert http.post(endpoint, data={"update": "CLEAR ALL"}).status_code == 400
        sd = http.get(endpoint)
        assert sd.headers["content-type"].startswith("text/turtle") and "sd:Service" in sd.text

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as http:
            import asyncio

            runaway = asyncio.create_task(http.get(endpoint, params={"query": RUNAWAY}))
            await asyncio.sleep(scaled(0.3))  # the runaway query has reached a worker
            started = time.monotonic()
            quick = await asyncio.gather(*[http.get(endpoint, params={"query": "ASK { ?s ?p ?o }"}) for _ in range(8)])
            quick_elapsed = time.monotonic() - started
            slow = await runaway
            return quick, quick_elapsed, slow

    import asyncio

    quick, quick_elapsed, slow = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in quick)
    assert quick_elapsed < scaled(2)
    assert slow.status_code == 503 and slow.json()["title"] == "query exceeded the 2 s limit"


@pytest.mark.slow
def test_remote_store_is_proxied_with_the_same_checks(live_server, remote_recorder):
    store = RemoteStore(live_server + "/sparql")
    app = create_app(Settings(max_results=5, query_timeout=3), store)
    with TestClient(app) as client:
        rows = select(client, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } LIMIT 5")
        assert {G_ONTO, G_EVID} <= values(rows, "g")
        csv = client.get("/sparql", params={"query": "SELECT ?s WHERE { ?s ?p ?o } LIMIT 3"}, headers={"accept": "text/csv"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv") and len(csv.text.strip().splitlines()) == 4
        ttl = client.get("/sparql", params={"query": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } LIMIT 3"})
        assert ttl.status_code == 200 and ttl.headers["content-type"].startswith("text/turtle")
        assert len(rdflib.Graph().parse(data=ttl.text, format="turtle")) == 3
        restricted = select(client, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", **{"named-graph-uri": G_ONTO})
        assert values(restricted, "g") == {G_ONTO}
        assert_problem(client.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 50"}), 422, "result too large")
        assert_problem(client.get("/sparql", params={"query": "ASK {"}), 400)
        assert_problem(client.post("/sparql", data={"query": "CLEAR ALL"}), 400, "update")
        url, hits = remote_recorder
        assert_problem(client.get("/sparql", params={"query": f"SELECT * {{ SERVICE <{url}> {{ ?s ?p ?o }} }}"}), 400, "SERVICE")
        assert_nothing_fetched(url, hits)
        timed_out = client.get("/sparql", params={"query": RUNAWAY})
        assert timed_out.status_code == 503 and "limit" in timed_out.json()["title"]
