"""The summary, the rankings, the trial entries and the views (issue 10, points 4-6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from evidence_helpers import CASES, EXAMPLE_FILES, by_id, record, store_with

from crlm_kg.evidence import EvidenceLookup, ViewError, apply_view, summary, trials

CONTRACT_DESIGNS = {"randomised-controlled-trial", "single-arm-trial", "prospective-cohort", "retrospective-cohort",
                    "case-series", "meta-analysis"}




def test_summary_view_is_small_for_every_example_patient(answers):
    for name, answer in answers.items():
        view = apply_view(answer, "summary")
        assert list(view) == ["patient", "summary", "derived"]
        size = len(json.dumps(view, ensure_ascii=False).encode())
        assert size <= 30 * 1024, (name, size)


def test_full_view_filters(answers):
    answer = answers["case-resectable-ras-wild-type.json"]
    full = apply_view(answer, "full")
    assert set(full) == {"patient", "summary", "derived", "trials", "recommendations", "cautions"}
    kept = apply_view(answer, "full", status=["eligible,undetermined"], include=["trials"])
    assert set(kept) == {"patient", "trials"}
    assert kept["trials"] and {t["status"] for t in kept["trials"]} <= {"eligible", "undetermined"}
    assert len(kept["trials"]) < len(answer["trials"])
    for bad in ({"view": "tiny"}, {"status": ["maybe"]}, {"include": ["everything"]}):
        with pytest.raises(ViewError):
            apply_view(answer, **bad)


def test_grade_table_orders_the_systems():
    ranks = [summary.grade_rank("NCCN", level) for level in ("category 1", "category 2A", "category 2B", "category 3")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
    assert summary.grade_rank("ESMO", "[I, A]") < summary.grade_rank("ESMO", "[II, B]") < summary.grade_rank("ESMO", "[III, B]")
    assert summary.grade_rank(None, None) == summary.UNGRADED > summary.grade_rank("NCCN", "category 3")


def test_recommendations_ranked_by_kind_grade_and_specificity(answers):
    for name, answer in answers.items():
        keys = [summary.statement_order(s) for s in answer["recommendations"]]
        assert keys == sorted(keys), name
        ranked = answer["summary"]["recommendations"]
        assert all(s["applicability"] == "applies" for s in ranked)
        kinds = [s["kind"] for s in ranked]
        assert kinds == sorted(kinds, key=lambda k: k != "recommendation"), name  # recommendations first
    # a graded recommendation outranks an ungraded one in the same answer
    answer = answers["case-unresectable-ras-wild-type-left.json"]
    recs = [s for s in answer["summary"]["recommendations"] if s["kind"] == "recommendation"]
    grades = [summary.grade_rank(None, s["level"]) for s in recs]
    assert grades == sorted(grades)


def test_summary_trials_ranked_by_design(answers):
    for name, answer in answers.items():
        entries = answer["summary"]["trials"]
        assert all(t["status"] in ("eligible", "undetermined") for t in entries)
        full = {t["id"]: t for t in answer["trials"]}
        ranks = [full[t["id"]]["designRank"] for t in entries]
        assert ranks == sorted(ranks), name
        for t in entries:
            assert {"id", "label", "design", "phase", "sampleSize", "registryIds", "status", "recruitment", "headline"} <= set(t)
    # randomised phase 3 trials come before the retrospective series for a resectable patient
    designs = [t["design"] for t in answers["case-resectable-ras-wild-type.json"]["summary"]["trials"]]
    assert designs[0] == "randomised-controlled-trial"


def test_deciding_fields_are_missing_fields_ranked_by_count(answers):
    answer = answers["case-sparse-record.json"]
    fields = answer["summary"]["decidingFields"]
    assert fields and [f["decides"] for f in fields] == sorted((f["decides"] for f in fields), reverse=True)
    undetermined = [t for t in answer["trials"] if t["status"] == "undetermined"]
    for f in fields:
        trials_deciding = sum(1 for t in undetermined if f["field"] in t["missingFields"])
        assert f["trials"] == trials_deciding
    assert "liverMetastases.resectability" in {f["field"] for f in fields}


def test_design_table():
    d = trials.design_of({"RandomisedControlledTrial", "Phase3RandomisedTrial"})
    assert (d["design"], d["phase"]) == ("randomised-controlled-trial", "3")
    assert trials.design_of({"CohortStudy", "RetrospectiveCohortStudy"})["design"] == "retrospective-cohort"
    assert trials.design_of({"Phase2SingleArmTrial"})["design"] == "single-arm-trial"


def test_every_trial_has_a_design_from_the_table(answers):
    for t in answers["case-sparse-record.json"]["trials"]:
        assert t["designRank"] != trials.UNRANKED, t["id"]
        assert t["design"] in CONTRACT_DESIGNS or t["designClass"] in {row[0] for row in trials.DESIGNS}
        assert t["recruitment"] in ("recruiting", "completed", "unknown")
        assert "eligible" in t["statusMeaning"]


def test_primary_endpoint_first_and_recruitment_from_a_status_report(repo_store):
    extra = """
    crlmd:EORTC40983 crlm:primaryEndpoint crlm:ProgressionFreeSurvival .
    crlmd:TestDoc a crlm:Publication ; rdfs:label "Test document" .
    crlmd:EORTC40983_TestStatus a crlm:StudyStatusReport ; crlm:ofStudy crlmd:EORTC40983 ; crlm:status "completed" ;
        crlm:sourceDocument crlmd:TestDoc ; crlm:sourceQuote "the trial completed" ; crlm:sourceLocator "p. 1" .
    crlmd:FIRE3_TestStatus a crlm:StudyStatusReport ; crlm:ofStudy crlmd:FIRE3 ; crlm:status "recruiting" .
    """
    answer = EvidenceLookup(store_with(extra, repo_store)).evaluate(record("case-resectable-ras-wild-type.json"))
    eortc = by_id(answer["trials"], "EORTC40983")
    assert eortc["recruitment"] == "completed" and eortc["recruitmentReports"][0]["source"] == "Test document"
    assert eortc["status"] == "eligible"  # matches the population, although closed
    assert eortc["primaryEndpoint"] == ["progression-free survival"]
    first = eortc["outcomes"][0]
    assert first["primary"] is True and first["endpoint"] == "progression-free survival"
    assert all(o["primary"] for o in eortc["outcomes"][: sum(o["primary"] for o in eortc["outcomes"])])
    headline = eortc["headline"]
    assert headline["primary"] is True and headline["statistic"] == "HazardRatio" and headline["endpoint"] == "progression-free survival"
    assert by_id(answer["trials"], "FIRE3")["recruitment"] == "recruiting"
    assert by_id(answer["summary"]["trials"], "EORTC40983")["recruitment"] == "completed"


def test_recruitment_is_unknown_without_a_report(answers):
    for t in answers["case-resectable-ras-wild-type.json"]["trials"]:
        if not t["recruitmentReports"]:
            assert t["recruitment"] == "unknown", t["id"]
    assert trials.recruitment_of([]) == "unknown"
    assert trials.recruitment_of([{"status": "ongoing"}]) == "unknown"  # ambiguous wording is not read as recruiting


@pytest.mark.slow
def test_cli_summary_view():
    proc = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "evidence", str(CASES / "braf-v600e.json"), "--view", "summary"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert set(body) == {"patient", "summary", "derived", "dataVersion"}
    assert {"cautions", "recommendations", "trials", "decidingFields"} <= set(body["summary"])
    bad = subprocess.run([sys.executable, "-m", "crlm_kg.cli", "evidence", str(CASES / "braf-v600e.json"), "--status", "maybe"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "unknown trial status" in bad.stderr


def test_the_summary_view_is_the_full_answers_summary(lookup):
    """``evaluate(record, "summary")`` ranks only what the summary shows: it must give exactly the summary view of
    the full answer, for every example patient and a varied generated cohort."""
    from crlm_kg import patients
    from crlm_kg.screening.synthetic import synthetic_cohort

    items = [json.loads(p.read_text()) for p in EXAMPLE_FILES] + synthetic_cohort(40, seed=31, fill=0.6)
    report, records = patients.parse_and_validate(items, limits=patients.Limits(records=len(items), violations=10 ** 6))
    records = [r for r in records if not any(v.index == r.index for v in report.violations)]
    assert len(records) > 40
    for r in records:
        alone = lookup.evaluate(r, "summary")
        assert set(alone) == {"patient", "summary", "derived"}
        assert alone == apply_view(lookup.evaluate(r), "summary"), r.id


def test_summary_ranks_tied_trials_by_id_whatever_their_order():
    """Trials equal in design, status, size and label (a registry's duplicates, or cloned evidence) are shown in
    id order, so the summary does not depend on the order the trials came in."""
    def trial(tid):
        return {"id": tid, "label": "Same", "design": "single-arm-trial", "designRank": 1, "phase": None, "sampleSize": 10,
                "registryIds": [], "status": "eligible", "recruitment": None, "headline": None, "missingFields": []}

    answer = {"recommendations": [], "cautions": [], "derived": {}, "trials": [trial("B"), trial("A"), trial("C")]}
    shown = [t["id"] for t in summary.build(answer)["trials"]]
    assert shown == ["A", "B", "C"]
    assert [t["id"] for t in summary.build({**answer, "trials": answer["trials"][::-1]})["trials"]] == shown


def test_an_outcome_shows_its_stated_statistic_not_the_entailed_comparison(answers, repo_store):
    """A figure typed crlm:HazardRatio is also a crlm:Comparison by entailment; the store may return either type
    first. The answer must show the stated, specific one (the headline's statistic, and what a reader compares)."""
    from crlm_kg.evidence.common import short

    specific = {short(r["f"]): short(r["k"]) for r in repo_store.select(
        "SELECT ?f ?k WHERE { ?f a ?k . ?k rdfs:subClassOf crlm:Comparison . FILTER(?k != crlm:Comparison) }")}
    assert specific
    shown = {o["id"]: o["kind"] for a in answers.values() for t in a["trials"] for o in t["outcomes"] if o["id"] in specific}
    assert shown and all(kind == specific[figure] for figure, kind in shown.items())
