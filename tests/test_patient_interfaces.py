"""The patient validation through its two doors: ``crlm-kg validate`` and ``POST /patients/validate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crlm_kg import patients

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("crlm-kg"))
EXAMPLES = ROOT / "data" / "examples"


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "validate", *args], input=stdin, capture_output=True, timeout=120)


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_valid_record_exits_0():
    result = run_cli(str(EXAMPLES / "patients" / "borderline-ras-mutant.json"))
    assert result.returncode == 0, result.stderr
    assert b"valid: 1 patient record conforms" in result.stdout


@pytest.mark.slow
def test_cli_invalid_record_exits_1_with_the_violation():
    result = run_cli(str(EXAMPLES / "invalid" / "count-zero.json"))
    assert result.returncode == 1
    assert "liverMetastases.count [minInclusive] liverMetastases.count must be an integer ≥ 1" in result.stdout.decode()
    assert b"Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_cli_json_format_and_turtle():
    result = run_cli("--format", "json", str(EXAMPLES / "invalid" / "turtle-invalid.ttl"))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["format"] == "turtle" and report["conforms"] is False
    assert {(v["field"], v["rule"]) for v in report["violations"]} >= {("age", "maxInclusive"), ("molecular.ras", "in")}


@pytest.mark.slow
@pytest.mark.parametrize("stdin", [b"\xff\xfe\x00garbage", b"{not json", b"[" * 50000, b'{"id": "x> <y"}', b""])
def test_cli_malformed_input_exits_1_without_traceback(stdin):
    result = run_cli("-", stdin=stdin)
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr + result.stdout
    assert result.stdout.strip()


@pytest.mark.slow
def test_cli_missing_file():
    result = run_cli("/nonexistent/patient.json")
    assert result.returncode == 1
    assert b"cannot read" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_batch_of_examples():
    records = [json.loads(p.read_text()) for p in sorted((EXAMPLES / "patients").glob("*.json"))]
    result = run_cli("-", stdin=json.dumps(records).encode())
    assert result.returncode == 0, result.stdout
    assert f"valid: {len(records)} patient records conform".encode() in result.stdout


# --------------------------------------------------------------------------- API


@pytest.fixture(scope="module")
def client():
    from crlm_kg.api.app import create_app
    from crlm_kg.store import EmbeddedStore

    return TestClient(create_app(store=EmbeddedStore([])))


def test_api_valid_json(client):
    body = (EXAMPLES / "patients" / "resectable-ras-wild-type.json").read_bytes()
    response = client.post("/patients/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"conforms": True, "records": 1, "format": "json", "violationCount": 0, "violations": []}


def test_api_invalid_is_422_problem_with_errors_and_report(client):
    body = json.dumps({"id": "p-9", "age": 12, "liverMetastases": {"timing": "synchronous", "diseaseFreeIntervalMonths": 3}})
    response = client.post("/patients/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] == "Invalid patient record"
    assert [(e["field"], e["rule"]) for e in problem["errors"]] == [
        ("age", "minInclusive"), ("liverMetastases.diseaseFreeIntervalMonths", "consistency:synchronous-dfi")]
    assert problem["errors"][0]["message"] == "age must be an integer from 18 to 110 (age in years); got 12"
    assert problem["report"]["conforms"] is False and problem["report"]["violationCount"] == 2
    assert problem["report"]["violations"][0]["record"] == "p-9"


def test_api_turtle_and_jsonld(client):
    ttl = (EXAMPLES / "patients" / "turtle-example.ttl").read_bytes()
    assert client.post("/patients/validate", content=ttl, headers={"content-type": "text/turtle"}).status_code == 200
    ld = (EXAMPLES / "patients" / "jsonld-example.jsonld").read_bytes()
    response = client.post("/patients/validate", content=ld, headers={"content-type": "application/ld+json"})
    assert response.status_code == 200 and response.json()["format"] == "jsonld"
    bad = (EXAMPLES / "invalid" / "turtle-invalid.ttl").read_bytes()
    assert client.post("/patients/validate", content=bad, headers={"content-type": "text/turtle"}).status_code == 422


@pytest.mark.parametrize("body", [b"\xff", b"{", b"[]", b"7", b'{"id": "a\\"> <b"}', b"[" * 20000])
def test_api_malformed_is_422_never_500(client, body):
    response = client.post("/patients/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"]


def test_api_openapi_documents_the_endpoint(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/patients/validate"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "application/ld+json", "text/turtle"}
    assert "422" in operation["responses"] and "200" in operation["responses"]
    schemas = spec["components"]["schemas"]
    assert {"ValidationReportModel", "ViolationModel", "InvalidPatientProblem"} <= set(schemas)


# --------------------------------------------------------------------------- never an exception

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
CONTRACT = patients.contract()
# the contract's own keys (read from the context), nested ones also at the top level where they do not belong
contract_keys = st.sampled_from(["id", *CONTRACT.nests, *dict.fromkeys(spec.term for spec in CONTRACT.fields.values())])


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.dictionaries(contract_keys, json_values, max_size=6)))
def test_any_json_gives_a_report_not_an_exception(value):
    report = patients.validate_document(json.dumps(value).encode(), content_type="application/json")
    json.dumps(report.to_json())
    if not report.conforms:
        assert all(v.field and v.rule and v.message for v in report.violations)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_report_not_an_exception(data):
    report = patients.validate_document(data)
    assert isinstance(report.conforms, bool)
    if not report.conforms:  # a refusal always says what is wrong
        assert report.violations and all(v.field and v.message for v in report.violations)
