"""The ontology gates of issue 2: parse, QC, HermiT, OWL API, size."""

from __future__ import annotations


import pytest
import rdflib
from rdflib.namespace import OWL, RDF

from crlm_kg import ontology, paths


@pytest.fixture(scope="module")
def graph() -> rdflib.Graph:
    return ontology.load_graph()


def test_parses_and_has_header(graph):
    onto = rdflib.URIRef(paths.ONTOLOGY_IRI)
    assert (onto, RDF.type, OWL.Ontology) in graph
    assert graph.value(onto, OWL.versionIRI) is not None


def test_quality_report_is_clean(graph):
    result = ontology.quality_report(graph)
    assert result.problems == []


def test_at_least_150_labelled_classes(graph):
    classes = ontology.own_terms(graph, OWL.Class)
    assert len(classes) >= 150


def test_treatments_endpoints_and_designs_sit_where_people_look(graph):
    crlm = rdflib.Namespace(paths.CRLM)

    def ancestors(cls):
        return set(graph.transitive_objects(cls, rdflib.RDFS.subClassOf))

    assert crlm.Hepatectomy in ancestors(crlm.ALPPS)
    assert crlm.Treatment in ancestors(crlm.FOLFOX4)
    assert crlm.Endpoint in ancestors(crlm.HepaticProgressionFreeSurvival)
    assert crlm.RandomisedControlledTrial in ancestors(crlm.Phase3RandomisedTrial)
    assert crlm.Ablation in ancestors(crlm.MicrowaveAblation)


@pytest.mark.slow
@pytest.mark.quality_gate(needs="java")
def test_hermit_consistent_and_classifies_defined_patients(graph):
    patients = """
    @prefix crlm: <https://w3id.org/crlm-kg/ontology#> .
    @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
    <urn:test:p1> a crlm:Patient ; crlm:rasStatus crlm:RasMutant ; crlm:fongScore 3 ;
        crlm:liverMetastasisCount 4 ; crlm:largestMetastasisDiameterMm 62.0 .
    <urn:test:p2> a crlm:Patient ; crlm:rasStatus crlm:RasWildType ; crlm:fongScore 1 ;
        crlm:liverMetastasisCount 1 .
    """
    consistent, inferred, message = ontology.hermit(graph, patients)
    assert consistent, message
    p1, p2 = inferred["urn:test:p1"], inferred["urn:test:p2"]
    assert {"RasMutantPatient", "HighFongRiskPatient", "MultipleLiverMetastasesPatient", "LargeLiverMetastasisPatient"} <= p1
    assert "RasMutantPatient" not in p2 and "HighFongRiskPatient" not in p2
    assert {"RasWildTypePatient", "LowFongRiskPatient"} <= p2


@pytest.mark.slow
@pytest.mark.quality_gate(needs="java")
def test_owlapi_reports_no_dl_violations(graph):
    result = ontology.owlapi_gate(graph)
    if result.skipped:
        pytest.skip(result.summary)
    assert result.ok, "\n".join(result.problems[:20])
    assert result.summary.startswith("violations=0 unparsed=0")


@pytest.mark.slow
def test_build_writes_rdfxml_and_docs(tmp_path):
    owl = ontology.write_owl(target=tmp_path / "crlm.owl")
    reparsed = rdflib.Graph().parse(owl, format="xml")
    assert len(reparsed) == len(ontology.load_graph())
    docs = ontology.write_docs(target=tmp_path / "docs" / "index.html")
    text = docs.read_text(encoding="utf-8")
    assert "two-stage hepatectomy" in text.lower()
