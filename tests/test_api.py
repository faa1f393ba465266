"""The evidence, named-query, browsing and ontology endpoints, through HTTP.

In-process through the ASGI test client on the real graph, and the evidence
lookup once more against a real uvicorn process.
"""

from __future__ import annotations

import json

import httpx
import pytest
import rdflib
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg import paths
from crlm_kg.settings import Settings
from crlm_kg.store import QueryError

CASES = paths.EXAMPLES_DIR / "patients"


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(store=repo_store)) as c:
        yield c


def problem(response, status):
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.text
    return body


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["store"] == "embedded" and body["triples"] > 10000


def test_evidence_json(client):
    r = client.post("/evidence", content=(CASES / "case-resectable-high-fong.json").read_bytes(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["patient"] == "case-resectable-high-fong"
    assert body["derived"]["fongScore"]["min"] == 5
    status = {t["id"]: t["status"] for t in body["trials"]}
    assert status["CHARISMA"] == "eligible" and status["NewEPOC"] == "ineligible"


def test_evidence_turtle_and_jsonld_give_the_same_answer(client):
    record = {"id": "same-answer", "age": 66, "ecog": 1, "liverMetastases": {"count": 12, "resectability": "unresectable"},
              "molecular": {"ras": "wild-type"}, "extrahepaticDisease": False, "priorTherapy": {"systemicChemotherapy": False}}
    as_json = client.post("/evidence", json=record).json()
    ttl = f"""@prefix crlm: <{paths.CRLM}> .
    <https://w3id.org/crlm-kg/patient/same-answer> a crlm:Patient ; crlm:age 66 ; crlm:ecogPerformanceStatus 1 ;
        crlm:liverMetastasisCount 12 ; crlm:resectability crlm:Unresectable ; crlm:rasStatus crlm:RasWildType ;
        crlm:extrahepaticDisease false ; crlm:priorSystemicChemotherapy false ."""
    as_ttl = client.post("/evidence", content=ttl.encode(), headers={"content-type": "text/turtle"})
    assert as_ttl.status_code == 200, as_ttl.text[:500]
    assert {t["id"]: t["status"] for t in as_ttl.json()["trials"]} == {t["id"]: t["status"] for t in as_json["trials"]}
    # ATOM: initially unresectable, liver-limited, RAS wild-type, first-line (chemo-naive)
    assert {t["id"]: t["status"] for t in as_json["trials"]}["ATOM"] == "eligible"


def test_evidence_invalid_record_is_422_with_fields(client):
    body = problem(client.post("/evidence", json={"id": "bad", "age": 12, "liverMetastases": {"count": 0}}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert {"age", "liverMetastases.count"} <= fields
    assert "trials" not in body


@pytest.mark.parametrize("payload,content_type", [
    (b"{not json", "application/json"),
    (b"\xff\xfe\xfa", "application/json"),
    (b'{"id": "x> <y"}', "application/json"),
    (b"[" * 20000, "application/json"),
    (b"<x> <y> .", "text/turtle"),
])
def test_evidence_malformed_input(client, payload, content_type):
    body = problem(client.post("/evidence", content=payload, headers={"content-type": content_type}), 422)
    assert body["errors"] and all(e["field"] and e["rule"] for e in body["errors"])


@pytest.mark.slow
def test_evidence_oversized_body_is_413(repo_store):
    with TestClient(create_app(Settings(max_body_bytes=2000, query_workers=1), repo_store)) as c:
        problem(c.post("/evidence", content=b'{"id": "x", "pad": "' + b"a" * 5000 + b'"}', headers={"content-type": "application/json"}), 413)


def test_evidence_batch(client):
    records = [json.loads((CASES / n).read_text()) for n in ("case-sparse-record.json", "case-cirrhosis.json")]
    r = client.post("/evidence/batch", json=records)
    assert r.status_code == 200
    assert [b["patient"] for b in r.json()] == ["case-sparse", "case-cirrhosis"]
    assert problem(client.post("/evidence", json=records), 422)["errors"][0]["rule"] == "single-record"


def test_queries_list_and_run(client):
    listed = client.get("/queries").json()
    assert len(listed) >= 20 and all(q["title"] and q["columns"] for q in listed)
    r = client.get("/queries/hazard-ratios-by-endpoint", params={"endpoint": "OverallSurvival"})
    assert r.status_code == 200
    rows = r.json()["rows"]
    assert any(row["study"].endswith("/FIRE3") and row["hr"] == 0.77 for row in rows)


def test_queries_errors_name_the_parameter(client):
    assert problem(client.get("/queries/no-such-query"), 404)["errors"][0]["field"] == "name"
    assert problem(client.get("/queries/rcts-by-setting"), 400)["errors"][0]["field"] == "setting"
    assert problem(client.get("/queries/rcts-by-setting", params={"setting": "a b"}), 400)["errors"][0]["field"] == "setting"
    body = problem(client.get("/queries/rcts-by-setting?setting=Resectable&setting=Unresectable"), 400)
    assert body["errors"][0]["rule"] == "single-value"


def test_studies(client):
    studies = client.get("/studies").json()
    ids = {s["id"] for s in studies}
    assert {"EORTC40983", "LIGRO", "CELIM", "JCOG0603"} <= ids
    eortc = client.get("/studies/EORTC40983").json()
    assert eortc["registryId"] == "NCT00006479"
    assert any(a["id"] == "EORTC40983_ArmPerioperative" for a in eortc["arms"])
    assert any(c["id"] == "EORTC40983_CritAgeMax" and c["thresholdValue"] == 80 for c in eortc["criteria"])
    assert any(o.get("value") == 61.3 for o in eortc["outcomes"])
    assert any(p.get("doi") == "10.1016/S0140-6736(08)60455-9" for p in eortc["publications"])
    # identifiers as links, beside their literals (crlm_kg/identifiers.py writes them)
    assert eortc["registryIRI"] == "https://clinicaltrials.gov/study/NCT00006479"
    assert any(p.get("doiIRI") == "https://doi.org/10.1016/S0140-6736(08)60455-9" for p in eortc["publications"])
    assert problem(client.get("/studies/NoSuchStudy"), 404)["errors"][0]["field"] == "study_id"
    assert problem(client.get("/studies/x%3E%20%3Cy"), 404)["errors"][0]["rule"] == "pattern"


def test_treatments_and_endpoints(client):
    treatments = {t["id"]: t for t in client.get("/treatments").json()}
    assert treatments["ALPPS"]["parent"] == "StagedHepatectomy" and treatments["ALPPS"]["definition"]
    endpoints = {e["id"] for e in client.get("/endpoints").json()}
    assert {"OverallSurvival", "HepaticProgressionFreeSurvival", "Mortality90Day"} <= endpoints


@pytest.mark.parametrize("accept,fmt", [("text/turtle", "turtle"), ("application/rdf+xml", "xml"), ("application/ld+json", "json-ld")])
def test_ontology_content_negotiation(client, accept, fmt):
    r = client.get("/ontology", headers={"accept": accept})
    assert r.status_code == 200 and r.headers["content-type"].startswith(accept)
    graph = rdflib.Graph().parse(data=r.content, format=fmt)
    assert (rdflib.URIRef(paths.ONTOLOGY_IRI), rdflib.RDF.type, rdflib.OWL.Ontology) in graph


def test_ontology_html_and_406(client):
    r = client.get("/ontology", headers={"accept": "text/html"})
    assert r.status_code == 200 and "two-stage hepatectomy" in r.text.lower()
    problem(client.get("/ontology", headers={"accept": "image/png"}), 406)
    problem(client.get("/ontology", params={"format": "pdf"}), 400)


def test_openapi_documents_the_patient_record(client):
    spec = client.get("/openapi.json").json()
    assert "PatientRecord" in spec["components"]["schemas"]
    assert set(spec["paths"]["/evidence"]["post"]["requestBody"]["content"]) == {"application/json", "application/ld+json", "text/turtle"}
    for path in ("/health", "/sparql", "/queries", "/queries/{name}", "/patients/validate", "/evidence", "/studies", "/studies/{study_id}", "/treatments", "/endpoints", "/ontology"):
        assert path in spec["paths"], path


def test_cors_is_configurable(repo_store):
    with TestClient(create_app(Settings(cors_origins="https://example.org", query_workers=1), repo_store)) as c:
        r = c.get("/health", headers={"origin": "https://example.org"})
        assert r.headers.get("access-control-allow-origin") == "https://example.org"
    r = TestClient(create_app(Settings(), repo_store)).get("/health", headers={"origin": "https://example.org"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_evidence_through_a_real_uvicorn(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as http:
        r = http.post("/evidence", content=(CASES / "case-unresectable-ras-mutant-right.json").read_bytes(),
                      headers={"content-type": "application/json"})
        assert r.status_code == 200
        assert {t["id"]: t["status"] for t in r.json()["trials"]}["BECOME"] == "eligible"
        assert http.get("/studies/LIGRO").json()["registryId"] == "NCT02215577"
        assert http.post("/evidence", content=b"nope", headers={"content-type": "application/json"}).status_code == 422


# --------------------------------------------------------------------------- settings, limits and store failures


class _FailingStore:
    """The repository store until ``failing`` is set; then every query fails as an unreachable store does."""

    def __init__(self, store):
        self._store = store
        self.failing = False

    def select(self, query, bindings=None):
        if self.failing:
            raise QueryError("remote store unreachable: connection refused")
        return self._store.select(query, bindings)

    def ask(self, query):
        if self.failing:
            raise QueryError("remote store unreachable: connection refused")
        return self._store.ask(query)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.slow
def test_a_store_failure_during_evidence_is_a_503_problem_not_an_answer(repo_store):
    store = _FailingStore(repo_store)
    record = (CASES / "case-resectable-ras-wild-type.json").read_bytes()
    with TestClient(create_app(Settings(query_workers=1), store)) as c:
        assert c.post("/evidence", content=record, headers={"content-type": "application/json"}).status_code == 200
        store.failing = True
        # a fact the lookup has not seen (it keeps each fact's leaf outcomes): the store must be asked
        changed = json.loads(record)
        changed["age"] = changed["age"] + 1
        record = json.dumps(changed).encode()
        body = problem(c.post("/evidence", content=record, headers={"content-type": "application/json"}), 503)
        assert "trials" not in body and "derived" not in body
        assert problem(c.post("/evidence/batch", content=b"[" + record + b"]", headers={"content-type": "application/json"}), 503)
        assert problem(c.get("/queries/rcts-by-setting", params={"setting": "Resectable"}), 503)


@pytest.mark.slow
def test_body_limits_come_from_the_settings_for_every_route(repo_store):
    """max_body_bytes for /evidence and /patients/validate (which once ignored it), max_batch_bytes for /evidence/batch."""
    record = json.loads((CASES / "case-resectable-ras-wild-type.json").read_text())
    padded = [dict(record, id=f"p{i}") for i in range(40)]
    batch = json.dumps(padded).encode()
    limit = 2048
    single = json.dumps(record).encode().ljust(limit - 10)  # trailing whitespace: still one JSON record
    assert len(batch) > 2 * limit
    with TestClient(create_app(Settings(max_body_bytes=limit, max_batch_bytes=len(batch), query_workers=1), repo_store)) as c:
        for path in ("/evidence", "/patients/validate"):
            assert c.post(path, content=single, headers={"content-type": "application/json"}).status_code == 200, path
            assert problem(c.post(path, content=batch, headers={"content-type": "application/json"}), 413)["detail"].endswith(f"{limit} bytes")
        assert c.post("/evidence/batch", content=batch, headers={"content-type": "application/json"}).status_code == 200
        problem(c.post("/evidence/batch", content=batch + b" " * 10, headers={"content-type": "application/json"}), 413)


def test_dependencies_can_be_overridden(client, repo_store):
    """Routes take the store through Depends: a test can substitute it without building another app."""
    from crlm_kg.api.deps import get_store

    class Tiny:
        name = "tiny"

        def triple_count(self):
            return 3

    client.app.dependency_overrides[get_store] = Tiny
    try:
        assert client.get("/health").json()["store"] == "tiny"
    finally:
        client.app.dependency_overrides.clear()
    assert client.get("/health").json()["triples"] == repo_store.triple_count()


def test_the_lifespan_builds_everything_before_the_first_request(repo_store):
    app = create_app(Settings(query_workers=1), repo_store)
    assert app.state.lookup is None  # create_app only assembles
    with TestClient(app) as c:
        lookup = app.state.lookup
        assert lookup is not None and {"criteria", "statements", "sidedness_rules"} <= set(vars(lookup.structure))
        assert app.state.sparql.status()["workers_alive"] == 1
        assert c.get("/health").json()["sparql"]["workers"] == 1
    assert app.state.sparql.status()["workers_alive"] == 0  # closed at shutdown
