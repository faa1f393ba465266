"""SHACL validation of a batch of records, with each violation traced back to its record and field."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any, Iterable

import pyshacl
import rdflib
from rdflib.namespace import RDF, RDFS, SH

from .contract import SHAPES_FILE, contract
from .limits import DEFAULT_LIMITS, Limits
from .parsing import parse
from .rdf import quiet_rdflib
from .report import Batch, PatientRecord, ValidationReport, Violation, field_value, jsonable, shown


_RULE_PRIORITY = {"structure": 0, "json": 0, "type": 1, "datatype": 2, "in": 2, "nodeKind": 2}
_VALUE_RULES = {"minInclusive", "maxInclusive", "minExclusive", "maxExclusive"}
_SCALAR_RULES = {"datatype", "in"}


@lru_cache(maxsize=1)
def shapes_graph() -> rdflib.Graph:
    """The patient shapes, parsed once and shared: read-only (never handed to pyshacl)."""
    graph = rdflib.Graph()
    graph.parse(SHAPES_FILE, format="turtle")
    return graph


_PER_THREAD = threading.local()


def private_shapes() -> rdflib.Graph:
    """This thread's own copy of the shapes, for pyshacl: pyshacl adds triples to the shapes
    graph it is given (471 → 473 on its first run), and a graph written by one thread while
    another reads it breaks both. Copied once per thread (≈ 15 ms), not once per validation."""
    copy = getattr(_PER_THREAD, "shapes", None)
    if copy is None:
        copy = rdflib.Graph()
        copy += shapes_graph()
        _PER_THREAD.shapes = copy
    return copy


def warm_up() -> None:
    """Parse the shapes and prepare every query validation uses, before the server accepts
    connections: the first requests then never race to build them."""
    from .cohort_check import check_cohort  # here: cohort_check builds on this module

    shapes_graph()
    contract()
    record = {"id": "warm-up", "age": 60, "liverMetastases": {"count": 1, "timing": "metachronous"}}
    validate_records([record])
    check_cohort([record])  # compiles the shapes (rdflib parses their SPARQL) and runs the fast path once


def _rule_name(component: Any, constraint: Any, shapes: rdflib.Graph) -> str:
    if constraint is not None:
        label = shapes.value(constraint, RDFS.label)
        if label is not None:
            return str(label)
    name = str(component).rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
    name = name[:1].lower() + name[1:]
    return {"closed": "unknown-field"}.get(name, name)  # the same rule as an unknown JSON key


def run_shacl(graph: rdflib.Graph) -> rdflib.Graph:
    with quiet_rdflib():
        conforms, results, _ = pyshacl.validate(
            graph,
            shacl_graph=private_shapes(),
            inference="none",
            inplace=True,
            allow_infos=True,
            allow_warnings=True,
            meta_shacl=False,
        )
    return results


def validate_batch(batch: Batch, limits: Limits = DEFAULT_LIMITS) -> ValidationReport:
    violations = list(batch.problems.items)
    if len(batch.graph):
        shapes = shapes_graph()
        results = run_shacl(batch.graph)
        by_node = {record.node: record for record in batch.records}
        for result in results.subjects(RDF.type, SH.ValidationResult):
            violations.append(_to_violation(results, result, by_node, shapes))
    violations = _tidy(violations)
    # the first limits.violations are listed, all are counted: a report never outgrows its document by much
    return ValidationReport(not violations, violations[:limits.violations], batch.count, batch.format,
                            fhir_unmapped=batch.fhir_unmapped, total=len(violations))


def _to_violation(results: rdflib.Graph, result: Any, by_node: dict, shapes: rdflib.Graph) -> Violation:
    focus = results.value(result, SH.focusNode)
    path = results.value(result, SH.resultPath)
    value_node = results.value(result, SH.value)
    component = results.value(result, SH.sourceConstraintComponent)
    constraint = results.value(result, SH.sourceConstraint)
    message = results.value(result, SH.resultMessage)
    record = by_node.get(focus)
    spec = contract().by_property.get(str(path)) if path is not None else None
    field_path = spec.path if spec else (str(path) if path is not None else "(record)")
    rule = _rule_name(component, constraint, shapes)
    if value_node is not None and rule not in ("maxCount",):
        value = field_value(spec, value_node)
    elif record is not None and spec is not None:
        value = record.fields.get(spec.path)
    else:
        value = None
    text = _message(message, rule, field_path, value, sparql_based=constraint is not None, of_a_field=spec is not None)
    if record is not None:
        label: str | int = record.id if record.id else record.index
        index = record.index
    else:
        label, index = str(focus), None
    return Violation(label, index, field_path, rule, text, jsonable(value))


def _message(message: Any, rule: str, field_path: str, value: Any, *, sparql_based: bool, of_a_field: bool) -> str:
    """The clinician's message. A SHACL-SPARQL message comes rendered by pyshacl (its {$value}/{?shown});
    a core constraint's message has no placeholder (no engine fills one in), so the field and the value
    as the client sent it are added here."""
    if rule == "unknown-field":
        return f"field {field_path} is not part of the patient contract"
    text = str(message) if message is not None else f"{field_path} breaks the rule {rule}"
    if not sparql_based and of_a_field:
        text = f"{text}; got {shown(value)}"
    return text


def _tidy(violations: list[Violation]) -> list[Violation]:
    """One violation per (record, field, rule, value); a value of the wrong type is not also out of range."""
    wrong_type = {(v.index, v.record, v.field, json.dumps(v.value, sort_keys=True)) for v in violations if v.rule in _SCALAR_RULES}
    seen, out = set(), []
    for v in violations:
        key_value = json.dumps(v.value, sort_keys=True)
        if v.rule in _VALUE_RULES and (v.index, v.record, v.field, key_value) in wrong_type:
            continue
        key = (v.index, v.record, v.field, v.rule, key_value)
        if key in seen:
            continue
        seen.add(key)
        out.append(v)
    order = {path: i for i, path in enumerate(["id", *contract().fields])}

    def sort_key(v: Violation):
        return (-1 if v.index is None else v.index, order.get(v.field, len(order)), _RULE_PRIORITY.get(v.rule, 5), v.rule)

    return sorted(out, key=sort_key)


def parse_and_validate(data: Any, filename: str | None = None, content_type: str | None = None,
                       limits: Limits = DEFAULT_LIMITS) -> tuple[ValidationReport, list[PatientRecord]]:
    """Parse a document of one or more patient records and validate it as one batch, within ``limits``.

    Never raises for bad input: every problem is a violation of the report."""
    try:
        batch = parse(data, filename, content_type, limits)
        report = validate_batch(batch, limits)
    except RecursionError:
        report = ValidationReport(False, [Violation("document", None, "(document)", "json", "the document is nested too deeply")], 0, None)
        return report, []
    return report, batch.records


def validate_document(data: Any, filename: str | None = None, content_type: str | None = None,
                      limits: Limits = DEFAULT_LIMITS) -> ValidationReport:
    """Validate a document of patient records (JSON, JSON-LD or Turtle; one record or a list)."""
    return parse_and_validate(data, filename, content_type, limits)[0]


def validate_records(records: Iterable[dict]) -> ValidationReport:
    """Validate already-parsed JSON records as one batch."""
    return parse_and_validate(list(records))[0]
