"""Three-valued logic uses every field that decides (issue 10, "Criteria that encode the wrong logic").

Each test names the source wording that decides the expected verdict.
"""

from __future__ import annotations

import pytest
from evidence_helpers import EXAMPLE_FILES, by_id, record

from crlm_kg import paths
from crlm_kg.evidence import EvidenceLookup, derived

PRIOR_THERAPY_CHARACTERISTICS = {paths.CRLM + n for n in (
    "priorSystemicChemotherapy", "priorOxaliplatin", "priorIrinotecan", "priorAntiEgfr", "priorBevacizumab",
    "priorChemotherapyCycles", "responseToPriorTherapy")}




SYNCHRONOUS_WORDING = "synchronous disease defined by disease-free interval <12 months"  # seed 000, Fong score
LUNG_WORDING = "In patients with lung-only metastases or OMD including lung lesions"  # seed 000, Figure 1 footnote a
PROGRESSION_WORDING = "progression"  # LIGRO exclusion (seed 002)


@pytest.mark.skipif(not paths.SEEDS_DIR.exists(), reason=f"the seed documents are not at {paths.SEEDS_DIR} (as in test_evidence_data)")
def test_deciding_wording_is_verbatim_in_the_seeds():
    seed000 = next(paths.SEEDS_DIR.glob("000_*")).read_text(encoding="utf-8")
    assert SYNCHRONOUS_WORDING in seed000 and LUNG_WORDING in seed000


def test_synchronous_decides_the_fong_dfi_component(lookup):
    # Seed 000, Fong score: "synchronous disease defined by disease-free interval <12 months"
    assert SYNCHRONOUS_WORDING in derived.IMPLICATIONS[0].description
    answer = lookup.evaluate(record("synchronous-no-dfi.json"))
    fong = answer["derived"]["fongScore"]
    dfi = by_id([{"id": c["component"], **c} for c in fong["components"]], "FongCRS_DFI")
    assert dfi["status"] == "met" and "synchronous" in dfi["impliedBy"]
    # node-positive 1 + synchronous (DFI < 12) 1 + two tumours 1 + 30 mm 0 + CEA 12 0
    assert (fong["min"], fong["max"], fong["missing"]) == (3, 3, [])


def test_metachronous_without_dfi_leaves_the_component_open(lookup):
    answer = lookup.evaluate(record({"id": "m", "primaryTumor": {"nodePositive": True},
                                     "liverMetastases": {"count": 2, "largestDiameterMm": 30, "timing": "metachronous"},
                                     "ceaNgPerMl": 12}))
    fong = answer["derived"]["fongScore"]
    assert (fong["min"], fong["max"]) == (2, 3) and fong["missing"] == ["liverMetastases.diseaseFreeIntervalMonths"]


def test_interval_logic_of_an_implied_range():
    # DFI in [0, 12): "< 12" always holds, ">= 12" never, "< 6" depends on the value
    assert derived._interval_holds("LessThan", 12, 0.0, 12.0) is True
    assert derived._interval_holds("GreaterThanOrEqual", 12, 0.0, 12.0) is False
    assert derived._interval_holds("LessThan", 6, 0.0, 12.0) is None
    assert derived._interval_holds("Equal", 24, 0.0, 12.0) is False


def test_liver_only_patient_is_outside_the_esmo_lung_ablation_recommendation(answers):
    # Seed 000 Figure 1 footnote a: "In patients with lung-only metastases or OMD including lung lesions, TA may be considered"
    answer = answers["chemo-naive-liver-only.json"]  # extrahepaticDisease: false
    rec = by_id(answer["recommendations"], "Rec_ESMO_TALungWithResection")
    assert LUNG_WORDING in by_id(rec["population"], "Rec_ESMO_TALungWithResection_CritLung")["sourceWording"]
    assert rec["applicability"] == "does-not-apply"
    assert by_id(rec["population"], "Rec_ESMO_TALungWithResection_CritLung")["impliedBy"].startswith("no extrahepatic disease")
    assert all(s["id"] != "Rec_ESMO_TALungWithResection" for s in answer["summary"]["recommendations"])
    # and it applies to a patient with lung metastases
    assert by_id(answers["ras-mutant-right-lung.json"]["recommendations"], "Rec_ESMO_TALungWithResection")["applicability"] == "applies"


def test_no_extrahepatic_disease_decides_every_site_criterion(lookup, answers):
    site = paths.CRLM + "extrahepaticSite"
    site_criteria = {c.iri.rsplit("/", 1)[-1] for c in lookup.structure.criteria.values() if c.characteristic == site and c.evaluable}
    assert site_criteria, "the graph has site criteria"
    for name in ("chemo-naive-liver-only.json", "synchronous-no-dfi.json"):
        answer = answers[name]
        entries = [c for t in answer["trials"] for c in t["criteria"]] + [c for s in answer["recommendations"] for c in s["population"]]
        decided = [c for c in entries if c["id"] in site_criteria]
        assert decided and all(c["status"] != "unknown" for c in decided)


