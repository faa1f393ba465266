"""The published shapes and context work without crlm-kg: plain rdflib + pyshacl, as a user of the
release files would run them. Nothing from the project's code is imported here on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pyshacl
import pytest
import rdflib

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "validation" / "patient-shapes.ttl"
CONTEXT = json.loads((ROOT / "validation" / "patient-context.jsonld").read_text(encoding="utf-8"))["@context"]
EXAMPLES = ROOT / "data" / "examples" / "patients"
CRLM = "https://w3id.org/crlm-kg/ontology#"
PREFIX = f"@prefix crlm: <{CRLM}> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"


def validate(data: rdflib.Graph) -> tuple[bool, list[str]]:
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, results, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none")
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    return conforms, [str(m) for m in results.objects(None, sh.resultMessage)]


def jsonld(record: dict) -> rdflib.Graph:
    """A JSON record read with the published context (offline: the context's content, not its IRI)."""
    return rdflib.Graph().parse(data=json.dumps({"@context": CONTEXT, **record}), format="json-ld")


def test_the_turtle_example_conforms():
    conforms, messages = validate(rdflib.Graph().parse(EXAMPLES / "turtle-example.ttl", format="turtle"))
    assert conforms, messages


@pytest.mark.parametrize("name", ["jsonld-example.jsonld", "inline-context-example.jsonld"])
def test_the_jsonld_examples_conform(name):
    document = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    if isinstance(document["@context"], str):  # the context's IRI: use the published file instead
        document["@context"] = CONTEXT
    conforms, messages = validate(rdflib.Graph().parse(data=json.dumps(document), format="json-ld"))
    assert conforms, messages


@pytest.mark.slow  # a plain pyshacl run with the JSON-LD context per example, 1-2 s each
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_json_example_conforms_as_jsonld(path):
    conforms, messages = validate(jsonld(json.loads(path.read_text(encoding="utf-8"))))
    assert conforms, messages


def test_integers_and_decimals_both_pass_a_decimal_field():
    for value in ("45", "45.5"):
        graph = rdflib.Graph().parse(data=PREFIX + f"<https://w3id.org/crlm-kg/patient/n> a crlm:Patient ; "
                                                   f"crlm:largestMetastasisDiameterMm {value} ; crlm:futureLiverRemnantPercent {value} .",
                                     format="turtle")
        conforms, messages = validate(graph)
        assert conforms, (value, messages)


def test_a_string_in_a_decimal_field_fails_with_its_value_in_the_message():
    graph = rdflib.Graph().parse(data=PREFIX + '<https://w3id.org/crlm-kg/patient/s> crlm:largestMetastasisDiameterMm "42" .',
                                 format="turtle")
    conforms, messages = validate(graph)
    assert not conforms
    assert any(m.endswith('got "42"') for m in messages), messages
    assert not any("{?shown}" in m for m in messages)


@pytest.mark.parametrize("field,value,needle", [("age", 12, "age must be"), ("ecog", 9, "ecog must be")])
def test_an_untyped_jsonld_record_is_validated(field, value, needle):
    """No "type" in the record: the shapes still target it (any subject of a contract property)."""
    record = {"id": "untyped", "age": 66, "ecog": 1, field: value}
    assert "type" not in record
    conforms, messages = validate(jsonld(record))
    assert not conforms
    assert any(m.startswith(needle) for m in messages), messages
    assert validate(jsonld({**record, field: {"age": 66, "ecog": 1}[field]}))[0]  # the same record, in range, conforms


def test_every_message_reads_whole_in_plain_pyshacl():
    """Core constraints (min/max, sh:in, sh:datatype, sh:closed, sh:maxCount) and SHACL-SPARQL rules, all
    broken at once: pyshacl fills placeholders in SPARQL-based messages only, so no message may keep one."""
    graph = rdflib.Graph().parse(data=PREFIX + """
        <https://w3id.org/crlm-kg/patient/bad> a crlm:Patient ;
            crlm:age 12 ; crlm:ecogPerformanceStatus 9 ; crlm:ecogPerformanceStatus 1 ;
            crlm:liverMetastasisCount 0 ; crlm:largestMetastasisDiameterMm "42" ; crlm:futureLiverRemnantPercent 101 ;
            crlm:medicallyFit "yes" ; crlm:metastasisDistribution crlm:Age ;
            crlm:priorSystemicChemotherapy false ; crlm:priorChemotherapyCycles 3 ;
            crlm:notAContractField 1 .""", format="turtle")
    conforms, messages = validate(graph)
    assert not conforms
    assert len(messages) >= 8, messages
    unrendered = [m for m in messages if "{" in m or "}" in m]
    assert unrendered == [], unrendered
    assert any(m.startswith("priorTherapy.cycles is 3 but") for m in messages), messages  # a SPARQL message, value filled in
    assert any(m.startswith("age must be an integer from 18 to 110") for m in messages), messages
    assert any("not part of the patient contract" in m for m in messages), messages
