"""The evidence page's form: its fields come from the patient contract (``crlm_kg.patients``), never a copy.

Each field's label and definition are the ontology property's (``rdfs:label``, ``skos:definition``); its
allowed values are the contract's codes, and its range and unit are what the SHACL shape's message says
(``validation/patient-shapes.ttl``: "must be a number > 0 and ≤ 300 (largest diameter in mm)"), so the
form tells people exactly what validation will check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rdflib import Literal
from rdflib.namespace import SH

from crlm_kg import patients
from crlm_kg.store import IRI, Store

_RULE = re.compile(r"\bmust be (.*?)(?:; got .*)?$")
NEST_TITLES = {None: "Patient", "primaryTumor": "Primary tumour", "liverMetastases": "Liver metastases", "molecular": "Molecular profile",
               "liver": "Liver", "priorTherapy": "Prior therapy"}
LABELS = "SELECT ?p ?label ?definition WHERE { ?p a ?kind . OPTIONAL { ?p rdfs:label ?label } OPTIONAL { ?p skos:definition ?definition } }"


@dataclass(frozen=True)
class FormField:
    path: str  # the contract's JSON path, also the form control's name
    kind: str  # integer, decimal, boolean, code
    label: str
    definition: str | None
    rule: str | None  # what validation accepts, from the shape's message
    codes: tuple[str, ...]
    multiple: bool

    @property
    def control_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@lru_cache(maxsize=1)
def _rules() -> dict[str, str]:
    """Field path -> "an integer from 18 to 110 (age in years)", from the shapes' own messages."""
    shapes = patients.shapes_graph()
    rules: dict[str, str] = {}
    for shape, name in shapes.subject_objects(SH.name):
        for message in shapes.objects(shape, SH.message):
            match = _RULE.search(str(message))
            if isinstance(message, Literal) and match and str(message).startswith(str(name)):
                rules.setdefault(str(name), match.group(1))
    return rules


def form_fields(store: Store) -> list[FormField]:
    described = {r["p"].value: r for r in store.select(LABELS, {"kind": IRI("http://www.w3.org/2002/07/owl#DatatypeProperty")})}
    described.update({r["p"].value: r for r in store.select(LABELS, {"kind": IRI("http://www.w3.org/2002/07/owl#ObjectProperty")})})
    fields = []
    for spec in patients.contract().fields.values():
        row = described.get(spec.property, {})
        fields.append(FormField(path=spec.path, kind=spec.kind, label=row.get("label") or spec.term, definition=row.get("definition"),
                                rule=_rules().get(spec.path), codes=tuple(spec.codes), multiple=spec.multiple))
    return fields


def grouped(fields: list[FormField]) -> list[tuple[str, list[FormField]]]:
    groups: dict[str | None, list[FormField]] = {}
    for field in fields:
        groups.setdefault(field.path.split(".")[0] if "." in field.path else None, []).append(field)
    return [(NEST_TITLES.get(nest, nest or "Patient"), members) for nest, members in groups.items()]


def record_from_form(form: dict[str, list[str]], fields: list[FormField]) -> dict[str, Any]:
    """The contract JSON the form describes. A value that is not of the field's type is sent as the text
    it is, so validation reports it next to its field (rather than the page dropping it silently)."""
    record: dict[str, Any] = {"id": (form.get("id") or [""])[0].strip() or "form-patient"}
    for field in fields:
        values = [v.strip() for v in form.get(field.path, []) if v.strip()]
        if not values:
            continue
        value: Any = values if field.multiple else _typed(values[0], field.kind)
        if "." in field.path:
            nest, term = field.path.split(".", 1)
            record.setdefault(nest, {})[term] = value
        else:
            record[field.path] = value
    return record


def _typed(text: str, kind: str) -> Any:
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "decimal" and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text) if "." in text else int(text)
    return text


def form_values(record: dict[str, Any]) -> dict[str, Any]:
    """The record's values by field path, to fill the form again after a POST."""
    values: dict[str, Any] = {"id": record.get("id")}
    for key, value in record.items():
        if isinstance(value, dict):
            values.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            values[key] = value
    return {k: (json.dumps(v) if isinstance(v, bool) else v) for k, v in values.items()}
