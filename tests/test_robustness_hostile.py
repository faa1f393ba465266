"""Hostile input: injection, updates in the spellings test_sparql_endpoint.py does not
cover, queries that would run for minutes, oversized and deeply nested bodies on every
POST route, federation, and what reaches the logs.

Everything runs on the repository graph; at the end of the module the parent's canonical
fingerprint is unchanged, and so is the digest each SPARQL worker computes from its own copy
(the copy every /sparql request, hostile or not, is answered from).
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from crlm_kg.api import sparql
from crlm_kg.api.app import create_app
from crlm_kg.api.deps import get_settings
from crlm_kg import patients
from crlm_kg.queries import QueryLibrary
from crlm_kg.settings import Settings
from tests.support import ROOT, repository_digest, running_server, scaled, wait_until, worker_digest

# the hostile-input regression suite starts its own servers and workers: make test runs it, make test-fast leaves it out
pytestmark = pytest.mark.slow

# The workers' limit, which the runaway queries reach: long enough that the other clients'
# requests (up to 2.5 s each on a loaded 2-core machine) are clearly shorter.
TIMEOUT = scaled(4.0)
WORKERS = 2
RECORD = {"id": "p-hostile", "age": 64, "ecog": 1, "liverMetastases": {"count": 3, "largestDiameterMm": 42, "resectability": "resectable"},
          "molecular": {"ras": "wild-type"}}
# quotes, IRI and group delimiters, newlines, comments, escapes, SPARQL keywords
HOSTILE = [
    '"', "'", '" } ; DROP ALL ; #', "x> <y", "a\nb", "}", "} UNION { ?s ?p ?o }", '"""', "\\u0022) } #", "?s ?p ?o",
    "crlm:Study> } INSERT DATA { <a:b> <a:c> <a:d> } #", "<http://evil.example/x>", "\x00", "é€😀", "'; DELETE WHERE { ?s ?p ?o } #",
]


@pytest.fixture(scope="module")
def client(repo_store):
    app = create_app(Settings(query_timeout=TIMEOUT, query_workers=WORKERS, sparql_url=None), repo_store)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def patient_client(repo_store):
    """One worker with a generous limit, for legal queries that take seconds to plan (5000
    UNIONs: 2 s on an idle machine, 6 s under load), where a timeout would hide the regression."""
    app = create_app(Settings(query_timeout=scaled(30), query_workers=1, sparql_url=None), repo_store)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def fingerprint_before(repo_store):
    return repo_store.fingerprint()


@pytest.fixture(scope="module", autouse=True)
def workers_before(client):
    """What the workers answer from, before the first hostile request of the module."""
    return worker_digest(client, WORKERS)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text
    return response.json()


# --------------------------------------------------------------------------- injection


def _parametrised_queries():
    library = QueryLibrary.load()
    return [(q.name, p.name, p.type) for q in library.all() for p in q.parameters]


BENIGN = {"string": "no-such-text-zzz", "iri": "NoSuchTermZzz", "entity": "NoSuchEntityZzz"}


@pytest.mark.parametrize("name,param,kind", _parametrised_queries())
def test_named_query_parameters_are_values_never_query_text(client, fingerprint_before, name, param, kind):
    library = QueryLibrary.load()
    required = {p.name: p.example for p in library.get(name).parameters if not p.optional and p.name != param}
    baseline = client.get(f"/queries/{name}", params={**required, param: BENIGN.get(kind, "0")})
    for value in HOSTILE:
        response = client.get(f"/queries/{name}", params={**required, param: value})
        assert response.status_code in (200, 400), (value, response.text[:300])
        if response.status_code == 400:
            assert problem(response, 400)["errors"][0]["field"] == param
        else:  # a string bound as a value matches nothing more than any unknown value does
            assert kind == "string"
            assert response.json()["rows"] == baseline.json()["rows"], value


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN", "1e999999"])
def test_non_finite_decimal_parameters_are_refused(client, value):
    """Regression: NaN and Infinity were bound as "NaN"^^xsd:decimal and answered with rows."""
    body = problem(client.get("/queries/trials-meeting-criterion", params={"characteristic": "age", "value": value}), 400)
    assert body["errors"][0]["field"] == "value"


