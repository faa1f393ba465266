"""Patient-record validation: the JSON-LD context, the SHACL shapes and crlm_kg.patients."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import rdflib

from crlm_kg import patients, paths
from crlm_kg.store import IRI

CRLM = paths.CRLM
ROOT = Path(__file__).resolve().parent.parent

FULL = {
    "id": "p-001", "age": 64, "sex": "female", "ecog": 1, "medicallyFit": True,
    "primaryTumor": {"location": "sigmoid", "tStage": "T3", "nodePositive": True, "resected": True},
    "liverMetastases": {"count": 3, "largestDiameterMm": 42.5, "distribution": "bilobar", "timing": "metachronous",
                        "diseaseFreeIntervalMonths": 14, "resectability": "resectable"},
    "extrahepaticDisease": False, "extrahepaticSites": [], "ceaNgPerMl": 12.4,
    "molecular": {"ras": "wild-type", "braf": "wild-type", "mmr": "pMMR", "tp53": "altered", "smad4": "wild-type", "fbxw7": "unknown", "apc": "altered"},
    "liver": {"futureLiverRemnantPercent": 45, "chemotherapyAssociatedInjury": False, "fibrosisOrCirrhosis": False},
    "priorTherapy": {"systemicChemotherapy": True, "oxaliplatin": True, "irinotecan": False, "antiEgfr": False, "bevacizumab": True,
                     "cycles": 6, "response": "partial", "priorHepatectomy": False},
}


def with_field(path: str, value, base: dict | None = None) -> dict:
    record = copy.deepcopy(base if base is not None else {"id": "p-x"})
    if "." in path:
        nest, key = path.split(".")
        record.setdefault(nest, {})[key] = value
    else:
        record[path] = value
    return record


def validate(record) -> patients.ValidationReport:
    return patients.validate_document(json.dumps(record).encode(), content_type="application/json")


def only(report: patients.ValidationReport) -> patients.Violation:
    assert not report.conforms
    assert len(report.violations) == 1, report.to_text()
    return report.violations[0]


# --------------------------------------------------------------------------- the context


def test_full_record_conforms_and_maps_to_ontology_iris():
    report, records = patients.parse_and_validate(json.dumps(FULL).encode())
    assert report.conforms, report.to_text()
    record = records[0]
    assert record.id == "p-001"
    assert str(record.node) == "https://w3id.org/crlm-kg/patient/p-001"
    facts = dict(record.facts())
    assert facts[CRLM + "liverMetastasisCount"] == 3
    assert facts[CRLM + "largestMetastasisDiameterMm"] == 42.5
    assert facts[CRLM + "rasStatus"] == IRI(CRLM + "RasWildType")
    assert facts[CRLM + "brafStatus"] == IRI(CRLM + "BrafWildType")
    assert facts[CRLM + "fbxw7Status"] == IRI(CRLM + "GeneStatusUnknown")
    assert facts[CRLM + "primaryTumourLocation"] == IRI(CRLM + "SigmoidColon")
    assert facts[CRLM + "priorSystemicChemotherapy"] is True
    assert facts[CRLM + "extrahepaticDisease"] is False
    assert record.fields["liverMetastases.count"] == 3
    assert record.fields["molecular.ras"] == "wild-type"
    assert (rdflib.URIRef(record.node), rdflib.RDF.type, rdflib.URIRef(CRLM + "Patient")) in record.graph


@pytest.mark.parametrize(
    "path,code,individual",
    [
        ("molecular.ras", "unknown", "RasUnknown"),
        ("molecular.braf", "unknown", "BrafUnknown"),
        ("molecular.mmr", "unknown", "MmrUnknown"),
        ("molecular.tp53", "unknown", "GeneStatusUnknown"),
        ("sex", "unknown", "UnknownSex"),
        ("molecular.ras", "wild-type", "RasWildType"),
        ("molecular.braf", "wild-type", "BrafWildType"),
        ("molecular.apc", "wild-type", "GeneWildType"),
        ("molecular.braf", "V600E", "BrafV600E"),
        ("molecular.mmr", "dMMR", "DeficientMMR"),
        ("sex", "other", "OtherSex"),
        ("liverMetastases.resectability", "borderline", "BorderlineResectable"),
        ("priorTherapy.response", "stable", "StableDisease"),
        ("primaryTumor.location", "hepatic-flexure", "HepaticFlexure"),
    ],
)
def test_same_code_maps_to_the_individual_of_its_field(path, code, individual):
    report, records = patients.parse_and_validate(json.dumps(with_field(path, code)).encode())
    assert report.conforms, report.to_text()
    prop = patients.field_spec(path).property
    assert dict(records[0].facts())[prop] == IRI(CRLM + individual)


def test_json_path_for_reads_the_context():
    assert patients.json_path_for(CRLM + "liverMetastasisCount") == "liverMetastases.count"
    assert patients.json_path_for(CRLM + "rasStatus") == "molecular.ras"
    assert patients.json_path_for(CRLM + "priorOxaliplatin") == "priorTherapy.oxaliplatin"
    assert patients.json_path_for(CRLM + "extrahepaticSite") == "extrahepaticSites"
    assert patients.json_path_for(CRLM + "age") == "age"
    assert patients.json_path_for(CRLM + "nothing") is None
    # every property a patient shape constrains has a field; every field is a property of crlm:Patient in the
    # ontology (which also has derived ones, e.g. fongScore, that no client sends)
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    shaped = {str(p) for p in patients.shapes_graph().objects(None, sh.path) if isinstance(p, rdflib.URIRef)}
    assert len(shaped) == len(patients.contract().fields)
    assert {p for p in shaped if patients.json_path_for(p) is None} == set()
    ontology = rdflib.Graph().parse(ROOT / "ontology" / "crlm.ttl")
    patient_properties = {str(p) for p in ontology.subjects(rdflib.RDFS.domain, rdflib.URIRef(CRLM + "Patient"))}
    assert {spec.property for spec in patients.contract().fields.values()} <= patient_properties


def test_contract_reads_every_field_and_code_of_the_context():
    """``contract()`` is the one reading of the context: each term with an ``@id`` is a field at its
    (nested) path, with its property, type and codes, in the context's order."""
    context = json.loads((ROOT / "validation" / "patient-context.jsonld").read_text())["@context"]
    crlm = context["crlm"]
    terms = {t: d for t, d in context.items() if isinstance(d, dict) and "@id" in d}
    expected = [f"{d['@nest']}.{t}" if "@nest" in d else t for t, d in terms.items()]
    assert "liverMetastases.count" in expected and "molecular.ras" in expected and "extrahepaticSites" in expected
    assert list(patients.contract().fields) == expected
    for term, definition in terms.items():
        spec = patients.field_spec(f"{definition['@nest']}.{term}" if "@nest" in definition else term)
        assert spec.property == crlm + definition["@id"].removeprefix("crlm:")
        codes = {code: crlm + iri.removeprefix("crlm:") for code, iri in definition.get("@context", {}).items()}
        assert spec.codes == codes
        assert spec.kind == ("code" if codes else definition["@type"].removeprefix("xsd:"))
        assert spec.multiple == (definition.get("@container") == "@set")


