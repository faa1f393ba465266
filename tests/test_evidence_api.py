"""/evidence and /evidence/batch serve the contract's summary and applicability, with views,
filters and compression (issue 10, points 4-5), and the CLI gives the same answer."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg import patients
from crlm_kg.settings import Settings

EXAMPLES = sorted(p for p in patients.EXAMPLES.glob("*.json"))
SUMMARY_LIMIT = 30 * 1024  # issue 10: the summary view is at most 30 KB for any example patient


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


def post(client, path, body, **params):
    return client.post(path, params=params, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_summary_view_of_every_example_is_small_and_complete(client, path):
    response = post(client, "/evidence", json.loads(path.read_text()), view="summary")
    assert response.status_code == 200, response.text[:500]
    assert len(response.content) <= SUMMARY_LIMIT, f"{path.name}: {len(response.content)} bytes"
    answer = response.json()
    assert set(answer) == {"patient", "derived", "summary", "dataVersion"}
    summary = answer["summary"]
    assert {"cautions", "recommendations", "trials", "decidingFields"} <= set(summary)
    assert all(r["applicability"] == "applies" for r in summary["recommendations"])
    for trial in summary["trials"]:
        assert trial["status"] in ("eligible", "undetermined")
        assert {"design", "phase", "sampleSize", "registryIds", "recruitment", "headline"} <= set(trial)
        assert trial["recruitment"] in ("recruiting", "completed", "unknown")


def test_full_view_carries_applicability_population_and_excludes(client):
    body = json.loads((patients.EXAMPLES / "ras-mutant-right-lung.json").read_text())
    answer = post(client, "/evidence", body).json()
    assert {"patient", "summary", "derived", "trials", "recommendations", "cautions"} <= set(answer)
    statements = {s["id"]: s for s in answer["recommendations"]}
    assert all(s["applicability"] in ("applies", "does-not-apply", "unknown") for s in statements.values())
    # NCCN footnote ff stays in the full answer once its RAS criterion fails, with the criterion named
    footnote = statements["Rec_NCCN_AntiEGFRLeftSidedOnly"]
    assert footnote["applicability"] == "does-not-apply"
    assert any(c["field"] == "molecular.ras" and c["status"] == "not-met" for c in footnote["population"])
    exclusions = [c for t in answer["trials"] for c in t["criteria"] if c["kind"] == "exclusion"]
    assert exclusions and all(c["excludes"] in (True, False, None) for c in exclusions)
    # "met" of an exclusion criterion means "not excluded": excludes says it without decoding
    assert all(c["excludes"] is (c["status"] == "not-met") for c in exclusions if c["status"] != "unknown")


def test_status_and_include_filters(client):
    body = json.loads((patients.EXAMPLES / "resectable-ras-wild-type.json").read_text())
    full = post(client, "/evidence", body).json()
    eligible = post(client, "/evidence", body, status="eligible").json()
    assert eligible["trials"] == [t for t in full["trials"] if t["status"] == "eligible"] != []
    only_trials = post(client, "/evidence", body, include="trials").json()
    assert set(only_trials) == {"patient", "trials", "dataVersion"}


@pytest.mark.parametrize("params, field", [({"status": "maybe"}, "status"), ({"include": "everything"}, "include")])
def test_unknown_filter_values_are_a_422_naming_the_field(client, params, field):
    body = json.loads((patients.EXAMPLES / "resectable-ras-wild-type.json").read_text())
    response = post(client, "/evidence", body, **params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_unknown_view_is_refused(client):
    body = json.loads((patients.EXAMPLES / "resectable-ras-wild-type.json").read_text())
    response = post(client, "/evidence", body, view="tiny")
    assert response.status_code == 422 and "view" in response.text


def test_batch_serves_the_summary_view(client):
    bodies = [json.loads(p.read_text()) for p in EXAMPLES[:3]]
    answers = post(client, "/evidence/batch", bodies, view="summary").json()
    assert [a["patient"] for a in answers] == [b["id"] for b in bodies]
    assert all(set(a) == {"patient", "derived", "summary", "dataVersion"} for a in answers)


def test_answers_are_gzip_compressed_when_the_client_accepts_it(client):
    body = json.dumps(json.loads((patients.EXAMPLES / "resectable-ras-wild-type.json").read_text()))
    response = client.post("/evidence", content=body, headers={"content-type": "application/json", "accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    raw = client.post("/evidence", content=body, headers={"content-type": "application/json", "accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert response.json() == raw.json()
    assert len(gzip.compress(raw.content)) < len(raw.content) / 4


def test_openapi_documents_the_views_and_an_example_summary(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/evidence"]["post"]
    view = next(p for p in operation["parameters"] if p["name"] == "view")
    assert set(view["schema"]["enum"]) == {"full", "summary"}
    summary = spec["components"]["schemas"]["Summary"]
    assert summary["examples"][0]["trials"][0]["headline"]["value"] == 0.77
    assert {"cautions", "recommendations", "trials", "decidingFields"} <= set(summary["properties"])
    assert "applicability" in spec["components"]["schemas"]["StatementResult"]["properties"]


@pytest.mark.slow
def test_the_cli_gives_the_api_summary(client):
    path = patients.EXAMPLES / "braf-v600e.json"
    cli = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "evidence", str(path), "--view", "summary"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    api = post(client, "/evidence", json.loads(path.read_text()), view="summary").json()
    assert json.loads(cli.stdout) == api


def test_braf_v600e_prognosis_is_a_subgroup_finding_of_a_braf_patient(client):
    """Seed 003's BRAF V600E statement reaches a BRAF V600E patient's summary, not a wild-type one's."""
    braf = json.loads((patients.EXAMPLES / "braf-v600e.json").read_text())
    summary = post(client, "/evidence", braf, view="summary").json()["summary"]
    finding = next(f for f in summary["subgroupFindings"] if f["id"] == "Stmt_BRAFV600EWorsePrognosis")
    assert finding["applicability"] == "applies" and finding["subgroup"] == ["BRAF V600E"]
    wild = dict(braf, molecular={**braf["molecular"], "braf": "wild-type"})
    other = post(client, "/evidence", wild, view="summary").json()["summary"]
    assert all(f["id"] != "Stmt_BRAFV600EWorsePrognosis" for f in other["subgroupFindings"] + other["recommendations"])


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_every_answer_fits_the_documented_response_model(client, lookup):
    """The routes send the answer's JSON without validating it against their response model at each request
    (it cost more than the lookup); this test holds them to it: every example and generated patient's answer, in
    both views and from the batch route, is a valid ``EvidenceResponse`` whose dump is exactly what was sent."""
    from crlm_kg.api.evidence_models import EvidenceResponse
    from crlm_kg.screening.synthetic import synthetic_cohort

    bodies = [json.loads(p.read_text()) for p in EXAMPLES] + synthetic_cohort(25, seed=41)
    for view in ("full", "summary"):
        response = post(client, "/evidence/batch", bodies, view=view)
        assert response.status_code == 200, response.text[:300]
        sent = response.json()
        assert len(sent) == len(bodies)
        for answer in sent:
            model = EvidenceResponse.model_validate(answer)
            assert model.model_dump(mode="json", exclude_unset=True) == answer, answer["patient"]
        single = post(client, "/evidence", bodies[0], view=view)
        assert single.json() == sent[0]
