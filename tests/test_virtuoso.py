"""The store behind one interface: the same named queries, evidence and API against a real Virtuoso.

A throwaway Virtuoso (crlm_kg.virtuoso) is started once for the module on free
ports in a scratch directory, loaded with the ontology and evidence graphs, and
always stopped by the fixture's finaliser. Where Virtuoso is not installed or
does not start, every test here is skipped with the reason.
"""

from __future__ import annotations

import json

import pytest

from crlm_kg import patients, paths
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.queries import QueryLibrary
from crlm_kg.store import RemoteStore

import test_evidence_lookup as evidence_tests  # noqa: E402 (tests/ is on sys.path under pytest)
from test_named_queries import KNOWN_ROWS, has_row
from test_benchmarks import _script

BENCH_VIRTUOSO = _script("bench_virtuoso")  # its row comparison (canonical JSON, lists unordered) is the one used here

pytestmark = pytest.mark.virtuoso

CASES = sorted((paths.EXAMPLES_DIR / "patients").glob("case-*.json"))
EVIDENCE_TESTS = [
    evidence_tests.test_resectable_ras_wild_type,
    evidence_tests.test_resectable_high_fong_is_charisma_candidate,
    evidence_tests.test_borderline_small_flr,
    evidence_tests.test_unresectable_ras_wild_type_left,
    evidence_tests.test_unresectable_ras_mutant_right,
    evidence_tests.test_elderly,
    evidence_tests.test_most_fields_missing,
    evidence_tests.test_extrahepatic_disease,
    evidence_tests.test_cirrhosis_raises_flr_threshold,
]


@pytest.fixture(scope="module")
def virtuoso():
    from crlm_kg.virtuoso import VirtuosoError, running_virtuoso, virtuoso_available

    ok, reason = virtuoso_available()
    if not ok:
        pytest.skip(reason)
    manager = running_virtuoso()
    try:
        instance = manager.__enter__()
    except VirtuosoError as exc:
        pytest.skip(f"Virtuoso did not start: {exc}")
    try:
        yield instance
    finally:  # also after failures: stop the server and remove the scratch directory
        manager.__exit__(None, None, None)


@pytest.fixture(scope="module")
def remote(virtuoso) -> RemoteStore:
    store = virtuoso.store()
    yield store
    store.close()


@pytest.fixture(scope="module")
def remote_lookup(remote) -> EvidenceLookup:
    return EvidenceLookup(remote)


@pytest.fixture(scope="module")
def library() -> QueryLibrary:
    return QueryLibrary.load()


def test_remote_store_holds_exactly_the_repository_graph(remote, repo_store):
    assert remote.graphs == (paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED)
    assert remote.triple_count() == repo_store.triple_count()


@pytest.mark.parametrize("name,params,row", KNOWN_ROWS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(KNOWN_ROWS)])
def test_named_query_on_virtuoso(library, remote, name, params, row):
    columns, rows = library.run(remote, name, params)
    assert has_row(rows, **row), f"{name}: expected a row like {row}; got {len(rows)} rows, first {rows[:2]}"


@pytest.mark.parametrize("name", [query.name for query in QueryLibrary.load().all()])
def test_named_query_gives_the_embedded_rows_on_virtuoso(library, remote, repo_store, name):
    """Researchers load the release into their own triple stores: each named query (example parameters) gives
    Virtuoso the rows Oxigraph gives. Each GROUP_CONCAT list is compared as a set, its order being the engine's.
    Before this test, five queries differed there (a doubled alternative path, "" for an empty GROUP_CONCAT, a
    FILTER NOT EXISTS dropped after a BIND, hasMember* from one of two eligibility nodes)."""
    canonical, unordered_concat = BENCH_VIRTUOSO.canonical, BENCH_VIRTUOSO.unordered_concat
    query = library.get(name)
    params = {p.name: p.example for p in query.parameters if not p.optional}
    embedded = sorted(canonical(unordered_concat(row)) for row in library.run(repo_store, name, params)[1])
    on_virtuoso = sorted(canonical(unordered_concat(row)) for row in library.run(remote, name, params)[1])
    assert on_virtuoso == embedded, next((f"first difference: {a} | {b}" for a, b in zip(on_virtuoso, embedded) if a != b),
                                         f"{len(on_virtuoso)} rows against {len(embedded)}")