def test_rdflib_processes_the_context_as_json_ld_1_1():
    """@nest and property-scoped contexts, straight through rdflib (no Python mapping)."""
    context = json.loads((ROOT / "validation" / "patient-context.jsonld").read_text())
    doc = {"@context": context["@context"], "id": "p-2", "@type": "Patient",
           "molecular": {"ras": "unknown", "braf": "unknown"}, "liverMetastases": {"count": 2}}
    graph = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    p = rdflib.URIRef("https://w3id.org/crlm-kg/patient/p-2")
    assert graph.value(p, rdflib.URIRef(CRLM + "rasStatus")) == rdflib.URIRef(CRLM + "RasUnknown")
    assert graph.value(p, rdflib.URIRef(CRLM + "brafStatus")) == rdflib.URIRef(CRLM + "BrafUnknown")
    assert graph.value(p, rdflib.URIRef(CRLM + "liverMetastasisCount")).toPython() == 2


def test_partial_record_is_valid():
    report = validate({"id": "p-partial", "liverMetastases": {"count": 2}, "molecular": {"ras": "mutant"}})
    assert report.conforms
    assert report.to_text().startswith("valid: 1 patient record")


def test_null_means_not_given():
    report, records = patients.parse_and_validate(json.dumps({"id": "p-n", "age": None, "molecular": {"ras": None}}).encode())
    assert report.conforms
    assert records[0].fields == {"id": "p-n"}


