"""The API accepts a FHIR bundle as application/fhir+json (issue 16): same answer as the JSON
record, 422 naming resource and element for malformed FHIR, two patients refused on /evidence."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg.settings import Settings

from test_fhir import FHIR_EXAMPLES, entry, expected_record, load, two_patient_bundle

FHIR = {"content-type": "application/fhir+json"}
BUNDLE = FHIR_EXAMPLES / "case-resectable-ras-wild-type.fhir.json"


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


def test_evidence_for_a_bundle_is_the_evidence_for_its_record(client):
    from_fhir = client.post("/evidence", content=BUNDLE.read_bytes(), headers=FHIR)
    from_json = client.post("/evidence", content=json.dumps(expected_record(BUNDLE)), headers={"content-type": "application/json"})
    assert from_fhir.status_code == 200, from_fhir.text[:500]
    assert from_json.status_code == 200
    answer = from_fhir.json()
    answer.pop("fhirUnmapped", None)  # beside the answer, tested below
    assert answer == from_json.json()


def test_the_evidence_answer_lists_what_the_bundle_held_that_was_not_mapped(client):
    """Nothing in a bundle is dropped silently: the unmapped medication comes back beside the answer."""
    response = client.post("/evidence", params={"view": "summary"}, content=(FHIR_EXAMPLES / "braf-v600e.fhir.json").read_bytes(), headers=FHIR)
    assert response.status_code == 200, response.text[:500]
    assert [u["resource"] for u in response.json()["fhirUnmapped"]] == ["MedicationAdministration/oxaliplatin-1"]
    plain = client.post("/evidence", content=json.dumps(expected_record(BUNDLE)), headers={"content-type": "application/json"})
    assert "fhirUnmapped" not in plain.json()


def test_validate_reports_the_unmapped_elements(client):
    response = client.post("/patients/validate", content=(FHIR_EXAMPLES / "braf-v600e.fhir.json").read_bytes(), headers=FHIR)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["conforms"] is True and body["format"] == "fhir"
    assert [u["resource"] for u in body["fhirUnmapped"]] == ["MedicationAdministration/oxaliplatin-1"]


def test_malformed_fhir_is_a_422_naming_resource_and_element(client):
    bundle = load(BUNDLE)
    entry(bundle, "ecog")["valueInteger"] = "zero"
    response = client.post("/evidence", content=json.dumps(bundle), headers=FHIR)
    assert response.status_code == 422
    assert "Observation/ecog valueInteger" in response.text


def test_two_patients_to_evidence_are_refused_and_the_batch_evaluates_both(client):
    body = json.dumps(two_patient_bundle())
    single = client.post("/evidence", content=body, headers=FHIR)
    assert single.status_code == 422
    assert "batch" in single.text and "2" in single.text
    batch = client.post("/evidence/batch", content=body, headers=FHIR)
    assert batch.status_code == 200, batch.text[:500]
    assert "ex-braf-v600e" in batch.text and "case-resectable-high-fong" in batch.text
