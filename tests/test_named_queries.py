"""Issue 5: every named query runs on the real graph and returns a known row."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crlm_kg import paths
from crlm_kg.queries import AllowedValues, QueryLibrary, QueryParameterError, format_table
from crlm_kg.store import IRI

D, O = paths.CRLMD, paths.CRLM


@pytest.fixture(scope="module")
def library() -> QueryLibrary:
    return QueryLibrary.load()


def run(library, store, name, **params):
    columns, rows = library.run(store, name, params)
    return rows


def has_row(rows, **expected) -> bool:
    def matches(row):
        for key, value in expected.items():
            got = row.get(key)
            if isinstance(got, IRI):
                got = got.value
            if isinstance(value, float) and isinstance(got, (int, float)):
                if abs(got - value) > 1e-9:
                    return False
            elif got != value:
                return False
        return True

    return any(matches(r) for r in rows)


# (query, parameters, one row that must be in the answer)
KNOWN_ROWS = [
    ("rcts-by-setting", {"setting": "Resectable"}, {"study": D + "EORTC40983", "randomised": 364, "registryId": "NCT00006479"}),
    ("perioperative-chemotherapy-rcts", {}, {"figure": D + "EORTC40983_PFSHazardRatioITT_SCR", "value": 0.79, "population": "intention-to-treat population"}),
    ("overall-survival-alpps-tsh", {}, {"study": D + "Baumgart2019ALPPSvsTSH", "procedure": "ALPPS", "value": 36.2, "statistic": "median"}),
    ("hazard-ratios-by-endpoint", {"endpoint": "OverallSurvival"}, {"study": D + "FIRE3", "hr": 0.77, "ciLower": 0.62, "ciUpper": 0.96, "pValue": 0.017,
                                                                    "design": "phase 3 randomised trial", "phase": "3", "randomised": True}),
    ("trials-by-ras-status", {"ras": "RasWildType"}, {"study": D + "ATOM"}),
    ("trials-by-ras-status", {"ras": "RasMutant"}, {"study": D + "BECOME"}),
    ("conversion-rates-unresectable", {}, {"study": D + "ATOM", "endpoint": "resection rate", "value": 56.1}),
    ("ablation-vs-resection", {}, {"item": D + "CLOCC_OS5yRFAPlusSystemic_S000", "value": 43.1}),
    ("recommendations-by-setting", {"setting": "Unresectable"}, {"recommendation": D + "Rec_NCCN_HAI", "level": "category 2B"}),
    ("recommendations-by-grade", {"grade": "2B"}, {"recommendation": D + "Rec_NCCN_HAI"}),
    ("conflicting-figures", {}, {"a": D + "ALPPSMetaAnalysis_MortalityALPPS_S001", "b": D + "LIGRO_Mortality90dALPPS_S001", "relation": "heterogeneity"}),
    ("conflicting-figures", {}, {"a": D + "EORTC40983_PFS3yDifferenceEligible_S001", "b": D + "EORTC40983_PFS3yDifference_S004", "relation": "conflict"}),
    ("evidence-by-source", {"source": "Seed001"}, {"study": D + "EORTC40983"}),
    ("trial-eligibility-criteria", {"study": "EORTC40983"}, {"criterion": D + "EORTC40983_CritAgeMax", "characteristic": O + "age", "threshold": 80}),
    ("study-outcomes", {"study": "LIGRO"}, {"figure": D + "LIGRO_Mortality90dALPPS_S001", "value": 8.3}),
    ("endpoint-figures", {"endpoint": "Morbidity"}, {"study": D + "Adam2000TSH", "value": 38}),
    ("studies-by-design", {"design": "RandomisedControlledTrial"}, {"study": D + "CELIM", "sampleSize": 114}),
    ("treatment-taxonomy", {"treatment": "Hepatectomy"}, {"class": O + "MiniALPPS", "parentLabel": "ALPPS"}),
    ("registry-identifiers", {}, {"study": D + "ATOM", "registryId": "NCT01836653", "doi": "10.1038/s41416-019-0518-2"}),
    ("statements-by-treatment", {"treatment": "HepaticArteryInfusion"}, {"statement": D + "Rec_NCCN_HAI"}),
    ("prognostic-factors", {}, {"statement": D + "Stmt_FongCRSHighRiskWorseSurvival"}),
    ("score-definition", {"score": "FongClinicalRiskScore"}, {"component": D + "FongCRS_CEA", "threshold": 200, "points": 1}),
    ("disappearing-metastases", {}, {"study": D + "Arita2014DLM"}),
    ("arms-and-regimens", {"study": "EORTC40983"}, {"arm": D + "EORTC40983_ArmPerioperative", "plannedCycles": 6, "randomised": 182}),
    ("trials-meeting-criterion", {"characteristic": "age", "value": "78"}, {"study": D + "FIRE3", "threshold": 75, "meets": False}),
    ("guideline-grades-for-treatment", {"treatment": "HAI"}, {"recommendation": D + "Rec_NCCN_HAI", "level": "category 2B", "gradingSystem": "NCCN"}),
    ("local-recurrence-ablation-vs-resection", {}, {"figure": D + "Okuno2021CompletionAblation_LTP5yCompletion_S003", "group": "ablation and resection", "value": 31.7}),
    ("mortality-and-morbidity-by-procedure", {"procedure": "ALPPS"}, {"figure": D + "LIGRO_Mortality90dALPPS_S001", "value": 8.3, "endpoint": "90-day mortality"}),
    ("trials-for-patient", {"age": "82", "ecog": "2", "count": "1", "resectability": "Resectable", "ras": "RasWildType", "extrahepaticDisease": "false"},
     {"study": D + "NewEPOC", "met": 4, "unknown": 0}),
]


def test_library_has_at_least_20_documented_queries(library):
    queries = library.all()
    assert len(queries) >= 20
    for q in queries:
        assert q.title and q.description and q.columns
        for p in q.parameters:
            assert p.type and p.example and p.description


def test_every_query_is_covered_by_a_known_row(library):
    assert {q.name for q in library.all()} == {name for name, _, _ in KNOWN_ROWS}


@pytest.mark.parametrize("name,params,row", KNOWN_ROWS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(KNOWN_ROWS)])
def test_named_query_returns_known_row(library, repo_store, name, params, row):
    rows = run(library, repo_store, name, **params)
    assert has_row(rows, **row), f"{name}: expected a row like {row}; got {len(rows)} rows, first {rows[:2]}"


def test_parameter_is_bound_as_a_value_not_as_query_text(library, repo_store):
    # a quote and a brace in a string parameter are just characters to look for
    rows = run(library, repo_store, "recommendations-by-grade", grade='2B" } ?s ?p ?o . FILTER("1')
    assert rows == []
    with pytest.raises(QueryParameterError, match="unknown value"):
        run(library, repo_store, "rcts-by-setting", setting="Resectable> } DROP ALL { <x")
    with pytest.raises(QueryParameterError, match="must be an IRI"):  # the type check a value without a closed list gets
        library.get("rcts-by-setting").parameters[0].convert("Resectable> } DROP ALL { <x")


def test_parameter_errors_name_the_parameter(library, repo_store):
    with pytest.raises(QueryParameterError, match="needs parameter setting"):
        run(library, repo_store, "rcts-by-setting")
    with pytest.raises(QueryParameterError, match="value must be a decimal"):
        run(library, repo_store, "trials-meeting-criterion", characteristic="age", value="old")
    with pytest.raises(QueryParameterError, match="has no parameter 'colour'"):
        run(library, repo_store, "rcts-by-setting", setting="Resectable", colour="blue")
    with pytest.raises(QueryParameterError, match="no named query"):
        run(library, repo_store, "no-such-query")


def test_formats(library, repo_store):
    columns, rows = library.run(repo_store, "rcts-by-setting", {"setting": "Resectable"})
    csv_text = format_table(columns, rows, "csv")
    assert csv_text.splitlines()[0] == ",".join(columns) and columns[:2] == ["study", "label"]
    assert any(line.startswith(D + "EORTC40983,") for line in csv_text.splitlines())
    tsv = [line.split("\t") for line in format_table(columns, rows, "tsv").splitlines()]
    assert tsv[0] == columns and all(len(cells) == len(columns) for cells in tsv)
    assert [D + "EORTC40983"] == [cells[0] for cells in tsv if cells[0].endswith("EORTC40983")]
    data = json.loads(format_table(columns, rows, "json", "rcts-by-setting"))
    assert data["query"] == "rcts-by-setting" and data["columns"] == columns
    assert all(list(r) == columns for r in data["rows"])  # every column in every row, null where unbound
    assert {"study": D + "EORTC40983"}.items() <= next(r for r in data["rows"] if r["study"].endswith("EORTC40983")).items()
    assert "crlmd:EORTC40983" in format_table(columns, rows, "table")


def test_unbound_values_are_null_in_json_and_absent_in_xml(library, repo_store):
    import xml.etree.ElementTree as ET

    columns, rows = library.run(repo_store, "hazard-ratios-by-endpoint", {"endpoint": "OverallSurvival"})
    data = json.loads(format_table(columns, rows, "json"))
    assert any(r["pValue"] is None for r in data["rows"]) and any(r["pValue"] is not None for r in data["rows"])
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    root = ET.fromstring(format_table(columns, rows, "xml"))
    assert [v.get("name") for v in root.find("r:head", ns)] == columns
    results = root.findall("r:results/r:result", ns)
    assert len(results) == len(rows)
    for result, row in zip(results, rows):
        assert {b.get("name") for b in result} == {c for c in columns if row.get(c) is not None}
    fire3 = next(r for r in results if r.find("r:binding[@name='study']/r:uri", ns).text == D + "FIRE3")
    hr = fire3.find("r:binding[@name='hr']/r:literal", ns)
    assert hr.get("datatype").endswith("#decimal") and float(hr.text) > 0


@pytest.mark.parametrize("given,expected", [("resectable", "Resectable"), ("RESECTABLE", "Resectable"), ("crlm:Resectable", "Resectable"),
                                            ("upfront resectable", "Resectable"), ("borderline resectable", "BorderlineResectable")])
def test_closed_parameters_match_codes_and_labels_case_insensitively(library, repo_store, given, expected):
    assert library.get("rcts-by-setting").bindings({"setting": given}, library.allowed_values(repo_store, "rcts-by-setting")) == {
        "setting": IRI(O + expected)}


def test_design_rct_is_the_randomised_trials(library, repo_store):
    rows = run(library, repo_store, "studies-by-design", design="RCT")
    assert has_row(rows, study=D + "CELIM") and has_row(rows, study=D + "EORTC40983")
    assert not has_row(rows, study=D + "Adam2000TSH")


@pytest.mark.parametrize("name,params,parameter,listed", [
    ("hazard-ratios-by-endpoint", {"endpoint": "Foo"}, "endpoint", "OverallSurvival"),
    ("rcts-by-setting", {"setting": "operable"}, "setting", "BorderlineResectable"),
    ("studies-by-design", {"design": "cohort-ish"}, "design", "RandomisedControlledTrial"),
    ("trials-by-ras-status", {"ras": "KRAS"}, "ras", "RasMutant"),
])
def test_unknown_value_is_refused_with_the_allowed_ones(library, repo_store, name, params, parameter, listed):
    with pytest.raises(QueryParameterError, match="unknown value") as info:
        run(library, repo_store, name, **params)
    assert info.value.parameter == parameter
    assert listed in {a["value"] for a in info.value.allowed} and listed in str(info.value)


def test_allowed_values_come_from_the_graph(library, repo_store):
    endpoints = {a.code for a in library.allowed_values(repo_store, "hazard-ratios-by-endpoint")["endpoint"]}
    with_hr = {str(r["e"]).split("#")[-1] for r in repo_store.select("SELECT DISTINCT ?e WHERE { ?c a crlm:HazardRatio ; crlm:endpoint ?e }")}
    assert endpoints == with_hr and "OverallSurvival" in endpoints


def test_no_query_returns_a_row_twice(library, repo_store):
    for query in library.all():
        params = {p.name: p.example for p in query.parameters if not p.optional}
        columns, rows = library.run(repo_store, query.name, params)
        keys = [tuple(str(r.get(c)) for c in columns) for r in rows]
        assert len(keys) == len(set(keys)), f"{query.name} repeats rows"


@pytest.mark.slow
def test_cli_query_prints_csv():
    proc = subprocess.run(
        [sys.executable, "-m", "crlm_kg.cli", "query", "hazard-ratios-by-endpoint", "--param", "endpoint=OverallSurvival", "--format", "csv"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert D + "FIRE3" in proc.stdout and "0.77" in proc.stdout


@pytest.mark.slow
def test_cli_query_bad_parameter_exits_1_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "crlm_kg.cli", "query", "rcts-by-setting", "--param", "setting=not an iri"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "parameter setting: unknown value 'not an iri'; allowed values: BorderlineResectable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_perioperative_rcts_give_each_figure_once_with_its_population(library, repo_store):
    rows = run(library, repo_store, "perioperative-chemotherapy-rcts")
    figures = [str(r["figure"]) for r in rows]
    assert len(figures) == len(set(figures))
    pfs3y = {(r.get("population"), r["value"]) for r in rows if str(r["figure"]).startswith(D + "EORTC40983_PFS3yPerioperative")}
    assert ("intention-to-treat population", 35.4) in pfs3y and ("eligible population", 36.2) in pfs3y


def test_rcts_by_setting_lists_each_trial_once(library, repo_store):
    rows = run(library, repo_store, "rcts-by-setting", setting="Resectable")
    studies = [str(r["study"]) for r in rows]
    assert len(studies) == len(set(studies)) and D + "NewEPOC" in studies
    assert has_row(rows, study=D + "NewEPOC", design="phase 3 randomised trial")


def test_hazard_ratios_have_a_consistent_direction(library, repo_store):
    rows = run(library, repo_store, "hazard-ratios-by-endpoint", endpoint="OverallSurvival")
    mitry = next(r for r in rows if str(r["study"]).endswith("Mitry2008PooledAdjuvant"))
    # reported as resection alone vs adjuvant 1.32 (0.95-1.82): inverted to adjuvant vs resection alone
    assert mitry["reportedHr"] == 1.32 and mitry["hr"] == round(1 / 1.32, 3)
    assert (mitry["ciLower"], mitry["ciUpper"]) == (round(1 / 1.82, 3), round(1 / 0.95, 3))
    assert "adjuvant" in mitry["intervention"] and "resection alone" in mitry["comparator"] and mitry["direction"].startswith("inverted")
    assert all(r["direction"] == "as reported" and r["hr"] == r["reportedHr"] for r in rows if r is not mitry)
    eortc = run(library, repo_store, "hazard-ratios-by-endpoint", endpoint="progression-free survival")
    assert {r.get("population") for r in eortc if str(r["study"]).endswith("EORTC40983")} == {
        "intention-to-treat population", "eligible population", "resected population"}


QUESTION_QUERIES = ["perioperative-chemotherapy-rcts", "hazard-ratios-by-endpoint", "rcts-by-setting", "conflicting-figures",
                    "guideline-grades-for-treatment", "local-recurrence-ablation-vs-resection", "mortality-and-morbidity-by-procedure",
                    "ablation-vs-resection", "conversion-rates-unresectable", "statements-by-treatment", "prognostic-factors",
                    "trials-by-ras-status", "disappearing-metastases", "overall-survival-alpps-tsh", "studies-by-design",
                    "trials-for-patient", "recommendations-by-setting"]


def test_researcher_questions_are_titled_as_questions_and_listed_in_the_readme(library):
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Questions researchers ask", 1)[1].split("\n## ", 1)[0]
    for name in QUESTION_QUERIES:
        title = library.get(name).title
        assert title.endswith("?"), name
        assert f"`{name}`" in section and title in section, name
    assert len(QUESTION_QUERIES) >= 10


def _resolved(param, raw, allowed):
    try:
        return param.resolve(raw, allowed)
    except QueryParameterError as exc:
        return ("refused", str(exc), exc.allowed)


def test_a_parameter_value_is_matched_by_the_index_as_by_scanning_every_allowed_value(library, repo_store):
    """Names of the allowed values (their codes and labels, some in upper case, and an unknown one) resolve through
    the index by name to what a scan of the allowed values gives: the value, or the same refusal."""
    checked = 0
    for query in library.all():
        for param in query.parameters:
            allowed = library.allowed_values(repo_store, query.name).get(param.name)
            if not allowed:
                continue
            assert isinstance(allowed, AllowedValues)
            names = {name for value in allowed for name in value.names} | {value.code for value in allowed}
            for raw in sorted(names)[:200] + [n.upper() for n in sorted(names)[:20]] + ["no-such-value"]:
                assert _resolved(param, raw, allowed) == _resolved(param, raw, list(allowed)), (query.name, param.name, raw)
                checked += 1
    assert checked > 500