# --------------------------------------------------------------------------- field rules

FIELD_CASES = [
    # (path, bad value, rule, message fragment)
    ("age", 17, "minInclusive", "age must be an integer from 18 to 110 (age in years); got 17"),
    ("age", 111, "maxInclusive", "age must be an integer from 18 to 110 (age in years); got 111"),
    ("age", 64.5, "datatype", "age must be an integer from 18 to 110 (age in years); got 64.5"),
    ("age", "65", "datatype", 'age must be an integer from 18 to 110 (age in years); got "65"'),
    ("age", True, "datatype", "got true"),
    ("ecog", 5, "maxInclusive", "ecog must be an integer from 0 to 4 (ECOG performance status); got 5"),
    ("ecog", -1, "minInclusive", "ecog must be an integer from 0 to 4"),
    ("ecog", "1", "datatype", 'got "1"'),
    ("sex", "f", "in", 'sex must be one of: female, male, other, unknown; got "f"'),
    ("medicallyFit", "yes", "datatype", 'medicallyFit must be true or false; got "yes"'),
    ("medicallyFit", 1, "datatype", "medicallyFit must be true or false; got 1"),
    ("primaryTumor.location", "colon", "in", 'primaryTumor.location must be one of: caecum, ascending'),
    ("primaryTumor.tStage", "T5", "in", 'primaryTumor.tStage must be one of: T1, T2, T3, T4; got "T5"'),
    ("primaryTumor.tStage", 3, "in", "primaryTumor.tStage must be one of: T1, T2, T3, T4; got 3"),
    ("primaryTumor.nodePositive", "no", "datatype", 'primaryTumor.nodePositive must be true or false; got "no"'),
    ("primaryTumor.resected", 0, "datatype", "primaryTumor.resected must be true or false; got 0"),
    ("liverMetastases.count", 0, "minInclusive", "liverMetastases.count must be an integer ≥ 1 (number of liver metastases); got 0"),
    ("liverMetastases.count", 2.5, "datatype", "liverMetastases.count must be an integer ≥ 1"),
    ("liverMetastases.largestDiameterMm", 0, "minExclusive", "liverMetastases.largestDiameterMm must be a number > 0 and ≤ 300 (largest diameter in mm); got 0"),
    ("liverMetastases.largestDiameterMm", 301, "maxInclusive", "got 301"),
    ("liverMetastases.largestDiameterMm", "42", "datatype", 'got "42"'),
    ("liverMetastases.distribution", "diffuse", "in", 'liverMetastases.distribution must be one of: unilobar, bilobar; got "diffuse"'),
    ("liverMetastases.timing", "early", "in", 'liverMetastases.timing must be one of: synchronous, metachronous; got "early"'),
    ("liverMetastases.diseaseFreeIntervalMonths", -1, "minInclusive", "liverMetastases.diseaseFreeIntervalMonths must be a number ≥ 0"),
    ("liverMetastases.resectability", "maybe", "in", 'liverMetastases.resectability must be one of: resectable, borderline, unresectable; got "maybe"'),
    ("extrahepaticDisease", "false", "datatype", 'extrahepaticDisease must be true or false; got "false"'),
    ("extrahepaticSites", ["liver"], "in", 'extrahepaticSites must be a list of sites, each one of: lung, peritoneum, portal-lymph-nodes, distant-lymph-nodes, bone, other; got "liver"'),
    ("ceaNgPerMl", -0.5, "minInclusive", "ceaNgPerMl must be a number ≥ 0 (CEA in ng/mL); got -0.5"),
    ("molecular.ras", "KRAS G12C", "in", 'molecular.ras must be one of: wild-type, mutant, unknown; got "KRAS G12C"'),
    ("molecular.braf", "V600K", "in", 'molecular.braf must be one of: wild-type, V600E, non-V600E, unknown; got "V600K"'),
    ("molecular.braf", "altered", "in", "molecular.braf must be one of"),
    ("molecular.mmr", "MSI-H", "in", 'molecular.mmr must be one of: pMMR, dMMR, unknown; got "MSI-H"'),
    ("molecular.tp53", "mutant", "in", 'molecular.tp53 must be one of: altered, wild-type, unknown; got "mutant"'),
    ("molecular.smad4", "lost", "in", "molecular.smad4 must be one of: altered, wild-type, unknown"),
    ("molecular.fbxw7", True, "in", "molecular.fbxw7 must be one of: altered, wild-type, unknown; got true"),
    ("molecular.apc", "", "in", 'molecular.apc must be one of: altered, wild-type, unknown; got ""'),
    ("liver.futureLiverRemnantPercent", 101, "maxInclusive", "liver.futureLiverRemnantPercent must be a number from 0 to 100 (percent of total liver volume); got 101"),
    ("liver.futureLiverRemnantPercent", -3, "minInclusive", "got -3"),
    ("liver.chemotherapyAssociatedInjury", "unknown", "datatype", "liver.chemotherapyAssociatedInjury must be true or false"),
    ("liver.fibrosisOrCirrhosis", 1, "datatype", "liver.fibrosisOrCirrhosis must be true or false; got 1"),
    ("priorTherapy.systemicChemotherapy", "no", "datatype", "priorTherapy.systemicChemotherapy must be true or false"),
    ("priorTherapy.oxaliplatin", "yes", "datatype", "priorTherapy.oxaliplatin must be true or false"),
    ("priorTherapy.irinotecan", 0, "datatype", "priorTherapy.irinotecan must be true or false"),
    ("priorTherapy.antiEgfr", "cetuximab", "datatype", "priorTherapy.antiEgfr must be true or false"),
    ("priorTherapy.bevacizumab", None and 0 or "n", "datatype", "priorTherapy.bevacizumab must be true or false"),
    ("priorTherapy.cycles", -2, "minInclusive", "priorTherapy.cycles must be an integer ≥ 0 (number of chemotherapy cycles); got -2"),
    ("priorTherapy.cycles", 6.5, "datatype", "priorTherapy.cycles must be an integer ≥ 0"),
    ("priorTherapy.response", "PR", "in", 'priorTherapy.response must be one of: complete, partial, stable, progressive; got "PR"'),
    ("priorTherapy.priorHepatectomy", "twice", "datatype", "priorTherapy.priorHepatectomy must be true or false"),
]


