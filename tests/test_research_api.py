"""Named queries over HTTP: content negotiation, the CLI's JSON shape, allowed values (issue 15)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api.app import create_app
from crlm_kg import paths
from crlm_kg.queries import QueryLibrary, format_table
from crlm_kg.settings import Settings

D = paths.CRLMD
HR = "/queries/hazard-ratios-by-endpoint"


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


@pytest.mark.parametrize("accept,fmt,media", [
    ("text/csv", None, "text/csv"), ("text/tab-separated-values", None, "text/tab-separated-values"),
    ("application/sparql-results+xml", None, "application/sparql-results+xml"), ("application/xml", None, "application/xml"),
    (None, "csv", "text/csv"), ("application/json", "tsv", "text/tab-separated-values"), (None, "xml", "application/sparql-results+xml"),
    (None, None, "application/json"), ("text/html, */*;q=0.1", None, "application/json"),
])
def test_named_query_negotiates_the_format(client, accept, fmt, media):
    params = {"endpoint": "OverallSurvival", **({"format": fmt} if fmt else {})}
    r = client.get(HR, params=params, headers={"accept": accept} if accept else {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media
    if media == "text/csv":
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert any(row["study"] == D + "FIRE3" and row["hr"] == "0.77" for row in rows)
    elif media == "text/tab-separated-values":
        lines = [line.split("\t") for line in r.text.splitlines()]
        assert any(cells[0] == D + "FIRE3" for cells in lines[1:])
    elif media.endswith("xml"):
        root = ET.fromstring(r.content)
        assert root.tag == "{http://www.w3.org/2005/sparql-results#}sparql" and len(root.findall(".//{*}result")) > 5
    else:
        assert r.json()["query"] == "hazard-ratios-by-endpoint"


def test_http_json_is_the_cli_json_with_nulls(client, repo_store):
    body = client.get(HR, params={"endpoint": "OverallSurvival"}).json()
    library = QueryLibrary.load()
    columns, rows = library.run(repo_store, "hazard-ratios-by-endpoint", {"endpoint": "OverallSurvival"})
    assert body == json.loads(format_table(columns, rows, "json", "hazard-ratios-by-endpoint"))
    assert all(list(row) == body["columns"] for row in body["rows"])
    assert any(row["pValue"] is None for row in body["rows"])


def test_unacceptable_and_unknown_formats(client):
    assert client.get(HR, params={"endpoint": "OverallSurvival"}, headers={"accept": "image/png"}).status_code == 406
    r = client.get(HR, params={"endpoint": "OverallSurvival", "format": "pdf"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "format"


def test_unknown_value_is_a_400_listing_the_allowed_ones(client):
    r = client.get("/queries/rcts-by-setting", params={"setting": "operable"})
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["field"] == "setting" and error["rule"] == "allowed-values"
    assert {a["value"] for a in error["allowed"]} == {"Resectable", "BorderlineResectable", "Unresectable"}
    r = client.get("/queries/hazard-ratios-by-endpoint", params={"endpoint": "Foo"})
    assert r.status_code == 400 and "OverallSurvival" in r.json()["detail"]


def test_parameters_match_case_insensitively_on_codes_and_labels(client):
    lower = client.get("/queries/rcts-by-setting", params={"setting": "resectable"}).json()["rows"]
    code = client.get("/queries/rcts-by-setting", params={"setting": "Resectable"}).json()["rows"]
    assert lower == code and any(row["study"] == D + "EORTC40983" for row in lower)
    rct = client.get("/queries/studies-by-design", params={"design": "RCT"}).json()["rows"]
    assert any(row["study"] == D + "CELIM" for row in rct)


def test_queries_lists_allowed_values(client):
    listed = {q["name"]: q for q in client.get("/queries").json()}
    setting = listed["rcts-by-setting"]["parameters"][0]
    assert {"value": "Resectable", "label": "resectable"} in setting["allowedValues"]
    grade = listed["recommendations-by-grade"]["parameters"][0]
    assert grade["allowedValues"] is None  # free text


def test_pooled_answers_and_refuses(client):
    ok = client.get("/pooled", params={"endpoint": "ProgressionFreeSurvival", "intervention": "Chemotherapy", "setting": "Resectable", "design": "any"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["k"] == 2 and round(body["pooledHr"], 3) == 0.776 and body["tau2"] == 0.0
    assert {s["figure"] for s in body["studies"]} == {D + "EORTC40983_PFSHazardRatioITT_SCR", D + "Mitry2008PooledAdjuvant_PFSHazardRatio_S001"}
    refused = client.get("/pooled", params={"figure": ["EORTC40983_PFSHazardRatioITT_SCR", "JCOG0603_DFSHazardRatio_S001"]})
    assert refused.status_code == 422 and "different endpoints" in refused.json()["detail"]
    too_few = client.get("/pooled", params={"endpoint": "ProgressionFreeSurvival", "intervention": "Chemotherapy", "setting": "Resectable"})
    assert too_few.status_code == 422 and any("not a randomised trial" in e["reason"] for e in too_few.json()["excluded"])
    assert client.get("/pooled", params={"design": "cohort"}).status_code == 422  # a documented enum, refused by validation
