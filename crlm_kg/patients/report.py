"""What validation produces: violations, the report, the parsed records (and the batch they came in)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import rdflib
from rdflib import Literal, URIRef
from rdflib.namespace import RDF

from .. import paths
from ..store import IRI
from .contract import FieldSpec, contract


@dataclass
class Violation:
    record: str | int  # the record's id, or its index in the document when it has no valid id
    index: int | None  # position in the document (None: the document itself)
    field: str  # JSON path of the field, e.g. "liverMetastases.count"
    rule: str  # short machine name: "minInclusive", "in", "consistency:synchronous-dfi", ...
    message: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"record": jsonable(self.record), "index": self.index, "field": printable(self.field), "rule": self.rule,
                "message": printable(self.message), "value": jsonable(self.value)}


@dataclass
class ValidationReport:
    conforms: bool
    violations: list[Violation] = field(default_factory=list)
    records: int = 0
    format: str | None = None
    fhir_unmapped: list[dict[str, str]] | None = None  # a FHIR bundle's resources and elements that gave no field
    total: int | None = None  # violations found, when more than those listed (the list is capped by Limits.violations)

    @property
    def violation_count(self) -> int:
        return max(self.total or 0, len(self.violations))

    def to_json(self) -> dict[str, Any]:
        out = {
            "conforms": self.conforms,
            "records": self.records,
            "format": self.format,
            "violationCount": self.violation_count,
            "violations": [v.to_json() for v in self.violations],
        }
        if self.fhir_unmapped is not None:
            out["fhirUnmapped"] = self.fhir_unmapped
        return out

    def to_text(self) -> str:
        if self.conforms:
            return f"valid: {self.records} patient record{'s' if self.records != 1 else ''} conform{'' if self.records != 1 else 's'} to the patient contract"
        lines = []
        for v in self.violations:
            where = f"record {v.record}" if isinstance(v.record, int) else printable(str(v.record))
            lines.append(f"{where}: {printable(v.field)} [{v.rule}] {printable(v.message)}")
        if self.violation_count > len(self.violations):
            lines.append(f"… and {self.violation_count - len(self.violations)} more violations (not listed)")
        return "\n".join(lines)


@dataclass
class PatientRecord:
    id: str | None
    index: int
    node: URIRef
    fields: dict[str, Any]
    _graph: rdflib.Graph | None = field(default=None, repr=False)
    _source: rdflib.Graph | None = field(default=None, repr=False)

    @property
    def graph(self) -> rdflib.Graph:
        """The record's own triples (a graph of one patient)."""
        if self._graph is None:
            graph = rdflib.Graph()
            graph.bind("crlm", paths.CRLM)
            if self._source is not None:
                for triple in self._source.triples((self.node, None, None)):
                    graph.add(triple)
            self._graph = graph
        return self._graph

    def facts(self) -> list[tuple[str, Any]]:
        """(property IRI, value) pairs; coded values are ``store.IRI``, others int/float/bool/str."""
        out = []
        # the same triples as ``graph``, read where they are: building the record's own graph (its namespace
        # manager above all) cost more than the evidence lookup's SPARQL query
        source = self._graph if self._graph is not None else self._source
        for _, p, o in (source.triples((self.node, None, None)) if source is not None else ()):
            if p == RDF.type:
                continue
            out.append((str(p), python_value(o)))
        order = _field_order()
        out.sort(key=lambda f: (order.get(f[0], len(order)), str(f[1])))
        return out

    def get(self, path: str, default: Any = None) -> Any:
        return self.fields.get(path, default)


@lru_cache(maxsize=1)
def _field_order() -> dict[str, int]:
    """Contract property IRI -> its place in the contract (the contract is fixed while the process runs)."""
    return {spec.property: i for i, spec in enumerate(contract().fields.values())}


def python_value(node: Any) -> Any:
    if isinstance(node, URIRef):
        return IRI(str(node))
    if isinstance(node, Literal):
        value = node.toPython() if not getattr(node, "ill_typed", False) else str(node)
        if isinstance(value, bool):
            return value
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() and "." not in str(node) else float(value)
        if isinstance(value, (int, float, str)):
            return value
        return str(node)
    return str(node)


class Problems:
    """Violations found before SHACL runs (structure, unknown fields, ids)."""

    def __init__(self) -> None:
        self.items: list[Violation] = []

    def add(self, index: int | None, record: str | int | None, field_: str, rule: str, message: str, value: Any = None) -> None:
        self.items.append(Violation(record if record is not None else (index if index is not None else "document"), index, field_, rule, message, jsonable(value)))


def printable(text: str) -> str:
    """``text`` with any lone UTF-16 surrogate written as its escape (``\\ud800``): such a
    string cannot be encoded as UTF-8, so no answer could carry it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def shown(value: Any) -> str:
    text = json.dumps(jsonable(value), ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"



def field_value(spec: FieldSpec | None, node: Any) -> Any:
    """A node of the data graph as the JSON value the client would have sent."""
    if isinstance(node, URIRef):
        if spec is not None and str(node) in spec.code_for:
            return spec.code_for[str(node)]
        return str(node)
    if isinstance(node, Literal):
        value = python_value(node)
        return value.value if isinstance(value, IRI) else value
    return str(node)


@dataclass
class Batch:
    graph: rdflib.Graph
    records: list[PatientRecord]
    problems: Problems
    format: str
    count: int
    fhir_unmapped: list[dict[str, str]] | None = None