@pytest.mark.parametrize("path,value,rule,message", FIELD_CASES, ids=[f"{c[0]}={c[1]!r}" for c in FIELD_CASES])
def test_field_rule(path, value, rule, message):
    violation = only(validate(with_field(path, value)))
    assert violation.field == path
    assert violation.rule == rule
    assert message in violation.message
    assert violation.record == "p-x"
    assert "{$value}" not in violation.message


def test_every_contract_field_has_a_rule_test():
    tested = {case[0] for case in FIELD_CASES}
    assert tested == set(patients.contract().fields)


@pytest.mark.parametrize("path,good", [
    ("age", 18), ("age", 110), ("ecog", 0), ("ecog", 4), ("liverMetastases.count", 1),
    ("liverMetastases.largestDiameterMm", 300), ("liverMetastases.largestDiameterMm", 0.1),
    ("liverMetastases.diseaseFreeIntervalMonths", 0), ("ceaNgPerMl", 0), ("liver.futureLiverRemnantPercent", 0),
    ("liver.futureLiverRemnantPercent", 100), ("priorTherapy.cycles", 0), ("ceaNgPerMl", 1e-7), ("ceaNgPerMl", 12345.678),
])
def test_boundaries_are_valid(path, good):
    report = validate(with_field(path, good))
    assert report.conforms, report.to_text()


@pytest.mark.parametrize("path", [p for p, s in patients.contract().fields.items() if not s.multiple])
def test_single_valued_fields_reject_two_values(path):
    spec = patients.field_spec(path)
    sample = {"integer": [20, 30] if path == "age" else [1, 2], "decimal": [1, 2], "boolean": [True, False], "code": list(spec.codes)[:2]}[spec.kind]
    violation = only(validate(with_field(path, sample)))
    assert (violation.field, violation.rule) == (path, "maxCount")
    assert violation.value == sample
    assert path in violation.message