@pytest.mark.parametrize("check", EVIDENCE_TESTS, ids=lambda f: f.__name__)
def test_evidence_expectations_on_virtuoso(remote_lookup, check):
    check(remote_lookup)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_evidence_identical_to_embedded(remote_lookup, repo_store, case):
    report, records = patients.parse_and_validate(case.read_bytes(), filename=case.name)
    assert report.conforms
    embedded = EvidenceLookup(repo_store).evaluate(records[0])
    remote = remote_lookup.evaluate(records[0])
    assert json.dumps(remote, sort_keys=True, default=str) == json.dumps(embedded, sort_keys=True, default=str)


def test_api_over_virtuoso(remote, repo_store):
    from fastapi.testclient import TestClient

    from crlm_kg.api.app import create_app

    with TestClient(create_app(store=remote)) as client:  # the lifespan builds the evidence lookup
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["store"] == "remote" and health.json()["triples"] == repo_store.triple_count()

        answer = client.get("/queries/rcts-by-setting", params={"setting": "Resectable"})
        assert answer.status_code == 200, answer.text
        assert any(r["study"] == paths.CRLMD + "EORTC40983" for r in answer.json()["rows"])

        case = paths.EXAMPLES_DIR / "patients" / "case-resectable-ras-wild-type.json"
        evidence = client.post("/evidence", content=case.read_bytes(), headers={"Content-Type": "application/json"})
        assert evidence.status_code == 200, evidence.text
        statuses = {t["id"]: t["status"] for t in evidence.json()["trials"]}
        assert statuses["EORTC40983"] == "eligible" and statuses["CHARISMA"] == "ineligible"


def test_sparql_endpoint_proxies_to_virtuoso_with_the_repository_graphs(remote, repo_store):
    """/sparql on a remote store answers from the repository's graphs only, not Virtuoso's system graphs."""
    from fastapi.testclient import TestClient

    from crlm_kg.api.app import create_app

    with TestClient(create_app(store=remote)) as client:
        r = client.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"},
                       headers={"accept": "application/sparql-results+json"})
        assert r.status_code == 200, r.text
        assert int(r.json()["results"]["bindings"][0]["n"]["value"]) == repo_store.triple_count()
        r = client.get("/sparql", params={"query": "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"},
                       headers={"accept": "application/sparql-results+json"})
        assert {b["g"]["value"] for b in r.json()["results"]["bindings"]} == {paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED}
        assert client.post("/sparql", data={"update": "CLEAR ALL"}).status_code == 400


def test_remote_store_implements_the_whole_protocol(remote, repo_store):
    """construct, dump and fingerprint on Virtuoso: the same triples as the embedded store."""
    from crlm_kg.store import Store

    assert isinstance(remote, Store)
    caps = remote.capabilities
    assert not caps.in_process and caps.endpoint == remote.endpoint and caps.dialect == "virtuoso"
    assert caps.dataset_graphs == (paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED)
    query = "CONSTRUCT { ?s a crlm:Study } WHERE { ?s a/rdfs:subClassOf* crlm:Study }"
    assert set(remote.construct(query)) == set(repo_store.construct(query)) != set()
    assert remote.fingerprint()["triples"] == repo_store.triple_count()
    import pyoxigraph as ox

    dumped = list(ox.parse(remote.dump(), format=ox.RdfFormat.N_QUADS))
    assert len(dumped) == repo_store.triple_count()
    assert {q.graph_name.value for q in dumped} == {paths.GRAPH_ONTOLOGY, paths.GRAPH_EVIDENCE, paths.GRAPH_INFERRED}