def test_decimal_with_an_exponent_is_bound_as_a_plain_decimal(client):
    """Regression: 1e2 was bound as the ill-typed "1E+2"^^xsd:decimal."""
    exponent = client.get("/queries/trials-meeting-criterion", params={"characteristic": "age", "value": "8e1"})
    plain = client.get("/queries/trials-meeting-criterion", params={"characteristic": "age", "value": "80"})
    assert exponent.status_code == plain.status_code == 200
    assert exponent.json()["rows"] == plain.json()["rows"] and plain.json()["rows"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_patient_ids_are_refused_before_any_iri_is_built(client, value):
    body = problem(client.post("/evidence", json={**RECORD, "id": value}), 422)
    assert "id" in {e["field"] for e in body["errors"]}


@pytest.mark.parametrize("path", ["sex", "molecular.ras", "liverMetastases.resectability", "age", "liverMetastases.largestDiameterMm"])
@pytest.mark.parametrize("value", HOSTILE[:8])
def test_hostile_patient_field_values_are_named_and_change_nothing(client, path, value):
    nest, _, term = path.rpartition(".")
    record = json.loads(json.dumps(RECORD))
    (record.setdefault(nest, {}) if nest else record)[term] = value
    body = problem(client.post("/evidence", json=record), 422)
    assert path in {e["field"] for e in body["errors"]}
    assert "trials" not in body and "derived" not in body  # nothing was evaluated


def test_hostile_literals_in_turtle_records(client):
    for value in HOSTILE[:8]:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        turtle = (f'@prefix crlm: <https://w3id.org/crlm-kg/ontology#> .\n'
                  f'<https://w3id.org/crlm-kg/patient/p1> a crlm:Patient ; crlm:age "{escaped}" .\n')
        response = client.post("/evidence", content=turtle.encode(), headers={"content-type": "text/turtle"})
        assert "age" in {e["field"] for e in problem(response, 422)["errors"]}


# --------------------------------------------------------------------------- read-only (spellings test_sparql_endpoint.py does not cover)

INSERT = "INSERT DATA { <http://example.org/a> <http://example.org/b> <http://example.org/c> }"


def _update_attempts(client):
    form = {"content-type": "application/x-www-form-urlencoded"}
    direct = {"content-type": "application/sparql-query"}
    yield client.post("/sparql?update=" + urllib.parse.quote(INSERT), content=b"query=ASK%7B%7D", headers=form)  # update in the URL of a form POST
    yield client.post("/sparql?update=" + urllib.parse.quote(INSERT), content=b"ASK {}", headers=direct)
    yield client.post("/sparql", content=urllib.parse.urlencode({"query": "ASK {}", "using-graph-uri": "http://example.org/g"}).encode(), headers=form)
    yield client.post("/sparql", content=urllib.parse.urlencode({"update": INSERT, "using-named-graph-uri": "http://example.org/g"}).encode(), headers=form)
    yield client.post("/sparql", content=INSERT.encode(), headers={"content-type": "application/sparql-update; charset=utf-8"})
    yield client.post("/sparql", content=INSERT.encode(), headers={"content-type": "APPLICATION/SPARQL-UPDATE"})
    yield client.post("/sparql", files={"update": (None, INSERT)})  # multipart/form-data
    yield client.post("/sparql", files={"query": (None, INSERT)})
    for text in [
        "ASK {} ; " + INSERT,  # a query followed by an update operation
        INSERT + " ; ASK {}",
        "\\u0049NSERT DATA { <http://example.org/a> <http://example.org/b> 1 }",  # \\u escape of the keyword
        "\\U00000044ELETE WHERE { ?s ?p ?o }",
        "#comment\n  PREFIX a: <http://example.org/>\n\tInSeRt\nDATA { a:a a:b a:c }",
        "\ufeff" + INSERT,
        "DELETE{?s ?p ?o}WHERE{?s ?p ?o}",
        "LOAD SILENT <http://example.org/data.ttl> INTO GRAPH <http://example.org/g>",
        "CLEAR SILENT DEFAULT",
    ]:
        yield client.get("/sparql", params={"query": text})
        yield client.post("/sparql", content=text.encode(), headers=direct)


def test_updates_in_further_spellings_are_refused_and_change_nothing(client, repo_store, fingerprint_before):
    for response in _update_attempts(client):
        assert 400 <= response.status_code < 500, (response.request.url, response.text[:300])
        assert "Traceback" not in response.text
    assert repo_store.fingerprint() == fingerprint_before
    ask = client.get("/sparql", params={"query": "ASK { <http://example.org/a> ?p ?o }"})
    assert ask.json()["boolean"] is False


# --------------------------------------------------------------------------- runaway queries

CROSS_JOIN = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
PATH_EXPLOSION = "SELECT (COUNT(*) AS ?n) WHERE { ?x (<http://example.org/none>|!<http://example.org/none>)* ?y . ?y (^!<http://example.org/none>)* ?z }"


@pytest.mark.slow
def test_runaway_queries_are_cut_while_other_clients_are_served(client):
    engine = client.app.state.sparql
    respawns = engine.status()["respawns"]

    def timed(fn):
        started = time.monotonic()
        response = fn()
        return response, time.monotonic() - started

    with ThreadPoolExecutor(4) as executor:
        slow = [executor.submit(timed, lambda q=q: client.get("/sparql", params={"query": q})) for q in (CROSS_JOIN, PATH_EXPLOSION)]
        time.sleep(scaled(0.3))  # both workers are now busy with runaway queries
        others = [
            timed(lambda: client.get("/health")),
            timed(lambda: client.post("/evidence", json=RECORD)),
            timed(lambda: client.get("/queries/studies-by-design", params={"design": "RandomisedControlledTrial"})),
        ]
        results = [f.result(timeout=30) for f in slow]
    for response, elapsed in others:
        assert response.status_code == 200, response.text[:300]
        assert elapsed < TIMEOUT, f"{response.request.url} waited {elapsed:.1f} s, as long as the runaway queries"
    for response, elapsed in results:
        body = problem(response, 503)
        assert f"exceeded the {TIMEOUT:g} s limit" in body["title"] and "CRLM_KG_QUERY_TIMEOUT" in body["detail"]
        assert TIMEOUT <= elapsed < TIMEOUT + scaled(5)
    assert engine.status()["respawns"] == respawns + 2
    wait_until(lambda: engine.status()["workers_alive"] == WORKERS, 30, "the pool to replace both killed workers")
    assert client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"}).json()["boolean"] is True


@pytest.mark.parametrize("query", [
    "ASK {" + "{" * 20000 + "}" * 20001,
    "ASK { FILTER(" + "(" * 50000 + "1" + ")" * 50000 + ") }",
    "SELECT * WHERE {" + " OPTIONAL {" * 3000 + " ?s ?p ?o" + " }" * 3001,
])
def test_deeply_nested_queries_are_refused_without_killing_a_worker(client, query):
    """Regression: thousands of nested groups overflowed the parser's stack in the worker,
    which died (503 "out of memory") and had to be respawned: a cheap way to keep every worker down."""
    respawns = client.app.state.sparql.status()["respawns"]
    body = problem(client.post("/sparql", data={"query": query}), 400)
    assert body["errors"][0]["rule"] == "max-nesting"
    assert client.app.state.sparql.status()["respawns"] == respawns


def test_nesting_within_the_limit_still_runs(client):
    query = "ASK {" + "{" * (sparql.MAX_NESTING - 1) + "}" * sparql.MAX_NESTING
    assert client.post("/sparql", data={"query": query}).json()["boolean"] is True
    assert sparql.nesting_depth('ASK { FILTER("((((((" != "}") } # ((((') == 2


@pytest.mark.parametrize("chain", [
    "ASK { FILTER(" + " && ".join(["true"] * 15_000) + ") }",
    "ASK { FILTER(" + "!" * 15_000 + "false) }",
    "ASK { " + " UNION ".join(["{ ?s ?p ?o }"] * 5_000) + " }",
])
def test_long_flat_chains_within_the_limit_are_answered_without_killing_a_worker(patient_client, chain):
    """Regression: thousands of chained && / ! / UNION overflowed the parser's stack and killed the worker
    (503 and a respawn). Workers now parse on a 256 MiB stack."""
    client = patient_client
    respawns = client.app.state.sparql.status()["respawns"]
    response = client.post("/sparql", content=chain.encode(), headers={"content-type": "application/sparql-query"})
    assert response.status_code == 200, response.text[:300]
    assert "boolean" in response.json()
    assert client.app.state.sparql.status()["respawns"] == respawns


def test_chains_past_the_operator_limit_are_refused_before_the_engine(client):
    chain = "ASK { FILTER(" + " || ".join(["false"] * (sparql.MAX_OPERATORS + 2)) + ") }"  # n terms, n - 1 operators
    body = problem(client.post("/sparql", content=chain.encode(), headers={"content-type": "application/sparql-query"}), 400)
    assert body["errors"][0]["rule"] == "max-operators"
    assert sparql.operator_count('ASK { FILTER("&& || !" != "UNION") } # UNION') == 1


@pytest.mark.slow
# runs of "-" and "<" are operator chains (every operator counts: refused as too complex); the
# unterminated string passes the lexical checks and is refused by the parser
@pytest.mark.parametrize("text, title", [("-" * 200_000, "Query too complex"), ("a-" * 100_000, "Query too complex"),
                                         ("<a" * 100_000, "Query too complex"), ('"a' * 100_000, "Malformed query")])
def test_the_lexical_check_is_linear(client, text, title):
    """Regression: the tokenizer rescanned a run without a colon from every position:
    50 000 "-" took 13 s of regex on the event loop before the query was even parsed."""
    started = time.monotonic()
    response = client.post("/sparql", content=("ASK {} #\n" + text).encode()[: 1 << 20], headers={"content-type": "application/sparql-query"})
    assert problem(response, 400)["title"] == title
    assert time.monotonic() - started < TIMEOUT + scaled(1)

    def best_of_three(part: str) -> float:
        times = []
        for _ in range(3):
            started = time.monotonic()
            sparql.keywords(part)
            sparql.nesting_depth(part)
            times.append(time.monotonic() - started)
        return min(times)

    half, whole = best_of_three(text[: len(text) // 2]), best_of_three(text)
    assert whole < scaled(2.0)
    assert whole < 3 * half + 0.05, f"twice the text took {whole / max(half, 1e-9):.1f} times as long: not linear"


def test_keywords_glued_to_numbers_are_still_seen():
    assert sparql.inspect_query("SELECT * { ?x ?y 1SERVICE <http://example.org/sparql> { ?a ?b ?c } }").service
    assert sparql.inspect_query("PREFIX ex: <http://example.org/> SELECT ?x { ?x ex:SERVICE 1 }").service is False


# --------------------------------------------------------------------------- bodies: too large, too deep

POST_ROUTES = [
    ("/sparql", "application/sparql-query"),
    ("/patients/validate", "application/json"),
    ("/evidence", "application/json"),
    ("/evidence/batch", "application/json"),
]


def _raw_request(base: str, path: str, content_type: str, declared: int) -> tuple[bytes, float]:
    """Headers announcing ``declared`` bytes, then nothing: the answer must not wait for the body."""
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {declared}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("path,content_type", POST_ROUTES)
def test_oversized_bodies_are_refused_before_they_are_read(live_server, path, content_type):
    """Regression (/patients/validate): the body was read whole before its size was checked,
    so a client could make the server buffer any amount; now Content-Length alone refuses it."""
    head, elapsed = _raw_request(live_server, path, content_type, 10**10)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert elapsed < scaled(5)


@pytest.fixture(scope="module")
def small_limits_client(repo_store):
    """Every route's body limit at 4 KiB (2 MiB are sent)."""
    with TestClient(create_app(Settings(max_body_bytes=4096, max_batch_bytes=4096, query_workers=1, sparql_url=None), repo_store)) as c:
        yield c


@pytest.mark.parametrize("path,content_type", POST_ROUTES)
def test_streamed_bodies_are_cut_at_the_limit(small_limits_client, path, content_type):
    client = small_limits_client

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(2048):
            yield b" " * 1024

    response = client.post(path, content=chunks(), headers={"content-type": content_type})
    assert response.status_code == 413, response.text[:300]
    problem(response, 413)


@pytest.mark.parametrize("path", ["/patients/validate", "/evidence", "/evidence/batch"])
@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"a":' * 100_000, b'{"id": "p1", "liver": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_deeply_nested_json_is_refused_quickly(client, path, body):
    started = time.monotonic()
    body_json = problem(client.post(path, content=body, headers={"content-type": "application/json"}), 422)
    assert time.monotonic() - started < scaled(2)
    assert body_json["errors"] and all(e["field"] for e in body_json["errors"])


def test_deeply_nested_form_body_to_sparql(client):
    query = "SELECT * WHERE " + "{" * 100_000 + "}" * 100_000
    problem(client.post("/sparql", data={"query": query}), 400)


# --------------------------------------------------------------------------- no federation, no fetching


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/sparql-results+json")
        self.end_headers()
        self.wfile.write(b'{"head":{"vars":["x"]},"results":{"bindings":[]}}')

    do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture()
def remote():
    _Recorder.hits = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sparql", _Recorder.hits
    server.shutdown()


def test_nothing_makes_the_server_fetch_a_url(client, remote):
    url, hits = remote
    direct = {"content-type": "application/sparql-query"}
    attempts = [
        client.post("/sparql", content=f"SELECT * WHERE {{ SERVICE <{url}> {{ ?x ?y ?z }} }}".encode(), headers=direct),
        client.post("/sparql", data={"query": f"SELECT * WHERE {{ SERVICE#c\n<{url}> {{ ?x ?y ?z }} }}"}),
        client.get("/sparql", params={"query": f"SELECT * WHERE {{ {{ SELECT * WHERE {{ SERVICE <{url}> {{ ?x ?y ?z }} }} }} }}"}),
        client.get("/sparql", params={"query": f"SELECT * WHERE {{ ?s ?p 1SERVICE <{url}> {{ ?x ?y ?z }} }}"}),
        client.get("/sparql", params={"query": f"SELECT * WHERE {{ \\U00000053ERVICE <{url}> {{ ?x ?y ?z }} }}"}),
        client.get("/sparql", params={"query": f"PREFIX r: <{url}> SELECT * WHERE {{ SERVICE r: {{ ?x ?y ?z }} }}"}),
        client.get("/sparql", params={"query": f"SELECT * FROM <{url}> WHERE {{ ?x ?y ?z }} LIMIT 1"}),
        client.get("/sparql", params={"query": f"SELECT * FROM NAMED <{url}> WHERE {{ GRAPH <{url}> {{ ?x ?y ?z }} }}"}),
        client.get("/sparql", params={"query": "SELECT * WHERE { ?x ?y ?z } LIMIT 1", "default-graph-uri": url, "named-graph-uri": url}),
        client.get("/sparql", params={"query": f"DESCRIBE <{url}>"}),
        client.get("/sparql", params={"query": f"LOAD <{url}>"}),
        client.post("/evidence", content=json.dumps({"@context": url, "id": "p1"}).encode(), headers={"content-type": "application/ld+json"}),
    ]
    for response in attempts:
        assert response.status_code < 500, response.text[:300]
    # The recorder serves one request at a time, in order: once a marker sent now is recorded,
    # any request the server had started before it is recorded too.
    assert httpx.get(url + "?marker", timeout=scaled(10)).status_code == 200
    wait_until(lambda: "/sparql?marker" in hits, 10, "the recorder to see the marker request")
    assert hits == ["/sparql?marker"]


# --------------------------------------------------------------------------- patient data stays out of the logs

SECRET = {"id": "p-zq7x9-secret", "age": 87, "ecog": 3, "ceaNgPerMl": 123.457,
          "liverMetastases": {"count": 7, "largestDiameterMm": 61.3, "diseaseFreeIntervalMonths": 17.25}}
SECRET_VALUES = ["p-zq7x9-secret", "123.457", "61.3", "17.25"]


def _all_logs_to(records: list):
    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return handler


def test_patient_records_are_not_logged(client, monkeypatch):
    monkeypatch.delenv("CRLM_KG_LOG_PATIENTS", raising=False)
    records: list[str] = []
    handler = _all_logs_to(records)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        assert client.post("/evidence", json=SECRET).status_code == 200
        assert client.post("/evidence/batch", json=[SECRET]).status_code == 200
        assert client.post("/patients/validate", json=SECRET).status_code == 200
        bad = {**SECRET, "liverMetastases": {**SECRET["liverMetastases"], "count": "123.457"}}
        assert client.post("/evidence", json=bad).status_code == 422
        turtle = ('@prefix crlm: <https://w3id.org/crlm-kg/ontology#> .\n<https://w3id.org/crlm-kg/patient/p-zq7x9-secret> a crlm:Patient ; '
                  'crlm:age "123.457"^^<http://www.w3.org/2001/XMLSchema#integer> .\n')
        assert client.post("/evidence", content=turtle.encode(), headers={"content-type": "text/turtle"}).status_code == 422
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = "\n".join(records)
    for value in SECRET_VALUES:
        assert value not in text, (value, text[:2000])


def test_patient_logging_is_opt_in(client, caplog):
    client.app.dependency_overrides[get_settings] = lambda: Settings(log_patients=True)
    try:
        with caplog.at_level(logging.INFO, logger="crlm_kg.api.patients"):
            assert client.post("/evidence", json=SECRET).status_code == 200
    finally:
        client.app.dependency_overrides.clear()
    assert "p-zq7x9-secret" in caplog.text


def test_quiet_rdflib_is_per_thread():
    """Regression: the ill-typed-literal warnings (which quote the value) were silenced by
    setting rdflib.term's level and restoring it on exit; with two requests in flight, the
    first one's exit restored the old level while the second was still parsing."""
    import rdflib

    records: list[str] = []
    handler = _all_logs_to(records)
    logger = logging.getLogger("rdflib.term")
    logger.addHandler(handler)
    inside, first_left = threading.Event(), threading.Event()

    def second():
        with patients.quiet_rdflib():
            inside.set()
            first_left.wait(5)
            rdflib.Literal("zz-ill-typed-secret", datatype=rdflib.XSD.integer).value  # noqa: B018 - logs a warning

    try:
        thread = threading.Thread(target=second)
        with patients.quiet_rdflib():
            thread.start()
            inside.wait(5)
        first_left.set()
        thread.join(5)
    finally:
        logger.removeHandler(handler)
    assert not any("zz-ill-typed-secret" in r for r in records), records


@pytest.mark.slow
def test_access_log_drops_query_strings(tmp_path):
    """uvicorn's access log would print /queries/trials-for-patient?age=…&ras=…: patient fields."""
    env = dict(os.environ, CRLM_KG_QUERY_WORKERS="1", PYTHONPATH=str(ROOT))
    env.pop("CRLM_KG_LOG_PATIENTS", None)
    env.pop("CRLM_KG_SPARQL_URL", None)
    command = [sys.executable, "-m", "uvicorn", "--factory", "crlm_kg.api.app:create_app", "--host", "127.0.0.1", "--log-level", "info"]
    with running_server(tmp_path, env, name="access-log", command=command) as base:
        assert httpx.get(base + "/queries/trials-for-patient", params={"age": "87", "ras": "RasMutant", "flr": "23.456"}).status_code == 200
        assert httpx.post(base + "/evidence", json=SECRET).status_code == 200
        log_file = tmp_path / "access-log.log"
        wait_until(lambda: "POST /evidence" in log_file.read_text(), 10, "the access log line of POST /evidence")
    text = log_file.read_text()
    assert "GET /queries/trials-for-patient?…" in text  # the access log is still there
    for value in ["23.456", "RasMutant", *SECRET_VALUES]:
        assert value not in text, value


def test_graph_unchanged_after_the_hostile_tests(client, repo_store, fingerprint_before, workers_before):
    assert repo_store.fingerprint() == fingerprint_before  # the parent's copy
    after = worker_digest(client, WORKERS)  # what /sparql answers from
    assert after == workers_before == repository_digest()
    assert sum(triples for _, _, triples, _ in after) == fingerprint_before["triples"] > 10000