def test_extrahepatic_sites_must_be_a_list():
    violation = only(validate({"id": "p-x", "extrahepaticSites": "lung"}))
    assert (violation.field, violation.rule) == ("extrahepaticSites", "type")
    assert "must be a list" in violation.message


def test_object_where_a_value_is_expected():
    violation = only(validate({"id": "p-x", "age": {"years": 60}}))
    assert (violation.field, violation.rule) == ("age", "type")
    assert "not an object" in violation.message


def test_nest_must_be_an_object():
    violation = only(validate({"id": "p-x", "molecular": "RAS mutant"}))
    assert (violation.field, violation.rule) == ("molecular", "type")
    assert "molecular must be an object with the fields ras, braf" in violation.message


# --------------------------------------------------------------------------- consistency rules

CONSISTENCY_CASES = [
    ({"liverMetastases": {"timing": "synchronous", "diseaseFreeIntervalMonths": 6}},
     "liverMetastases.diseaseFreeIntervalMonths", "consistency:synchronous-dfi",
     "liverMetastases.diseaseFreeIntervalMonths is 6 but liverMetastases.timing is synchronous"),
    ({"liverMetastases": {"timing": "metachronous", "diseaseFreeIntervalMonths": 0}},
     "liverMetastases.diseaseFreeIntervalMonths", "consistency:metachronous-dfi",
     "liverMetastases.diseaseFreeIntervalMonths is 0 but liverMetastases.timing is metachronous"),
    ({"extrahepaticDisease": False, "extrahepaticSites": ["lung", "bone"]},
     "extrahepaticSites", "consistency:extrahepatic-sites",
     "extrahepaticSites lists a site but extrahepaticDisease is false"),
    ({"priorTherapy": {"systemicChemotherapy": False, "oxaliplatin": True}},
     "priorTherapy.oxaliplatin", "consistency:prior-oxaliplatin",
     "priorTherapy.oxaliplatin is true but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": False, "irinotecan": True}},
     "priorTherapy.irinotecan", "consistency:prior-irinotecan",
     "priorTherapy.irinotecan is true but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": False, "antiEgfr": True}},
     "priorTherapy.antiEgfr", "consistency:prior-anti-egfr",
     "priorTherapy.antiEgfr is true but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": False, "bevacizumab": True}},
     "priorTherapy.bevacizumab", "consistency:prior-bevacizumab",
     "priorTherapy.bevacizumab is true but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": False, "cycles": 4}},
     "priorTherapy.cycles", "consistency:prior-cycles",
     "priorTherapy.cycles is 4 but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": True, "cycles": 0}},
     "priorTherapy.cycles", "consistency:prior-zero-cycles",
     "priorTherapy.cycles is 0 but priorTherapy.systemicChemotherapy is true"),
    ({"priorTherapy": {"systemicChemotherapy": False, "response": "partial"}},
     "priorTherapy.response", "consistency:prior-response",
     "priorTherapy.response is given but priorTherapy.systemicChemotherapy is false"),
    ({"priorTherapy": {"systemicChemotherapy": False}, "liver": {"chemotherapyAssociatedInjury": True}},
     "liver.chemotherapyAssociatedInjury", "consistency:chemotherapy-liver-injury",
     "liver.chemotherapyAssociatedInjury is true but priorTherapy.systemicChemotherapy is false"),
    ({"liverMetastases": {"count": 1, "distribution": "bilobar"}},
     "liverMetastases.distribution", "consistency:solitary-bilobar",
     "liverMetastases.distribution is bilobar but liverMetastases.count is 1"),
]


@pytest.mark.parametrize("fields,path,rule,message", CONSISTENCY_CASES, ids=[c[2] for c in CONSISTENCY_CASES])
def test_consistency_rule(fields, path, rule, message):
    violation = only(validate({"id": "p-c", **fields}))
    assert (violation.field, violation.rule, violation.record) == (path, rule, "p-c")
    assert message in violation.message
    assert "{" not in violation.message


