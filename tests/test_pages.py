"""The pages for people, through the ASGI app: HTML is negotiated on the data's own IRIs while every
other client keeps its JSON or Turtle; the pages say what the graph says; the API documentation is
served from local files; the evidence form validates field by field and shows the lookup's summary."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from crlm_kg.api import api_docs
from crlm_kg.api.app import create_app
from crlm_kg import paths, patients
from crlm_kg.settings import Settings

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HTML = {"accept": BROWSER_ACCEPT}
EXAMPLE = paths.EXAMPLES_DIR / "patients" / "case-resectable-high-fong.json"
FOREIGN = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(repo_store):
    with TestClient(create_app(Settings(query_workers=1), repo_store)) as c:
        yield c


def text_of(response) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


@pytest.mark.parametrize("path,data_media", [
    ("/studies/EORTC40983", "application/json"), ("/data/EORTC40983", "text/turtle"), ("/ontology/OverallSurvival", "text/turtle"),
    ("/studies", "application/json"),
])
def test_a_browser_gets_a_page_on_the_data_iri_and_other_clients_keep_their_format(client, path, data_media):
    page = client.get(path, headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert "Accept" in page.headers["vary"] and "script-src 'none'" in page.headers["content-security-policy"]
    assert client.get(path).headers["content-type"].startswith(data_media)  # no Accept: the data, as before
    assert client.get(path, headers={"accept": "*/*"}).headers["content-type"].startswith(data_media)
    assert client.get(path, headers={"accept": "application/json"}).headers["content-type"].startswith("application/json")
    assert client.get(path, params={"format": "html"}).headers["content-type"].startswith("text/html")
    assert client.get(path, headers={"accept": "text/html;q=0.5, application/json"}).headers["content-type"].startswith("application/json")


def test_pages_load_nothing_from_other_hosts(client):
    for path in ("/", "/studies", "/studies/EORTC40983", "/ontology/RasMutantPatient", "/terms?q=ras", "/endpoints/OverallSurvival",
                 "/evidence/form", "/docs", "/redoc"):
        r = client.get(path, headers=HTML)
        assert r.status_code == 200, (path, r.status_code)
        assert not FOREIGN.findall(r.text.split("<main", 1)[0]), path  # the head: scripts, styles, fonts, icons
        assert "googleapis" not in r.text and "cdn." not in r.text, path


def test_landing_page_names_the_data_version_counts_and_every_part(client):
    r = client.get("/", headers=HTML)
    page = text_of(r)
    version = client.get("/", headers={"accept": "application/json"}).json()
    assert version["dataVersion"] in page and str(version["counts"]["studies"]) in page
    assert version["counts"]["studies"] == len(client.get("/studies").json())
    for path in ("/studies", "/evidence/form", "/terms", "/sparql", "/docs", "/redoc", "/ontology"):
        assert f'href="{path}"' in r.text


def test_studies_list_filters_by_design_phase_setting_treatment_and_source(client):
    everything = client.get("/studies", headers=HTML).text
    total = int(re.search(r"(\d+) of (\d+) studies", everything).group(2))
    assert total == len(client.get("/studies").json())
    narrowed = client.get("/studies", params={"design": "randomised-controlled-trial", "phase": "3", "setting": "Resectable",
                                              "treatment": "PerioperativeChemotherapy", "source": "Seed001"}, headers=HTML).text
    shown = set(re.findall(r'href="/studies/([A-Za-z0-9_]+)"', narrowed))
    assert "EORTC40983" in shown and 0 < len(shown) < total
    assert set(re.findall(r'href="/studies/([A-Za-z0-9_]+)"', client.get("/studies", params={"q": "NCT00006479"}, headers=HTML).text)) == {"EORTC40983"}


def test_study_page_shows_design_links_arms_criteria_tree_and_every_outcome(client, lookup):
    r = client.get("/studies/EORTC40983", headers=HTML)
    page = text_of(r)
    for expected in ("EORTC 40983 (EPOC)", "randomised controlled trial", "364 randomised", "EORTC 40983 surgery-alone arm",
                     "FOLFOX4, 6 cycles before surgery", "up to 4 liver metastases", "ALL OF".lower()):
        assert expected in page, expected
    assert 'href="https://clinicaltrials.gov/study/NCT00006479"' in r.text
    assert 'href="https://doi.org/10.1016/S0140-6736(08)60455-9"' in r.text
    outcomes = lookup.structure.outcomes[paths.CRLMD + "EORTC40983"]
    assert set(re.findall(r'<a href="/data/(EORTC40983_[A-Za-z0-9_]+)">', r.text)) >= {o["id"] for o in outcomes}
    headings = re.findall(r'<h3 id="ep-\d+">([^<]+)', r.text)
    assert headings[0].strip() == "progression-free survival"  # the primary endpoint first
    assert "0.79 (0.62–1.02)" in page and "p = 0.058" in page
    conflicting = next(o for o in outcomes if o["id"] == "EORTC40983_PFSHazardRatioITT_SCR")
    assert conflicting["conflictsWith"] and r.text.count('class="conflict"') >= 1
    assert page.count("Conflicts with") == sum(1 for o in outcomes if o["conflictsWith"])
    assert r.text.count("<svg ") >= 1 and 'aria-label="Forest plot: progression-free survival: hazard ratio"' in r.text


def test_term_page_has_definition_parents_children_restrictions_and_usages(client):
    page = text_of(client.get("/ontology/RasMutantPatient", headers=HTML))
    assert "RAS" in page and "Restrictions" in page and "equivalent to" in page
    survival = client.get("/ontology/OverallSurvival", headers=HTML)
    text = text_of(survival)
    assert "overall survival" in text.lower() and "Parents" in text
    assert 'href="/studies/EORTC40983"' in survival.text  # a figure on this endpoint, with its study
    endpoint = text_of(client.get("/ontology/TimeToEventEndpoint", headers=HTML))
    assert "overall survival" in endpoint.lower()  # a child
    assert client.get("/ontology/NoSuchTerm", headers=HTML).status_code == 404


def test_term_search_matches_labels_and_synonyms(client):
    by_synonym = client.get("/terms", params={"q": "ECOG"}, headers=HTML).text
    assert 'href="/ontology/ecogPerformanceStatus"' in by_synonym
    assert 'href="/ontology/OverallSurvival"' in client.get("/terms", params={"q": "overall surv"}).text
    assert "0 term(s)" in text_of(client.get("/terms", params={"q": "zzzz-no-such"}))


def test_endpoint_page_gathers_ratios_across_studies_with_a_forest_plot(client):
    data = client.get("/endpoints/OverallSurvival", headers={"accept": "application/json"}).json()
    ratios = [r for r in data["results"] if r["comparisonClass"] == "HazardRatio" and r["ciLower"] is not None]
    assert len({r["study"] for r in ratios}) >= 2
    page = client.get("/endpoints/OverallSurvival", headers=HTML).text
    for row in ratios:
        assert f'href="/studies/{row["study"]}"' in page
    assert "<svg " in page
    narrowed = client.get("/endpoints/OverallSurvival", params={"treatment": "PerioperativeChemotherapy"}, headers={"accept": "application/json"}).json()
    assert 0 < len(narrowed["results"]) < len(data["results"])
    assert client.get("/endpoints/NoSuchEndpoint", headers=HTML).status_code == 404


def test_api_docs_are_served_from_local_files(client):
    docs = client.get("/docs")
    assert '/static/apidocs/swagger-ui-dist/swagger-ui-bundle.js' in docs.text and "cdn.jsdelivr" not in docs.text
    redoc = client.get("/redoc")
    assert '/static/apidocs/redoc/bundles/redoc.standalone.js' in redoc.text and "fonts.googleapis" not in redoc.text
    bundle = client.get("/static/apidocs/redoc/bundles/redoc.standalone.js")
    assert bundle.status_code == 200 and "cdn.redoc.ly/redoc/logo-mini.svg" not in bundle.text
    assert client.get("/static/apidocs/swagger-ui-dist/swagger-ui.css").status_code == 200
    assert client.get("/static/apidocs/../package.json").status_code == 404
    assert client.get("/static/apidocs/swagger-ui-dist/package.json").status_code == 404


def test_api_docs_say_plainly_when_the_viewers_are_not_installed(client, monkeypatch, tmp_path):
    monkeypatch.setattr(api_docs, "modules_dir", lambda: tmp_path)
    for path, name in (("/docs", "Swagger UI"), ("/redoc", "ReDoc")):
        r = client.get(path)
        assert r.status_code == 503 and f"{name} is not installed" in r.text and 'href="/openapi.json"' in r.text


def test_evidence_form_has_every_contract_field_with_a_label_and_its_rule(client):
    form = client.get("/evidence/form").text
    for spec in patients.contract().fields.values():
        control = "f-" + spec.path.replace(".", "-")
        if spec.multiple:
            assert f'name="{spec.path}"' in form
            continue
        assert f'<label for="{control}">' in form and f'id="{control}"' in form, spec.path
        for code in spec.codes:
            assert f'value="{code}"' in form
    assert "Must be an integer from 18 to 110 (age in years)." in html.unescape(form)


def test_evidence_form_shows_validation_messages_next_to_their_fields(client):
    r = client.post("/evidence/form", data={"id": "form-1", "age": "7", "liverMetastases.count": "two", "sex": "female"})
    assert r.status_code == 422
    errors = dict(re.findall(r'<p class="error" id="f-([A-Za-z-]+)-error">([^<]+)</p>', r.text))
    assert set(errors) == {"age", "liverMetastases-count"}
    assert "18 to 110" in errors["age"] and "≥ 1" in html.unescape(errors["liverMetastases-count"])
    assert 'value="two"' in r.text and '<option value="female" selected>' in r.text  # what was entered is kept
    assert 'section class="answer"' not in r.text  # nothing evaluated
    bad_json = client.post("/evidence/form", data={"record": "{not json"})
    assert bad_json.status_code == 422 and "not JSON" in bad_json.text


def test_evidence_form_shows_the_lookups_summary_cautions_first(client, answers):
    r = client.post("/evidence/form", data={"record": EXAMPLE.read_text(encoding="utf-8")})
    assert r.status_code == 200
    summary = answers[EXAMPLE.name]["summary"]
    page = html.unescape(r.text)
    assert summary["cautions"] and page.index(summary["cautions"][0]["label"]) < page.index("Derived scores")
    for caution in summary["cautions"]:
        assert f'href="/data/{caution["id"]}"' in r.text
    for trial in summary["trials"]:
        assert f'href="/studies/{trial["id"]}"' in r.text
    for recommendation in summary["recommendations"]:
        assert f'href="/data/{recommendation["id"]}"' in r.text
    derived = answers[EXAMPLE.name]["derived"]
    assert str(derived["tumourBurdenScore"]["value"]) in page and derived["tumourBurdenScore"]["rule"] in page
    for field in summary["decidingFields"]:
        assert f"<code>{field['field']}</code>" in page
    # the same record through the fields gives the same answer
    record = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    fields = {("" if k in ("id",) else "") + k: v for k, v in record.items() if not isinstance(v, dict)}
    form = {k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in fields.items()}
    form.update({f"{nest}.{k}": json.dumps(v) if isinstance(v, bool) else str(v) for nest, inner in record.items() if isinstance(inner, dict)
                 for k, v in inner.items()})
    by_fields = client.post("/evidence/form", data=form)
    assert by_fields.status_code == 200
    assert re.findall(r'href="/studies/([^"]+)"', by_fields.text) == re.findall(r'href="/studies/([^"]+)"', r.text)


def test_a_broken_link_gets_a_page_saying_why_and_data_clients_keep_the_problem_report(client):
    for path in ("/studies/NoSuchStudy", "/data/NoSuchNode", "/ontology/NoSuchTerm", "/endpoints/NoSuchEndpoint"):
        page = client.get(path, headers=HTML)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path
        assert "No such" in text_of(page)
        assert client.get(path, headers={"accept": "application/json"}).headers["content-type"] == "application/problem+json", path


def test_a_statement_page_lists_its_facts_with_links(client, answers):
    caution = answers[EXAMPLE.name]["summary"]["cautions"][0]
    r = client.get(f"/data/{caution['id']}", headers=HTML)
    assert r.status_code == 200 and html.escape(caution["label"], quote=False) in r.text
    assert 'href="/data/Seed000"' in r.text or 'href="/data/Seed001"' in r.text or 'href="/data/CheckedReferences"' in r.text


def test_evidence_form_takes_an_uploaded_record_file(client):
    """The page posts multipart: an uploaded JSON file gives the same trials as the pasted text,
    and its validation messages are shown like a pasted record's."""
    text = EXAMPLE.read_text(encoding="utf-8")
    pasted = client.post("/evidence/form", data={"record": text})
    uploaded = client.post("/evidence/form", data={"id": ""}, files={"recordFile": ("patient.json", text.encode(), "application/json")})
    assert uploaded.status_code == 200
    assert re.findall(r'href="/studies/([^"]+)"', uploaded.text) == re.findall(r'href="/studies/([^"]+)"', pasted.text)
    broken = client.post("/evidence/form", files={"recordFile": ("bad.json", b'{"id": "u-1", "age": 7}', "application/json")})
    assert broken.status_code == 422 and "age" in html.unescape(broken.text)


def test_a_malformed_multipart_form_is_a_400_naming_the_rule(client):
    r = client.post("/evidence/form", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 400 and "multipart" in r.text
    two_files = client.post("/evidence/form", files=[("recordFile", ("a.json", b"{}", "application/json")),
                                                     ("recordFile", ("b.json", b"{}", "application/json"))])
    assert two_files.status_code == 400