def test_chemo_naive_decides_first_line_criteria_and_is_not_asked_for_a_response(lookup, answers):
    # LIGRO (seed 002): exclusion "progression on preoperative therapy"; a chemo-naive patient had no such therapy
    answer = answers["chemo-naive-liver-only.json"]
    ligro_progression = by_id(by_id(answer["trials"], "LIGRO")["criteria"], "LIGRO_CritProgression")
    assert PROGRESSION_WORDING in ligro_progression["sourceWording"].lower()
    assert ligro_progression["status"] == "met" and ligro_progression["excludes"] is False
    assert "priorTherapy.response" not in by_id(answer["trials"], "LIGRO")["missingFields"]
    prior_criteria = {c.iri.rsplit("/", 1)[-1] for c in lookup.structure.criteria.values()
                      if c.characteristic in PRIOR_THERAPY_CHARACTERISTICS and c.evaluable}
    entries = [c for t in answer["trials"] for c in t["criteria"]] + [c for s in answer["recommendations"] for c in s["population"]]
    decided = [c for c in entries if c["id"] in prior_criteria]
    assert decided and all(c["status"] != "unknown" for c in decided), [c["id"] for c in decided if c["status"] == "unknown"]
    # the fields are not asked for anywhere
    assert not {"priorTherapy.response", "priorTherapy.oxaliplatin", "priorTherapy.irinotecan"} & \
        {d["field"] for d in answer["summary"]["decidingFields"]}


def test_pretreated_progressive_patient_is_excluded_by_ligro(answers):
    criterion = by_id(by_id(answers["pretreated-oxaliplatin-progressive.json"]["trials"], "LIGRO")["criteria"], "LIGRO_CritProgression")
    assert criterion["status"] == "not-met" and criterion["excludes"] is True


def test_missing_fields_name_what_left_every_verdict_unknown(answers):
    for name, answer in answers.items():
        for trial in answer["trials"]:
            unknown = [c for c in trial["criteria"] if c["status"] == "unknown" and c["evaluable"]]
            for c in unknown:
                assert c["missingFields"], (name, trial["id"], c["id"])
            if trial["status"] == "undetermined" and unknown:
                assert trial["missingFields"], (name, trial["id"])
        for statement in answer["recommendations"]:
            unknown = [c for c in statement["population"] if c["status"] == "unknown" and c["evaluable"]]
            if statement["applicability"] == "unknown" and unknown:
                assert statement["missingFields"], (name, statement["id"])


def test_derived_characteristic_names_the_field_it_derives_from(lookup):
    # sidedness comes from the location: a record without location is asked for primaryTumor.location
    answer = lookup.evaluate(record({"id": "no-location", "molecular": {"ras": "wild-type"},
                                     "liverMetastases": {"resectability": "unresectable"}}))
    rec = by_id(answer["recommendations"], "Rec_NCCN_AntiEGFRLeftSidedOnly")
    assert rec["applicability"] == "unknown" and "primaryTumor.location" in rec["missingFields"]


def test_exclusion_criteria_say_whether_they_exclude(answers):
    seen = set()
    for answer in answers.values():
        for trial in answer["trials"]:
            for c in trial["criteria"]:
                if c["kind"] == "exclusion":
                    expected = {"met": False, "not-met": True, "unknown": None}[c["status"]]
                    assert c["excludes"] is expected
                    seen.add(c["excludes"])
                else:
                    assert "excludes" not in c
    assert seen == {True, False, None}


def test_a_wording_only_alternative_keeps_an_any_of_group_undecided(lookup):
    """OLIVIA admits "no upfront R0/R1 possible, remnant < 30 %, or contact with major vessels"
    (references.md). The record cannot express vessel contact: a resectable patient with a 45 %
    remnant fails the two evaluable alternatives but may meet the third, so OLIVIA is
    undetermined for them, never ineligible."""
    answer = lookup.evaluate(record({"id": "olivia-probe", "age": 60, "ecog": 0,
                                     "liverMetastases": {"count": 3, "largestDiameterMm": 30, "resectability": "resectable"},
                                     "extrahepaticDisease": False, "liver": {"futureLiverRemnantPercent": 45},
                                     "priorTherapy": {"systemicChemotherapy": False}, "molecular": {"ras": "wild-type"}}))
    olivia = by_id(answer["trials"], "OLIVIA")
    statuses = {c["id"]: (c["status"], c["evaluable"]) for c in olivia["criteria"]}
    assert statuses["OLIVIA_CritNoUpfrontR0R1"] == ("not-met", True)
    assert statuses["OLIVIA_CritRemnantBelow30"] == ("not-met", True)
    assert statuses["OLIVIA_CritMajorVesselContact"] == ("unknown", False)
    assert olivia["status"] == "undetermined"
