"""FHIR R4 mCODE bundles (issue 16): each example bundle maps to exactly its record and gets the
same evidence answer; malformed FHIR is refused naming resource and element; conflicts and a
second patient are refused."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from crlm_kg import fhir, patients
from crlm_kg.evidence import EvidenceLookup

ROOT = Path(__file__).resolve().parent.parent
FHIR_EXAMPLES = ROOT / "data" / "examples" / "fhir"
BUNDLES = sorted(FHIR_EXAMPLES.glob("*.fhir.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def expected_record(bundle_path: Path) -> dict:
    return load(bundle_path.with_name(bundle_path.name.replace(".fhir.json", ".record.json")))


def flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def entry(bundle: dict, resource_id: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == resource_id)


def test_there_are_at_least_four_example_bundles_each_for_an_existing_example_patient():
    assert len(BUNDLES) >= 4
    for path in BUNDLES:
        original = load(patients.EXAMPLES / path.name.replace(".fhir.json", ".json"))
        expected = flatten(expected_record(path))
        # the record beside a bundle is the example patient restricted to the fields FHIR carries
        assert {k: original_value for k, original_value in flatten(original).items() if k in expected} == expected, path.name


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_each_example_bundle_maps_to_exactly_its_record(path):
    mapping = fhir.records_from_bundle(load(path))
    assert mapping.errors == []
    assert mapping.records == [expected_record(path)]


@pytest.fixture(scope="module")
def lookup(repo_store):
    return EvidenceLookup(repo_store)


@pytest.mark.parametrize("path", BUNDLES, ids=lambda p: p.name)
def test_each_example_bundle_gets_the_identical_evidence_answer(lookup, path):
    report, from_fhir = patients.parse_and_validate(path.read_bytes(), content_type="application/fhir+json")
    assert report.conforms, report.to_text()
    assert report.format == "fhir" and report.fhir_unmapped is not None
    report_json, from_json = patients.parse_and_validate(json.dumps(expected_record(path)).encode(), content_type="application/json")
    assert report_json.conforms, report_json.to_text()
    assert lookup.evaluate(from_fhir[0]) == lookup.evaluate(from_json[0])


def test_a_fhir_file_is_recognised_by_its_name_and_by_its_content():
    path = FHIR_EXAMPLES / "braf-v600e.fhir.json"
    by_name = patients.validate_document(path.read_bytes(), filename=str(path))
    by_content = patients.validate_document(path.read_bytes(), content_type="application/json")
    assert by_name.conforms and by_name.format == "fhir"
    assert by_content.conforms and by_content.format == "fhir"


def test_unmapped_resources_are_reported_not_dropped():
    report = patients.validate_document((FHIR_EXAMPLES / "braf-v600e.fhir.json").read_bytes(), content_type="application/fhir+json")
    assert {"resource": "MedicationAdministration/oxaliplatin-1", "element": "code"}.items() <= report.fhir_unmapped[0].items()
    assert report.to_json()["fhirUnmapped"] == report.fhir_unmapped


def test_cea_in_micrograms_per_litre_and_the_most_recent_value():
    bundle = load(FHIR_EXAMPLES / "case-resectable-ras-wild-type.fhir.json")
    assert entry(bundle, "cea-latest")["valueQuantity"]["code"] == "ug/L"
    assert fhir.records_from_bundle(bundle).records[0]["ceaNgPerMl"] == 12
    entry(bundle, "cea-old")["effectiveDateTime"] = "2024-05-21"  # now the later one
    assert fhir.records_from_bundle(bundle).records[0]["ceaNgPerMl"] == 31


def test_two_cea_values_on_the_same_date_are_an_error_naming_both():
    bundle = load(FHIR_EXAMPLES / "case-resectable-ras-wild-type.fhir.json")
    entry(bundle, "cea-old")["effectiveDateTime"] = "2024-05-20"
    mapping = fhir.records_from_bundle(bundle)
    assert len(mapping.errors) == 1
    assert "Observation/cea-old" in mapping.errors[0]["resource"] and "Observation/cea-latest" in mapping.errors[0]["resource"]
    report = patients.validate_document(json.dumps(bundle).encode(), content_type="application/fhir+json")
    assert not report.conforms and "Observation/cea-latest" in report.violations[0].field


def test_malformed_fhir_is_refused_naming_resource_and_element():
    bundle = load(FHIR_EXAMPLES / "case-resectable-high-fong.fhir.json")
    entry(bundle, "cea")["valueQuantity"]["value"] = "two hundred and fifty"
    entry(bundle, "primary")["onsetDateTime"] = "last spring"
    report = patients.validate_document(json.dumps(bundle).encode(), content_type="application/fhir+json")
    assert not report.conforms and report.records == 0
    fields = [v.field for v in report.violations]
    assert "Observation/cea valueQuantity.value" in fields
    assert any(f.startswith("Condition/primary onsetDateTime") for f in fields)


def test_a_bundle_that_is_not_a_bundle_or_has_no_patient_is_refused():
    assert fhir.records_from_bundle({"resourceType": "Patient", "id": "x"}).errors[0]["element"] == "resourceType"
    empty = fhir.records_from_bundle({"resourceType": "Bundle", "type": "collection", "entry": []})
    assert empty.records == [] and "no Patient" in empty.errors[0]["message"]


def two_patient_bundle() -> dict:
    first = load(FHIR_EXAMPLES / "braf-v600e.fhir.json")
    second = load(FHIR_EXAMPLES / "case-resectable-high-fong.fhir.json")
    for e in second["entry"]:  # the second patient's resource ids must not collide with the first's
        if e["resource"]["resourceType"] != "Patient":
            e["resource"]["id"] = "p2-" + e["resource"]["id"]
    first["entry"] += second["entry"]
    return first


def test_a_bundle_with_two_patients_gives_two_records_grouped_by_subject():
    mapping = fhir.records_from_bundle(two_patient_bundle())
    assert mapping.errors == []
    assert mapping.records == [expected_record(FHIR_EXAMPLES / "braf-v600e.fhir.json"),
                               expected_record(FHIR_EXAMPLES / "case-resectable-high-fong.fhir.json")]


def test_age_at_the_bundle_timestamp_else_today():
    bundle = load(FHIR_EXAMPLES / "braf-v600e.fhir.json")  # born 1970-02-11, timestamp 2024-06-01
    assert fhir.records_from_bundle(bundle).records[0]["age"] == 54
    del bundle["timestamp"]
    assert fhir.records_from_bundle(bundle, today=dt.date(2030, 2, 10)).records[0]["age"] == 59
    assert fhir.records_from_bundle(bundle, today=dt.date(2030, 2, 11)).records[0]["age"] == 60


def test_synchronous_when_liver_metastases_are_found_within_the_month_of_the_primary():
    bundle = load(FHIR_EXAMPLES / "case-resectable-high-fong.fhir.json")  # primary 2023-05-03
    liver = entry(bundle, "liver-metastases")
    liver["onsetDateTime"] = "2023-05-20"
    record = fhir.records_from_bundle(bundle).records[0]
    assert record["liverMetastases"]["timing"] == "synchronous" and record["liverMetastases"]["diseaseFreeIntervalMonths"] == 0
    liver["onsetDateTime"] = "2024-06-03"
    record = fhir.records_from_bundle(bundle).records[0]
    assert record["liverMetastases"] == {**record["liverMetastases"], "timing": "metachronous", "diseaseFreeIntervalMonths": 13}


def test_braf_without_v600e_and_an_unverified_code_is_unmapped():
    bundle = load(FHIR_EXAMPLES / "braf-v600e.fhir.json")
    braf = entry(bundle, "braf")
    braf["component"][1]["valueCodeableConcept"]["text"] = "p.Gly469Ala"
    assert fhir.records_from_bundle(bundle).records[0]["molecular"]["braf"] == "non-V600E"
    t_category = entry(bundle, "t-category")
    t_category["valueCodeableConcept"]["coding"][0]["code"] = "999999999"  # not in the verified table
    mapping = fhir.records_from_bundle(bundle)
    assert "tStage" not in mapping.records[0]["primaryTumor"]
    assert {"resource": "Observation/t-category", "element": "valueCodeableConcept"}.items() <= next(
        u for u in mapping.unmapped if u["resource"] == "Observation/t-category").items()
