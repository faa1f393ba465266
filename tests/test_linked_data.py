"""Linked data: the service answers for its own IRIs (https://w3id.org/crlm-kg/X at /X) with
content negotiation, serves the JSON-LD context at its IRI path, finds studies by registry id,
and the w3id redirect rules send every kind of IRI to a path the service answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from fastapi.testclient import TestClient
from rdflib.namespace import OWL, RDF, RDFS

from crlm_kg.api.app import create_app
from crlm_kg import paths
from crlm_kg.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
HTACCESS = ROOT / "deploy" / "w3id" / ".htaccess"
EORTC = paths.CRLMD + "EORTC40983"
RDF_PARSERS = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/rdf+xml": "xml", "application/n-triples": "nt"}


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


def graph_of(response) -> rdflib.Graph:
    media = response.headers["content-type"].split(";")[0]
    return rdflib.Graph().parse(data=response.content, format=RDF_PARSERS[media])


def test_accept_header_is_honoured(client, repo_store):
    expected = {(t.predicate.value, t.object.value) for t in repo_store.construct(f"DESCRIBE <{EORTC}>")
                if t.subject == ox.NamedNode(EORTC)}
    for media in RDF_PARSERS:
        r = client.get("/data/EORTC40983", headers={"accept": media})
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), (media, r.text[:200])
        assert "Accept" in r.headers["vary"]
        g = graph_of(r)
        assert {(str(p), str(o)) for p, o in g.predicate_objects(rdflib.URIRef(EORTC))} == expected


def test_json_for_application_json_and_turtle_by_default(client):
    r = client.get("/data/EORTC40983", headers={"accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["iri"] == EORTC and body["registryId"] == "NCT00006479"
    assert client.get("/data/EORTC40983").headers["content-type"].startswith("text/turtle")
    # a client that prefers HTML gets the page (tests/test_pages.py); one that only accepts anything, Turtle
    assert client.get("/data/EORTC40983", headers={"accept": "text/html,*/*;q=0.8"}).headers["content-type"].startswith("text/html")
    assert client.get("/data/EORTC40983", headers={"accept": "*/*"}).headers["content-type"].startswith("text/turtle")
    assert client.get("/data/EORTC40983?format=jsonld").headers["content-type"] == "application/ld+json"


def test_unknown_node_format_and_media_are_refused(client):
    assert client.get("/data/NoSuchNode").status_code == 404
    assert client.get("/data/EORTC40983", headers={"accept": "image/png"}).status_code == 406
    assert client.get("/data/EORTC40983?format=xlsx").status_code == 400
    assert client.get("/ontology/NoSuchTerm").status_code == 404


def test_ontology_terms_dereference_with_their_axioms(client):
    r = client.get("/ontology/RasMutantPatient", headers={"accept": "text/turtle"})
    assert r.status_code == 200, r.text[:300]
    g = graph_of(r)
    term = rdflib.URIRef(paths.CRLM + "RasMutantPatient")
    assert (term, RDF.type, OWL.Class) in g and g.value(term, RDFS.label) is not None
    restriction = g.value(term, OWL.equivalentClass)  # the defining blank nodes come with the term
    assert restriction is not None and any(g.triples((None, OWL.onProperty, None)))
    assert client.get("/ontology").status_code == 200  # the whole ontology is still at /ontology


def test_context_is_served_at_its_iri_path_and_reads_the_example(client):
    r = client.get("/context/patient.jsonld")
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    context = r.json()
    assert context == json.loads((paths.VALIDATION_DIR / "patient-context.jsonld").read_text())
    example = json.loads((paths.EXAMPLES_DIR / "patients" / "jsonld-example.jsonld").read_text())
    assert example["@context"] == "https://w3id.org/crlm-kg/context/patient.jsonld"
    # what a JSON-LD processor does once the IRI redirects here: use the served context
    example["@context"] = context["@context"]
    g = rdflib.Graph().parse(data=json.dumps(example), format="json-ld")
    patient = rdflib.URIRef("https://w3id.org/crlm-kg/patient/ex-jsonld")
    assert int(g.value(patient, rdflib.URIRef(paths.CRLM + "age"))) == 71  # typed by the shapes' targets (test_shapes_standalone)


def test_study_found_by_registry_id(client):
    r = client.get("/studies/NCT00006479")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["id"] == "EORTC40983" and r.headers["content-location"] == "/studies/EORTC40983"
    assert r.json() == client.get("/studies/EORTC40983").json()
    assert client.get("/studies/NCT99999999").status_code == 404


def test_study_honours_accept_turtle(client):
    r = client.get("/studies/EORTC40983", headers={"accept": "text/turtle"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/turtle")
    g = graph_of(r)
    study = rdflib.URIRef(EORTC)
    arms = set(g.subjects(rdflib.URIRef(paths.CRLM + "armOf"), study))
    assert str(g.value(study, rdflib.URIRef(paths.CRLM + "registryId"))) == "NCT00006479"
    assert {a["id"] for a in client.get("/studies/EORTC40983").json()["arms"]} == {str(a)[len(paths.CRLMD):] for a in arms} != set()
    by_registry = client.get("/studies/NCT00006479", headers={"accept": "text/turtle"})
    assert graph_of(by_registry).isomorphic(g)
    assert client.get("/studies/EORTC40983").headers["content-type"] == "application/json"  # JSON stays the default


def _w3id_rules() -> list[tuple[re.Pattern, str]]:
    rules = []
    for line in HTACCESS.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "RewriteRule":
            rules.append((re.compile(fields[1]), fields[2]))
    return rules


def _redirect(path: str) -> str | None:
    for pattern, target in _w3id_rules():
        match = pattern.match(path)
        if match:
            return re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))), target)
    return None


@pytest.mark.parametrize("iri", [EORTC, paths.CRLMD + "EORTC40983_Eligibility", paths.CRLM + "Study", paths.ONTOLOGY_IRI,
                                 "https://w3id.org/crlm-kg/context/patient.jsonld"])
def test_w3id_rules_send_every_iri_to_a_path_the_service_answers(client, iri):
    path = iri.split("#")[0] if "#" not in iri else iri.replace("#", "/")  # a term: /ontology/{name}
    target = _redirect(path[len("https://w3id.org/crlm-kg/"):])
    assert target is not None, iri
    served = target.split("://", 1)[1].split("/", 1)[1]
    assert client.get("/" + served).status_code == 200, (iri, target)


def test_w3id_rules_only_match_what_they_should():
    assert _redirect("data/../../etc/passwd") is None
    assert _redirect("release/0.2.0/crlm-kg-0.2.0.nq.gz").endswith("/release/0.2.0/crlm-kg-0.2.0.nq.gz")
