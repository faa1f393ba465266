"""Issue 10: trial criteria encode what their source says, for every value the record can take.

Each test names the source wording that decides it (data/studies/<trial>.ttl holds the
quote and its locator). Records are built here, one field changed at a time, so that a
test fails when the encoding answers for the wrong field.
"""

from __future__ import annotations

import copy
import json

import pytest

from crlm_kg import patients
from crlm_kg.evidence import EvidenceLookup

BASE = {
    "age": 60, "ecog": 0,
    "liverMetastases": {"count": 2, "largestDiameterMm": 30, "resectability": "resectable"},
    "extrahepaticDisease": False,
    "molecular": {"ras": "wild-type", "mmr": "pMMR"},
}


@pytest.fixture(scope="module")
def lookup(repo_store) -> EvidenceLookup:
    return EvidenceLookup(repo_store)


def evaluate(lookup, record: dict, **changes) -> dict:
    record = copy.deepcopy(record)
    for path, value in changes.items():
        node = record
        *nests, last = path.split("__")
        for nest in nests:
            node = node.setdefault(nest, {})
        node[last] = value
    record.setdefault("id", "criteria-logic")
    report, records = patients.parse_and_validate(json.dumps(record).encode(), filename="record.json")
    assert report.conforms, report.to_text()
    return lookup.evaluate(records[0])


def trial(result, trial_id):
    return next(t for t in result["trials"] if t["id"] == trial_id)


def criterion(result, trial_id, criterion_id):
    return next(c for c in trial(result, trial_id)["criteria"] if c["id"] == criterion_id)


# --- Kemeny 1999: "after complete resection" (references.md) -------------------------------


def test_kemeny_first_time_resection_candidate_is_in_the_population(lookup):
    # adjuvant HAI "after complete resection": the patient it informs has resectable
    # metastases about to be resected, with no earlier hepatectomy
    r = evaluate(lookup, BASE, priorTherapy__priorHepatectomy=False)
    assert trial(r, "Kemeny1999AdjuvantHAI")["status"] == "eligible"


def test_kemeny_unresected_recurrence_is_not_in_the_population(lookup):
    # an earlier hepatectomy does not make unresectable disease "completely resected"
    r = evaluate(lookup, BASE, liverMetastases__resectability="unresectable", priorTherapy__priorHepatectomy=True)
    assert criterion(r, "Kemeny1999AdjuvantHAI", "Kemeny1999AdjuvantHAI_CritResected")["status"] == "not-met"
    assert trial(r, "Kemeny1999AdjuvantHAI")["status"] == "ineligible"


def test_kemeny_criterion_asks_resectability_not_prior_hepatectomy(lookup):
    record = copy.deepcopy(BASE)
    del record["liverMetastases"]["resectability"]
    r = evaluate(lookup, record, priorTherapy__priorHepatectomy=True)
    entry = criterion(r, "Kemeny1999AdjuvantHAI", "Kemeny1999AdjuvantHAI_CritResected")
    assert entry["status"] == "unknown" and entry["field"] == "liverMetastases.resectability"


# --- LIGRO: "excluded: ... progression on preoperative therapy" (references.md) ------------

LIGRO_BASE = {**BASE, "liver": {"futureLiverRemnantPercent": 22, "fibrosisOrCirrhosis": False},
              "liverMetastases": {"count": 6, "resectability": "borderline"}}


def test_ligro_chemo_naive_patient_is_not_asked_for_a_response(lookup):
    r = evaluate(lookup, LIGRO_BASE, priorTherapy__systemicChemotherapy=False)
    # decided without priorTherapy.response: no preoperative therapy, so no progression on it
    assert trial(r, "LIGRO")["status"] == "eligible"
    assert criterion(r, "LIGRO", "LIGRO_CritNoPreoperativeTherapy")["status"] == "met"


@pytest.mark.parametrize("response, expected", [("progressive", "ineligible"), ("partial", "eligible"), ("stable", "eligible")])
def test_ligro_pretreated_patient_is_decided_by_the_response(lookup, response, expected):
    r = evaluate(lookup, LIGRO_BASE, priorTherapy__systemicChemotherapy=True, priorTherapy__response=response)
    assert trial(r, "LIGRO")["status"] == expected


def test_ligro_pretreated_patient_without_response_is_undetermined(lookup):
    r = evaluate(lookup, LIGRO_BASE, priorTherapy__systemicChemotherapy=True)
    assert trial(r, "LIGRO")["status"] == "undetermined"
    assert criterion(r, "LIGRO", "LIGRO_CritProgression")["status"] == "unknown"


# --- first-line trials: chemo-naive decides them ---------------------------------------------

FIRST_LINE = ["ATOM_CritFirstLine", "BECOME_CritFirstLine", "CRYSTAL_CritFirstLine", "FIRE3_CritFirstLine",
              "METHEP_CritFirstLine", "OPUS_CritFirstLine"]