@pytest.mark.parametrize("fields", [
    {"liverMetastases": {"timing": "synchronous", "diseaseFreeIntervalMonths": 0}},
    {"liverMetastases": {"timing": "metachronous", "diseaseFreeIntervalMonths": 3}},
    {"extrahepaticDisease": False, "extrahepaticSites": []},
    {"extrahepaticDisease": True, "extrahepaticSites": ["peritoneum"]},
    {"priorTherapy": {"systemicChemotherapy": False, "oxaliplatin": False, "cycles": 0}},
    {"priorTherapy": {"oxaliplatin": True}},  # systemicChemotherapy unknown: nothing to contradict
    {"liverMetastases": {"count": 2, "distribution": "bilobar"}},
    {"liverMetastases": {"count": 1, "distribution": "unilobar"}},
], ids=str)
def test_consistent_combinations_pass(fields):
    report = validate({"id": "p-ok", **fields})
    assert report.conforms, report.to_text()


# --------------------------------------------------------------------------- unknown fields and ids


def test_unknown_fields_are_reported_with_their_path():
    report = validate({"id": "p-u", "kras": "G12D", "liverMetastases": {"count": 2, "size": 30}})
    got = {(v.field, v.rule): v.message for v in report.violations}
    assert got == {
        ("kras", "unknown-field"): "field kras is not part of the patient contract",
        ("liverMetastases.size", "unknown-field"): "field liverMetastases.size is not part of the patient contract",
    }


def test_nested_field_at_the_wrong_level_gets_a_hint():
    violation = only(validate({"id": "p-u", "count": 3}))
    assert violation.rule == "unknown-field"
    assert "did you mean liverMetastases.count?" in violation.message


@pytest.mark.parametrize("bad_id,rule", [
    ("x> <y", "pattern"), ("", "pattern"), ("a" * 65, "pattern"), ("p 1", "pattern"), ("../etc", "pattern"),
    ("é", "pattern"), (12, "pattern"), (None, "pattern"), ("x\"} . <a> <b> <c", "pattern"),
])
def test_bad_ids_are_rejected_before_any_iri_is_built(bad_id, rule):
    report, records = patients.parse_and_validate(json.dumps({"id": bad_id, "age": 60}).encode())
    violation = only(report)
    assert (violation.field, violation.rule) == ("id", rule)
    assert "1–64 characters" in violation.message
    # the rest of the record is still validated, under a placeholder node, never an IRI built from the id
    assert all(not str(s).startswith("https://w3id.org/crlm-kg/patient/") for s in records[0].graph.subjects())


def test_missing_id():
    violation = only(validate({"age": 60}))
    assert (violation.field, violation.rule, violation.record) == ("id", "required", 0)


def test_record_without_id_still_gets_field_violations():
    report = validate({"age": 5})
    assert {(v.field, v.rule) for v in report.violations} == {("id", "required"), ("age", "minInclusive")}


def test_ids_of_64_characters_are_fine():
    assert validate({"id": "A-z_0.9" + "x" * 57}).conforms


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("data,rule,fragment", [
    (b"\xff\xfe{}", "encoding", "not valid UTF-8"),
    (b"{\"id\": \"a\", \"age\": 6", "json", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "json", "nested too deeply"),
    (b"42", "type", "must be a patient record"),
    (b"\"p-001\"", "type", "must be a patient record"),
    (b"null", "type", "must be a patient record"),
    (b"[]", "minCount", "no patient record"),
    (b'{"id": "a", "id": "b"}', "json", "appears twice"),
    (b'{"id": "a", "age": NaN}', "json", "not a JSON number"),
    (b"", "json", "not valid JSON"),
])
def test_malformed_json(data, rule, fragment):
    report = patients.validate_document(data, content_type="application/json")
    assert not report.conforms
    assert report.violations[0].rule == rule
    assert fragment in report.violations[0].message
    json.dumps(report.to_json())  # always serialisable


