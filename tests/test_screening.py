"""Cohort screening (issue 17): the verdicts of ``screen`` are those of the per-patient lookup, and
the cohort validation gives pyshacl's verdicts, fields, rules and messages."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crlm_kg import patients, screening
from crlm_kg.cli import main
from crlm_kg.evidence.common import short
from crlm_kg.evidence.lookup import TRIAL_STATUS
from crlm_kg.patients import cohort_check
from crlm_kg.patients.cohort_check import check_cohort, compiled_shapes
from crlm_kg.screening.synthetic import synthetic_cohort
from crlm_kg.settings import Settings
from tests.evidence_helpers import EXAMPLE_FILES

ALL = ("eligible", "undetermined", "ineligible")


def _criteria(entries):
    return [(c["id"], c["status"], c["field"], c["patientValue"], c.get("missingFields")) for c in entries]


def _screened(result) -> dict[tuple[str, str], dict]:
    return {(t["id"], m["patient"]): m for t in result.trials for m in t["matches"]}


def _reference(lookup, record) -> dict[str, tuple[str, list]]:
    """The trials part of ``EvidenceLookup.evaluate`` (one leaf query for this patient alone)."""
    prepared = lookup.prepare(record)
    evaluator, _ = lookup.evaluator(prepared, lookup._leaves(prepared.query_facts, prepared.known))
    out = {}
    for holder in lookup.structure.trials:
        tree = evaluator.evaluate(holder["roots"])
        out[short(holder["iri"])] = (TRIAL_STATUS[tree.status], _criteria(tree.criteria), tree.missing)
    return out


def test_the_patient_shapes_compile():
    """Otherwise every cohort would go to pyshacl: correct, but a hundred records a second."""
    assert compiled_shapes() is not None
    assert len(compiled_shapes().queries) >= 9 and compiled_shapes().closed


def test_screening_gives_the_evidence_answers_verdicts_on_the_examples(lookup, answers):
    items = [json.loads(path.read_text()) for path in EXAMPLE_FILES]
    result = screening.screen(lookup, items, statuses=ALL)
    assert result.valid == len(items) and not result.invalid
    matches = _screened(result)
    compared = 0
    for path, item in zip(EXAMPLE_FILES, items):
        for trial in answers[path.name]["trials"]:
            match = matches[(trial["id"], item["id"])]
            assert match["status"] == trial["status"], (path.name, trial["id"])
            assert _criteria(match["criteria"]) == _criteria(trial["criteria"]), (path.name, trial["id"])
            assert match["missingFields"] == trial["missingFields"]
            compared += 1
    assert compared == len(items) * len(lookup.structure.trials)
    assert {m["status"] for m in matches.values()} == set(ALL)  # the examples exercise every verdict


def test_one_trial_and_the_eligible_only(lookup, answers):
    items = [json.loads(path.read_text()) for path in EXAMPLE_FILES]
    trial = "ATOM"
    result = screening.screen(lookup, items, trial=trial)
    assert [t["id"] for t in result.trials] == [trial]
    expected = sorted(item["id"] for path, item in zip(EXAMPLE_FILES, items)
                      if next(t for t in answers[path.name]["trials"] if t["id"] == trial)["status"] == "eligible")
    assert sorted(m["patient"] for m in result.trials[0]["matches"]) == expected and expected
    with pytest.raises(KeyError):
        screening.screen(lookup, items, trial="NO-SUCH-TRIAL")


def _check_against_pyshacl(items):
    checked = check_cohort(items)
    report, records = patients.parse_and_validate(items, limits=patients.Limits(records=len(items), violations=10 ** 6))
    assert sorted((v.index, v.record, v.field, v.rule, v.message) for v in checked.violations) == \
        sorted((v.index, v.record, v.field, v.rule, v.message) for v in report.violations)
    bad = {v.index for v in report.violations}
    reference = [r for r in records if r.index not in bad]
    assert [(r.index, r.id, r.fields, r.facts()) for r in checked.valid] == [(r.index, r.id, r.fields, r.facts()) for r in reference]
    return checked


@pytest.mark.slow  # pyshacl on ~50 records: 1-2 s
def test_cohort_validation_equals_pyshacl_on_examples_and_broken_records():
    items = [json.loads(path.read_text()) for path in EXAMPLE_FILES]
    items += [json.loads(p.read_text()) for p in sorted((EXAMPLE_FILES[0].parent.parent / "invalid").glob("*.json"))
              if not p.name.endswith(".expected.json")]
    items += synthetic_cohort(16, seed=3, invalid_share=0.5)
    checked = _check_against_pyshacl(items)
    assert checked.violations and checked.valid  # both paths taken


@pytest.mark.slow  # pyshacl once per record: ~1 s
def test_one_record_validation_equals_pyshacl_where_constraints_are_skipped():
    """A constraint whose focus nodes are the subjects of some properties is not run on a record that has none of
    them (the request path's common case: one record): the verdicts stay pyshacl's, valid and invalid."""
    compiled = compiled_shapes()
    items = [json.loads(p.read_text()) for p in sorted((EXAMPLE_FILES[0].parent.parent / "invalid").glob("*.json"))
             if not p.name.endswith(".expected.json")]
    items += synthetic_cohort(40, seed=5, invalid_share=0.5)
    skipped = 0
    for item in items:
        checked = _check_against_pyshacl([item])
        present = {prop for record in checked.valid for prop, _ in record.facts()}
        skipped += sum(1 for needs in compiled.query_targets if needs is not None and needs.isdisjoint(present)) if checked.valid else 0
    assert skipped  # the skip was taken, and the verdicts above held


@pytest.mark.slow
def test_cohort_validation_equals_pyshacl_on_generated_records():
    checked = _check_against_pyshacl(synthetic_cohort(300, seed=11, invalid_share=0.25))
    assert len(checked.valid) > 150


@pytest.mark.slow
def test_screening_gives_the_per_patient_verdicts_on_generated_patients(lookup):
    items = synthetic_cohort(300, seed=5)
    result = screening.screen(lookup, items, statuses=ALL)
    report, records = patients.parse_and_validate(items, limits=patients.Limits(records=len(items)))
    assert report.conforms and result.valid == len(items)
    matches = _screened(result)
    seen = set()
    for record in records:
        for trial, (status, criteria, missing) in _reference(lookup, record).items():
            match = matches[(trial, record.id)]
            assert (match["status"], _criteria(match["criteria"]), match["missingFields"]) == (status, criteria, missing), (record.id, trial)
            seen.add(status)
    assert seen == set(ALL)


def test_csv_and_ndjson_cohorts_report_bad_rows_and_screen_the_rest(lookup):
    csv_text = ("id,age,liverMetastases.count,liverMetastases.timing,extrahepaticDisease,extrahepaticSites,molecular.ras\n"
                "p1,64,2,metachronous,false,,wild-type\n"
                "p2,sixty,2,metachronous,,,mutant\n"
                "p3,70,1,synchronous,true,lung;bone,wild-type\n"
                "p4,70\n")
    cohort = screening.read_cohort(csv_text.encode(), filename="cohort.csv")
    assert cohort.records[2]["extrahepaticSites"] == ["lung", "bone"] and cohort.records[0]["age"] == 64
    assert [(v.record, v.rule) for v in cohort.problems] == [("row 5", "csv")]
    result = screening.screen(lookup, cohort.records, statuses=ALL, labels=cohort.labels)
    assert [(v["record"], v["field"], v["rule"]) for v in result.invalid] == [("p2", "age", "datatype")]
    assert {m["patient"] for t in result.trials for m in t["matches"]} == {"p1", "p3"}

    lines = [json.dumps({"id": "n1", "age": 50}), "{broken", json.dumps({"id": "n2", "liverMetastases": {"count": 0}})]
    cohort = screening.read_cohort("\n".join(lines).encode(), filename="cohort.ndjson")
    assert [(v.record, v.rule) for v in cohort.problems] == [("line 2", "json")]
    result = screening.screen(lookup, cohort.records, labels=cohort.labels, statuses=ALL)
    assert [(v["record"], v["field"], v["rule"]) for v in result.invalid] == [("n2", "liverMetastases.count", "minInclusive")]
    assert result.valid == 1


@pytest.mark.slow  # the CLI loads its own store
def test_cli_screen_writes_csv_rows_and_names_invalid_records(tmp_path, capsys):
    items = [json.loads(path.read_text()) for path in EXAMPLE_FILES[:6]] + [{"id": "bad", "age": 7}]
    cohort = tmp_path / "cohort.ndjson"
    cohort.write_text("\n".join(json.dumps(i) for i in items))
    assert main(["screen", str(cohort), "--trial", "ATOM", "--format", "csv", "--status", "eligible,undetermined"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].startswith("trial,trialLabel,patient,record,trialStatus,criterion")
    assert rows[1:] and all(r.startswith("ATOM,") for r in rows[1:])
    assert "invalid: bad: age [minInclusive]" in err


@pytest.fixture(scope="module")
def client(lookup):
    from api import problems
    from api import screen as screen_api

    app = FastAPI()
    app.state.settings = Settings(max_records=20)
    app.state.lookup = lookup
    problems.install(app)
    app.include_router(screen_api.router)
    return TestClient(app)


def test_post_screen(client, answers):
    items = [json.loads(path.read_text()) for path in EXAMPLE_FILES[:8]] + [{"id": "bad", "liverMetastases": {"count": "3"}}]
    body = "\n".join(json.dumps(i) for i in items).encode()
    r = client.post("/screen?trial=ATOM&status=eligible,undetermined", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["patients"] == 9 and answer["validPatients"] == 8
    assert [(v["record"], v["field"], v["rule"]) for v in answer["invalid"]] == [("bad", "liverMetastases.count", "datatype")]
    statuses = {m["patient"]: m["status"] for m in answer["trials"][0]["matches"]}
    for path, item in zip(EXAMPLE_FILES[:8], items):
        expected = next(t for t in answers[path.name]["trials"] if t["id"] == "ATOM")["status"]
        assert statuses.get(item["id"], "ineligible") == expected
    r = client.post("/screen?format=csv", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv") and r.headers["x-invalid-records"] == "1"
    assert client.post("/screen?trial=NOPE", content=body).status_code == 404
    assert client.post("/screen?status=maybe", content=body).status_code == 422
    too_many = "\n".join(json.dumps({"id": f"p{i}"}) for i in range(21)).encode()
    r = client.post("/screen", content=too_many, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "maxRecords"


@pytest.mark.slow  # forks two processes
def test_screening_in_processes_equals_one_process(lookup, monkeypatch):
    from crlm_kg.screening import engine

    items = synthetic_cohort(90, seed=8, invalid_share=0.1)
    items.append(dict(items[3]))  # a duplicate id: reported once, across the slices
    serial = screening.screen(lookup, items, statuses=ALL)
    monkeypatch.setattr(engine, "BATCH", 25)
    parallel = screening.screen(lookup, items, statuses=ALL, workers=2)
    assert screening.to_json(parallel) == screening.to_json(serial)
    assert [v["rule"] for v in serial.invalid].count("unique") == 1 and serial.valid < len(items) - 1


@pytest.mark.slow  # a second store (1-2 s)
def test_the_startup_check_passes_the_repository_and_names_a_broken_study(repo_store):
    """serve's structural check (SPARQL compiled from the evidence shapes; pyshacl is crlm-kg check's)."""
    from crlm_kg.curation import ShapesViolation
    from crlm_kg.startup_check import check_store
    from tests.evidence_helpers import store_with

    check_store(repo_store)
    broken = store_with("crlmd:UnlabelledStudyXyz a crlm:CohortStudy .\n"
                        "crlmd:LonelyArm a crlm:StudyArm ; rdfs:label \"arm\" ; crlm:armOf crlmd:NotAStudy ; "
                        "crlm:treatment crlmd:UnlabelledTreatmentXyz .", repo_store)
    with pytest.raises(ShapesViolation) as caught:
        check_store(broken)
    assert "crlmd:UnlabelledStudyXyz: every study needs an rdfs:label" in caught.value.problems
    assert "crlmd:LonelyArm: every arm belongs to exactly one study (crlm:armOf)" in caught.value.problems
    # sh:targetObjectsOf: the linked nodes whose labels the named queries read in a nested OPTIONAL
    assert any(p.startswith("crlmd:UnlabelledTreatmentXyz: a source document, arm, unit, treatment") for p in caught.value.problems)


@pytest.mark.parametrize("params", [
    {},
    {"age": "82", "ecog": "2", "count": "1", "resectability": "Resectable", "ras": "RasWildType", "extrahepaticDisease": "false"},
    {"age": "45", "count": "9", "largestDiameterMm": "60", "resectability": "Unresectable", "ras": "RasMutant", "flr": "25"},
])
def test_trials_for_patient_minus_gives_the_rows_of_filter_not_exists(repo_store, params):
    """trials-for-patient finds the studies once (a subquery on their inferred type) and excludes criteria inside
    any-of groups with MINUS: linear at 10x/100x the evidence; the per-row FILTER EXISTS (with the subclass path) /
    FILTER NOT EXISTS it replaced (quadratic) gives the same rows."""
    from crlm_kg.queries import QueryLibrary

    library = QueryLibrary.load()
    query = library.get("trials-for-patient")
    assert "MINUS { ?group crlm:hasMember ?c ; a crlm:AnyOfGroup }" in query.text
    bindings = query.bindings(params, library.allowed_values(repo_store, "trials-for-patient"))
    old_text = query.text.replace("MINUS { ?group crlm:hasMember ?c", "FILTER NOT EXISTS { ?group crlm:hasMember ?c").replace(
        "{ SELECT DISTINCT ?study WHERE { ?study a crlm:Study } }",
        "FILTER EXISTS { ?study a/rdfs:subClassOf* crlm:Study }")
    assert old_text.count("FILTER EXISTS { ?study a/rdfs:subClassOf* crlm:Study }") == 1
    rows = repo_store.select(query.text, bindings)
    assert rows and rows == repo_store.select(old_text, bindings)


def test_ndjson_of_fhir_bundles_gives_their_contract_records():
    bundles = sorted((EXAMPLE_FILES[0].parent.parent / "fhir").glob("*.fhir.json"))[:3]
    data = "\n".join(json.dumps(json.loads(p.read_text())) for p in bundles).encode()
    cohort = screening.read_cohort(data, filename="bundles.ndjson")
    expected = [json.loads(p.with_name(p.name.replace(".fhir.json", ".record.json")).read_text()) for p in bundles]
    assert cohort.records == expected and cohort.labels == ["line 1", "line 2", "line 3"] and not cohort.problems


def test_post_screen_refuses_a_huge_cohort_without_reading_it_all(client):
    """42 000 minimal records in NDJSON (1 MB): refused as too many once the 21st is read, not after all are parsed."""
    body = b"\n".join(b'{"id": "p%d"}' % i for i in range(42_000))
    r = client.post("/screen", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "maxRecords"
    cohort = screening.read_cohort(body, filename="c.ndjson", max_records=20)
    assert cohort.over_limit and len(cohort.records) == 21


def _one_record_terms(item) -> dict | None:
    """The terms ``check_cohort`` gives the SHACL-SPARQL step for one record (None: it goes to pyshacl instead)."""
    own = cohort_check.Problems()
    _, _, fields = cohort_check._convert_record(item, 0, own, allow_context=True)
    terms = cohort_check._terms(fields) if not own.items else None
    return None if terms is None or compiled_shapes().breaks_core(terms) else terms


def test_kept_sparql_verdicts_equal_running_every_query_afresh():
    """A one-record request takes the verdicts kept for the values each SHACL-SPARQL query reads. Over records that
    break and keep those constraints, in an order where most verdicts come from earlier records, the failing
    records are those a fresh run of every query gives."""
    compiled = compiled_shapes()
    kept = dataclasses.replace(compiled, verdicts={})
    items = [json.loads(p.read_text()) for p in EXAMPLE_FILES]
    items += [json.loads(p.read_text()) for p in sorted((EXAMPLE_FILES[0].parent.parent / "invalid").glob("*.json"))
              if not p.name.endswith(".expected.json")]
    items += synthetic_cohort(400, seed=7, invalid_share=0.5)
    broken = answered_from_kept = 0
    for item in items:
        terms = _one_record_terms(item)
        if terms is None:
            continue
        fresh = cohort_check._sparql_failures(dataclasses.replace(compiled, verdicts={}), {0: (None, terms)})
        queries_before = len(kept.verdicts)
        assert cohort_check._sparql_failures(kept, {0: (None, terms)}) == fresh, item
        broken += bool(fresh)
        answered_from_kept += len(kept.verdicts) == queries_before
    assert broken >= 5 and answered_from_kept >= 50  # both verdicts seen, and most of them kept ones


def test_the_properties_a_sparql_constraint_reads():
    reads = cohort_check._properties_read
    assert reads("SELECT ?this WHERE { ?this <urn:a>/^<urn:b>* ?v FILTER NOT EXISTS { ?this <urn:c> 1 } "
                 "{ SELECT ?this WHERE { ?this <urn:d>|<urn:e>+ [] } } }") == {"urn:a", "urn:b", "urn:c", "urn:d", "urn:e"}
    assert reads("SELECT ?this WHERE { ?this ?p ?v }") is None  # any property: the verdict is never kept
    assert reads("SELECT ?this WHERE { ?this !<urn:a> ?v }") is None
    assert all(r is not None for r in compiled_shapes().query_reads)  # every shape's constraint can keep its verdicts