@pytest.mark.parametrize("criterion_id", FIRST_LINE)
@pytest.mark.parametrize("prior, expected", [(False, "met"), (True, "not-met")])
def test_first_line_criteria_are_decided_by_prior_chemotherapy(lookup, criterion_id, prior, expected):
    r = evaluate(lookup, BASE, priorTherapy__systemicChemotherapy=prior)
    trial_id = criterion_id.split("_")[0]
    entry = criterion(r, trial_id, criterion_id)
    assert entry["evaluable"] and entry["field"] == "priorTherapy.systemicChemotherapy"
    assert entry["status"] == expected


# --- "refractory" = prior therapy AND progression (Seed001, Immunotherapy) -------------------


@pytest.mark.parametrize("therapy, expected", [
    ({"systemicChemotherapy": False}, "ineligible"),
    ({"systemicChemotherapy": True, "response": "partial"}, "ineligible"),
    ({"systemicChemotherapy": True, "response": "progressive"}, "eligible"),
    ({"systemicChemotherapy": True}, "undetermined"),
])
def test_refractory_means_progression_after_prior_chemotherapy(lookup, therapy, expected):
    r = evaluate(lookup, {**BASE, "priorTherapy": therapy})
    assert trial(r, "Mettu2022Atezolizumab")["status"] == expected


def test_response_to_chemotherapy_is_not_asked_of_a_chemo_naive_patient(lookup):
    # Brouquet 2011 Fig 3: "patients ... responding to chemotherapy"
    r = evaluate(lookup, {**BASE, "liverMetastases": {"distribution": "bilobar"}}, priorTherapy__systemicChemotherapy=False)
    assert trial(r, "Brouquet2011TSH")["status"] == "ineligible"
    assert criterion(r, "Brouquet2011TSH", "Brouquet2011TSH_CritReceivedChemotherapy")["status"] == "not-met"


# --- the studied treatment is not a history the patient must bring ---------------------------


@pytest.mark.parametrize("therapy, expected", [
    ({"systemicChemotherapy": False}, "met"),  # the pathway's preoperative chemotherapy is still ahead
    ({"systemicChemotherapy": True, "oxaliplatin": True}, "met"),
    ({"systemicChemotherapy": True, "oxaliplatin": False, "irinotecan": False}, "not-met"),
])
def test_md_anderson_tsh_preoperative_chemotherapy(lookup, therapy, expected):
    # Seed003: "with preoperative oxaliplatin- and/or irinotecan-based chemotherapy for initial CLM"
    r = evaluate(lookup, {**BASE, "priorTherapy": therapy})
    status = trial(r, "MDAndersonTSH1998to2020")["status"]
    assert status == ("eligible" if expected == "met" else "ineligible")


# --- status and primary endpoints only where a source states them ----------------------------


def test_recruitment_status_lives_on_sourced_status_reports(repo_store):
    rows = repo_store.select(
        """SELECT ?report ?study ?status ?quote WHERE {
             ?report a crlm:StudyStatusReport ; crlm:ofStudy ?study ; crlm:status ?status ; crlm:sourceQuote ?quote }"""
    )
    by_study = {str(r["study"]).rsplit("/", 1)[-1]: str(r["status"]) for r in rows}
    # CHARISMA: references.md "phase 3, ongoing"; Seed001 "Ongoing trials such as the CHARISMA trial"
    assert by_study.get("CHARISMA") == "ongoing"
    # every report quotes wording that says so
    for r in rows:
        assert any(word in str(r["quote"]).lower() for word in ("ongoing", "is evaluating", "recruiting", "completed", "terminated")), r
    # no study carries a status without a report
    assert not repo_store.select("SELECT ?s WHERE { ?s crlm:status ?v FILTER NOT EXISTS { ?s a crlm:StudyStatusReport } }")


def test_primary_endpoints_named_by_the_sources(repo_store):
    rows = repo_store.select("SELECT ?study ?endpoint WHERE { ?study crlm:primaryEndpoint ?endpoint }")
    found = {str(r["study"]).rsplit("/", 1)[-1]: str(r["endpoint"]).rsplit("#", 1)[-1] for r in rows}
    # Seed000 Fig 2 legend, Seed001 LIGRO paragraph / Seed000 LIGRO table, Seed001 CELIM paragraph
    assert found["EORTC40983"] == "ProgressionFreeSurvival"
    assert found["LIGRO"] == "ResectionRate"
    assert found["CELIM"] == "ObjectiveResponseRate"


def test_after_first_progression_is_decided_for_a_chemo_naive_patient(lookup):
    # ML18147: "Continuation of bevacizumab after first progression" (Seed001 ref. 95)
    naive = evaluate(lookup, BASE, priorTherapy__systemicChemotherapy=False)
    assert trial(naive, "ML18147")["status"] == "ineligible"
    after = evaluate(lookup, {**BASE, "priorTherapy": {"systemicChemotherapy": True, "bevacizumab": True, "response": "progressive"}})
    assert trial(after, "ML18147")["status"] == "eligible"
    responding = evaluate(lookup, {**BASE, "priorTherapy": {"systemicChemotherapy": True, "bevacizumab": True, "response": "partial"}})
    assert trial(responding, "ML18147")["status"] == "ineligible"