def test_deeply_nested_value_inside_a_record():
    deep: object = 1
    for _ in range(5000):
        deep = {"a": deep}
    report = patients.validate_document(json.dumps({"id": "a", "liverMetastases": deep}, indent=None).encode() if False else
                                        b'{"id": "a", "liverMetastases": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}")
    assert not report.conforms
    assert "nested too deeply" in report.violations[0].message


def test_list_of_non_objects():
    report = validate([1, "x", [2]])
    assert [(v.record, v.rule) for v in report.violations] == [(0, "type"), (1, "type"), (2, "type")]


def test_non_string_keys_from_python():
    report = patients.validate_document({"id": "p-k", 3: "x"})  # type: ignore[arg-type]
    assert not report.conforms
    assert any(v.field == "3" for v in report.violations)


def test_garbage_without_hints_is_neither_json_nor_turtle():
    report = patients.validate_document(b"this is not a patient")
    violation = only(report)
    assert violation.rule == "syntax"
    assert "neither JSON" in violation.message and "nor Turtle" in violation.message


def test_invalid_turtle():
    violation = only(patients.validate_document(b"@prefix : <x> . :a :b", content_type="text/turtle"))
    assert violation.rule == "turtle"


def test_remote_context_is_never_fetched():
    doc = {"@context": "http://169.254.169.254/latest/meta-data", "id": "p-1"}
    violation = only(patients.validate_document(json.dumps(doc).encode(), content_type="application/ld+json"))
    assert violation.rule == "remote-context"


def test_utf8_bom_is_accepted():
    assert patients.validate_document(b"\xef\xbb\xbf" + json.dumps({"id": "p-bom"}).encode()).conforms


# --------------------------------------------------------------------------- formats


def test_format_detection():
    assert patients.detect_format(b"{}", content_type="application/json; charset=utf-8") == "json"
    assert patients.detect_format(b"{}", content_type="application/ld+json") == "jsonld"
    assert patients.detect_format(b"x", content_type="text/turtle") == "turtle"
    assert patients.detect_format(b"x", filename="a.ttl") == "turtle"
    assert patients.detect_format(b"x", filename="a.jsonld") == "jsonld"
    assert patients.detect_format(b"x", filename="a.json") == "json"
    # the content type wins over the suffix
    assert patients.detect_format(b"x", filename="a.json", content_type="text/turtle") == "turtle"


def test_turtle_record_is_validated_and_mapped_back_to_json_paths():
    ttl = b"""@prefix crlm: <https://w3id.org/crlm-kg/ontology#> .
    <https://w3id.org/crlm-kg/patient/t-1> a crlm:Patient ; crlm:age 150 ; crlm:rasStatus crlm:RasMutant ;
        crlm:largestMetastasisDiameterMm 40 ; crlm:extraThing 1 ."""
    report, records = patients.parse_and_validate(ttl, filename="t.ttl")
    assert {(v.record, v.field, v.rule) for v in report.violations} == {
        ("t-1", "age", "maxInclusive"), ("t-1", CRLM + "extraThing", "unknown-field")}
    assert records[0].fields["molecular.ras"] == "mutant"
    assert records[0].fields["liverMetastases.largestDiameterMm"] == 40  # an integer literal is read as a decimal


def test_turtle_patient_outside_the_patient_namespace():
    ttl = b"""@prefix crlm: <https://w3id.org/crlm-kg/ontology#> . <http://example.org/p1> a crlm:Patient ; crlm:age 50 ."""
    violation = only(patients.validate_document(ttl, content_type="text/turtle"))
    assert (violation.field, violation.rule) == ("id", "pattern")


def test_turtle_without_patients():
    violation = only(patients.validate_document(b"<http://a> <http://b> <http://c> .", content_type="text/turtle"))
    assert violation.rule == "minCount"


def test_jsonld_with_the_published_context_is_read_as_contract_json():
    doc = {"@context": patients.CONTEXT_IRI, "id": "p-ld", "molecular": {"ras": "mutnt"}}
    violation = only(patients.validate_document(json.dumps(doc).encode(), content_type="application/ld+json"))
    assert (violation.field, violation.rule, violation.value) == ("molecular.ras", "in", "mutnt")


def test_jsonld_with_inline_context():
    doc = json.loads((ROOT / "data/examples/patients/inline-context-example.jsonld").read_text())
    report, records = patients.parse_and_validate(json.dumps(doc).encode(), content_type="application/ld+json")
    assert report.conforms, report.to_text()
    assert records[0].id == "ex-jsonld-inline"
    assert records[0].fields["molecular.ras"] == "mutant"
    doc["age"] = 7
    violation = only(patients.validate_document(json.dumps(doc).encode(), content_type="application/ld+json"))
    assert (violation.field, violation.rule, violation.value) == ("age", "minInclusive", 7)


# --------------------------------------------------------------------------- batches


def test_batch_traces_each_violation_to_its_record():
    records = [dict(FULL, id=f"p-{i}") for i in range(50)]
    records[7] = with_field("age", 12, records[7])
    records[31] = with_field("molecular.ras", "maybe", records[31])
    records[44] = {"id": "bad id", "liverMetastases": {"count": 0}}
    records[45] = dict(records[45], id="p-7")  # duplicate id
    report = validate(records)
    got = [(v.record, v.index, v.field, v.rule) for v in report.violations]
    assert got == [
        ("p-7", 7, "age", "minInclusive"),
        ("p-31", 31, "molecular.ras", "in"),
        (44, 44, "id", "pattern"),
        (44, 44, "liverMetastases.count", "minInclusive"),
        ("p-7", 45, "id", "unique"),
    ]
    assert report.records == 50


def test_batch_runs_one_validation(monkeypatch):
    calls = []
    from crlm_kg.patients import validation

    real = validation.run_shacl
    monkeypatch.setattr(validation, "run_shacl", lambda graph: calls.append(len(graph)) or real(graph))
    report = validate([dict(FULL, id=f"p-{i}") for i in range(20)])
    assert report.conforms
    assert len(calls) == 1


def test_report_json_and_text():
    report = validate([{"id": "a", "age": 12}, {"id": "b"}])
    data = report.to_json()
    assert data["conforms"] is False and data["records"] == 2 and data["violationCount"] == 1
    assert data["violations"][0] == {"record": "a", "index": 0, "field": "age", "rule": "minInclusive",
                                    "message": "age must be an integer from 18 to 110 (age in years); got 12", "value": 12}
    assert report.to_text() == "a: age [minInclusive] age must be an integer from 18 to 110 (age in years); got 12"


# --------------------------------------------------------------------------- shapes and examples


@pytest.mark.slow  # over 1.5 s: make test runs it, make test-fast does not
def test_shape_gates_pass():
    gates = patients.shape_gates()
    assert [g.name for g in gates] == ["patient shapes well-formed", "patient examples"]
    for gate in gates:
        assert gate.ok, (gate.name, gate.problems)


def test_shapes_do_not_describe_ontology_terms():
    shapes = patients.shapes_graph()  # the shared graph: validations never add to it (tests/test_patient_shared_state.py)
    assert not [s for s in shapes.subjects() if str(s).startswith(CRLM)]
    assert all(str(s).startswith("https://w3id.org/crlm-kg/shapes") for s in shapes.subjects() if isinstance(s, rdflib.URIRef))


def test_every_constraint_has_a_message():
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    shapes = patients.shapes_graph()
    property_shapes = set(shapes.subjects(rdflib.RDF.type, sh.PropertyShape))
    assert len(property_shapes) == len(patients.contract().fields)
    for shape in property_shapes:
        message = str(shapes.value(shape, sh.message))
        assert message.startswith(str(shapes.value(shape, sh.name)) + " must be"), shape
    for constraint in shapes.objects(None, sh.sparql):
        assert shapes.value(constraint, sh.message) is not None
        label = str(shapes.value(constraint, rdflib.RDFS.label))
        assert label.startswith("consistency:") or label == "datatype", label  # "datatype": a number check of a decimal field


def test_examples_folder_is_complete():
    valid = list((ROOT / "data/examples/patients").glob("*.json"))
    assert len(valid) >= 10
    assert list((ROOT / "data/examples/patients").glob("*.jsonld")) and list((ROOT / "data/examples/patients").glob("*.ttl"))
    for invalid in (ROOT / "data/examples/invalid").iterdir():
        if invalid.name.endswith(".expected.json"):
            continue
        expected = json.loads(invalid.with_name(invalid.stem + ".expected.json").read_text())
        report = patients.validate_document(invalid.read_bytes(), filename=invalid.name)
        assert sorted((v.field, v.rule) for v in report.violations) == sorted((e["field"], e["rule"]) for e in expected), invalid.name
