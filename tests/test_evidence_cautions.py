"""Cautions and the safety rule (issue 10, point 2).

The rule: no statement of benefit applies to a patient whom a statement or guideline in the graph excludes from its
treatment (cautionAgainst of a statement that applies; restrictsTreatment of one that does not), subclasses included.
It is checked on a small test-only graph (tests/fixtures/cautions.ttl), independently of curation progress, and over
every example patient on the real graph, recomputing the excluded treatments from the answer and the ontology.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest
from evidence_helpers import EXAMPLE_FILES, by_id, record

from crlm_kg import paths
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.store import EmbeddedStore



@pytest.fixture(scope="module")
def fixture_lookup() -> EvidenceLookup:
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "cautions.ttl"
    store = EmbeddedStore([ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(paths.GRAPH_EVIDENCE))
                           for t in ox.parse(path.read_bytes(), format=ox.RdfFormat.TURTLE)])
    return EvidenceLookup(store)


def patient(**fields):
    return record({"id": "fixture", **fields})


def applicability(answer, statement_id):
    return by_id(answer["recommendations"], statement_id)["applicability"]


def test_caution_against_covers_subclasses(fixture_lookup):
    answer = fixture_lookup.evaluate(patient(molecular={"ras": "mutant"}, primaryTumor={"location": "sigmoid"},
                                             liverMetastases={"resectability": "unresectable"}))
    caution = by_id(answer["summary"]["cautions"], "T_HarmRasMutant")
    assert caution["certainty"] == "certain" and caution["treatments"] == ["AntiEGFRTherapy"]
    assert {"id", "label", "text", "reason", "treatments", "source", "quote"} <= set(caution)
    # cetuximab and panitumumab are subclasses of the excluded anti-EGFR therapy
    for statement_id in ("T_BenefitCetuximab", "T_BenefitPanitumumab", "T_LeftOnly"):
        entry = by_id(answer["recommendations"], statement_id)
        assert entry["applicability"] == "does-not-apply", statement_id
        assert entry["excludedBy"][0]["caution"] == "T_HarmRasMutant"
    assert applicability(answer, "T_BenefitBevacizumab") == "applies"
    assert applicability(answer, "T_HarmGeneral") == "applies"  # harm without cautionAgainst excludes nothing
    assert {s["id"] for s in answer["summary"]["recommendations"]} == {"T_BenefitBevacizumab", "T_HarmRasMutant", "T_HarmGeneral"}


def test_restricts_treatment_excludes_patients_outside_the_population(fixture_lookup):
    answer = fixture_lookup.evaluate(patient(molecular={"ras": "wild-type"}, primaryTumor={"location": "caecum"}))
    caution = by_id(answer["cautions"], "T_LeftOnly")
    assert caution["kind"] == "restrictsTreatment" and caution["certainty"] == "certain"
    assert caution["notMet"][0]["id"] == "T_LeftOnly_Left" and "left-sided primary" in caution["reason"]
    assert applicability(answer, "T_LeftOnly") == "does-not-apply"
    assert by_id(answer["recommendations"], "T_BenefitCetuximab")["excludedBy"] == [
        {"caution": "T_LeftOnly", "treatment": "Cetuximab", "source": None}]
    assert applicability(answer, "T_HarmRasMutant") == "does-not-apply"  # the caution against stays in the full answer


def test_no_caution_when_the_patient_is_in_the_population(fixture_lookup):
    answer = fixture_lookup.evaluate(patient(molecular={"ras": "wild-type"}, primaryTumor={"location": "sigmoid"},
                                             liverMetastases={"resectability": "unresectable"}))
    assert answer["cautions"] == []
    for statement_id in ("T_BenefitCetuximab", "T_BenefitPanitumumab", "T_LeftOnly", "T_BenefitBevacizumab"):
        assert applicability(answer, statement_id) == "applies", statement_id
    # the more specific recommendation (one population criterion met) ranks before general statements
    ranked = [s["id"] for s in answer["summary"]["recommendations"]]
    assert ranked[0] == "T_LeftOnly"


def test_unknown_applicability_gives_a_possible_caution(fixture_lookup):
    answer = fixture_lookup.evaluate(patient(molecular={"ras": "unknown"}))
    harm = by_id(answer["cautions"], "T_HarmRasMutant")
    left = by_id(answer["cautions"], "T_LeftOnly")
    assert harm["certainty"] == left["certainty"] == "possible"
    assert harm["missingFields"] == ["molecular.ras"] and left["missingFields"] == ["primaryTumor.location"]
    cetuximab = by_id(answer["recommendations"], "T_BenefitCetuximab")
    assert cetuximab["applicability"] == "unknown"
    assert set(cetuximab["missingFields"]) == {"molecular.ras", "primaryTumor.location"}
    assert applicability(answer, "T_BenefitBevacizumab") == "applies"
    fields = {d["field"]: d["decides"] for d in answer["summary"]["decidingFields"]}
    assert fields["molecular.ras"] >= 2 and fields["primaryTumor.location"] >= 2


def _subclass_closure(store, classes: set[str]) -> set[str]:
    closure = set(classes)
    for cls in classes:
        rows = store.select(f"SELECT ?sub WHERE {{ ?sub rdfs:subClassOf* <{cls}> }}")
        closure |= {str(r["sub"]) for r in rows}
    return closure


def _assert_safe(answer, store, benefit_label):
    """Recompute the excluded treatments from the answer's statements and the ontology, then check every benefit."""
    excluded: set[str] = set()
    for s in answer["recommendations"]:
        if s["applicability"] == "applies":
            excluded |= {paths.CRLM + t for t in s.get("cautionAgainst", [])}
        if s.get("notMet"):  # outside its own population
            excluded |= {paths.CRLM + t for t in s.get("restrictsTreatment", [])}
    excluded |= {paths.CRLM + t for c in answer["cautions"] if c["certainty"] == "certain" for t in (x["id"] for x in c["treatments"])}
    closure = _subclass_closure(store, excluded)
    for s in answer["recommendations"]:
        if s["applicability"] == "applies" and s["direction"] == benefit_label:
            assert not {paths.CRLM + t for t in s["treatments"]} & closure, (answer["patient"], s["id"])
    return closure


def test_safety_rule_on_the_fixture_graph(fixture_lookup):
    for fields in ({"molecular": {"ras": "mutant"}}, {"primaryTumor": {"location": "caecum"}}, {}):
        answer = fixture_lookup.evaluate(patient(**fields))
        _assert_safe(answer, fixture_lookup.store, "benefit")


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_safety_rule_on_every_example_patient(repo_store, path):
    lookup = _lookup(repo_store)
    benefit_label = repo_store.select("SELECT ?l WHERE { crlm:Benefit rdfs:label ?l }")[0]["l"]
    answer = lookup.evaluate(record(path.name))
    _assert_safe(answer, repo_store, benefit_label)
    # the summary lists only statements that apply
    applying = {s["id"] for s in answer["recommendations"] if s["applicability"] == "applies"}
    assert {s["id"] for s in answer["summary"]["recommendations"]} <= applying


_LOOKUPS: dict[int, EvidenceLookup] = {}


def _lookup(store) -> EvidenceLookup:
    return _LOOKUPS.setdefault(id(store), EvidenceLookup(store))
