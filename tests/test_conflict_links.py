"""Conflict links (issue 15): crlm:conflictsWith relates reports of one figure, in both directions
in the curated data; disagreement between studies is crlm:heterogeneousWith."""

from __future__ import annotations

from crlm_kg import paths

EVIDENCE = f"<{paths.GRAPH_EVIDENCE}>"


def _pairs(store, prop: str) -> set[tuple[str, str]]:
    rows = store.select(f"SELECT ?a ?b WHERE {{ GRAPH {EVIDENCE} {{ ?a crlm:{prop} ?b }} }}")
    return {(str(r["a"]), str(r["b"])) for r in rows}


def test_links_are_stated_in_both_directions(repo_store):
    for prop in ("conflictsWith", "heterogeneousWith"):
        pairs = _pairs(repo_store, prop)
        assert pairs, prop
        assert not {(b, a) for a, b in pairs} - pairs, f"{prop} stated one way only"


def test_a_conflict_relates_reports_of_the_same_figure(repo_store):
    mismatched = repo_store.select(f"""SELECT ?a ?b WHERE {{ GRAPH {EVIDENCE} {{ ?a crlm:conflictsWith ?b }}
        {{ ?a crlm:ofStudy ?sa . ?b crlm:ofStudy ?sb FILTER(?sa != ?sb) }}
        UNION {{ ?a a ?ka . ?b a ?kb . VALUES ?ka {{ crlm:HazardRatio crlm:RiskDifference crlm:OddsRatio crlm:OutcomeMeasurement }}
                 VALUES ?kb {{ crlm:HazardRatio crlm:RiskDifference crlm:OddsRatio crlm:OutcomeMeasurement }} FILTER(?ka != ?kb) }} }}""")
    assert mismatched == []


def test_heterogeneity_relates_different_studies(repo_store):
    pairs = _pairs(repo_store, "heterogeneousWith")
    assert ("https://w3id.org/crlm-kg/data/ALPPSMetaAnalysis_MortalityALPPS_S001", "https://w3id.org/crlm-kg/data/LIGRO_Mortality90dALPPS_S001") in pairs
    same_study = repo_store.ask(f"ASK {{ GRAPH {EVIDENCE} {{ ?a crlm:heterogeneousWith ?b }} ?a crlm:ofStudy ?s . ?b crlm:ofStudy ?s }}")
    assert not same_study


def test_the_hazard_ratio_is_no_longer_linked_to_a_risk_difference(repo_store):
    assert not repo_store.ask("ASK { crlmd:EORTC40983_PFS3yDifference_S004 crlm:conflictsWith crlmd:EORTC40983_PFSHazardRatioITT_SCR }")
    assert repo_store.ask("ASK { crlmd:EORTC40983_PFS3yDifferenceEligible_S001 crlm:conflictsWith crlmd:EORTC40983_PFS3yDifference_S004 }")


def test_heterogeneous_with_is_defined_in_the_ontology(repo_store):
    rows = repo_store.select("SELECT ?label ?definition WHERE { crlm:heterogeneousWith a owl:SymmetricProperty ; rdfs:label ?label ; skos:definition ?definition }")
    assert rows and "different studies" in rows[0]["definition"]
