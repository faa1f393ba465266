"""Patient records: the contract, parsing, RDF conversion and SHACL validation.

A client sends a patient as the JSON of the contract (/work/shared/patient-contract.md),
as JSON-LD, or as Turtle. The JSON becomes RDF through the project's JSON-LD
context (``validation/patient-context.jsonld``), which is the one place that
maps a JSON field to an ontology property and a coded value to an ontology
individual; this module reads every mapping it needs from that file. The RDF
is validated with the SHACL shapes of ``validation/patient-shapes.ttl``.

The JSON is checked here only for what JSON-LD cannot express or would
silently drop: the document structure, fields outside the contract, the
``id`` (checked before any IRI is built from it) and JSON values whose JSON
type the context's coercion would hide (``"65"`` for an integer). Such a
value is not dropped: it goes into the RDF as the plain literal it is, so the
SHACL datatype or value-set constraint reports it with its message. Every
range, value set, cardinality and cross-field rule lives in the shapes.

A batch of records is one data graph and one pyshacl run; each violation is
traced back to its record through its focus node.

The package's modules, each one concern: ``contract`` (the fields and codes, read from the
context), ``json_records`` (contract JSON into JSON-LD), ``parsing`` (a document of any
format into a data graph and records), ``validation`` (pyshacl and the report), ``report``
(what validation returns), ``rdf`` (rdflib helpers), ``contexts`` (the only JSON-LD context
loaded, from the local file), ``limits`` (work per document), ``examples`` (the example records and
the quality gates).
"""

from __future__ import annotations

from .contract import (ANONYMOUS_BASE, CONTEXT_FILE, CONTEXT_IRI, ID_PATTERN, MAX_DEPTH, PATIENT_BASE, SHAPES_FILE,
                       ContractContext, FieldSpec, contract, field_spec, json_path_for)
from .contexts import ForeignContext
from .examples import EXAMPLES, INVALID_EXAMPLES, shape_gates
from .limits import DEFAULT_LIMITS, Limits
from .parsing import JSON_TYPES, JSONLD_TYPES, TURTLE_TYPES, detect_format, parse
from .rdf import quiet_rdflib
from .report import PatientRecord, ValidationReport, Violation
from .validation import parse_and_validate, shapes_graph, validate_document, validate_records, warm_up
from .cohort_check import parse_and_validate_fast

__all__ = [
    "ANONYMOUS_BASE", "CONTEXT_FILE", "CONTEXT_IRI", "DEFAULT_LIMITS", "EXAMPLES", "ForeignContext", "Limits", "ID_PATTERN", "INVALID_EXAMPLES", "JSONLD_TYPES", "JSON_TYPES",
    "MAX_DEPTH", "PATIENT_BASE", "SHAPES_FILE", "TURTLE_TYPES", "ContractContext", "FieldSpec", "PatientRecord",
    "ValidationReport", "Violation", "contract", "detect_format", "field_spec", "json_path_for", "parse", "parse_and_validate",
    "parse_and_validate_fast", "quiet_rdflib", "shape_gates", "shapes_graph", "validate_document", "validate_records", "warm_up",
]
