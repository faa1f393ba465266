"""The patient contract, read from its one definition: the JSON-LD context.

``validation/patient-context.jsonld`` maps every JSON field to an ontology property, its
type, and every value code to an ontology individual; ``contract()`` reads it once. The
API's JSON schema, the evidence lookup and the tests derive their field lists from here,
so a new field is a change to the context (and its shape), not to code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from rdflib import URIRef

from .. import paths


CONTEXT_FILE = paths.VALIDATION_DIR / "patient-context.jsonld"
SHAPES_FILE = paths.VALIDATION_DIR / "patient-shapes.ttl"
PATIENT_BASE = "https://w3id.org/crlm-kg/patient/"
#: The IRI under which the context is published; a JSON-LD document that names it
#: gets the local copy (remote contexts are never fetched).
CONTEXT_IRI = "https://w3id.org/crlm-kg/context/patient.jsonld"
#: Focus nodes of records whose ``id`` is missing or invalid: the rest of such a
#: record is still validated, and its violations are traced back by index.
ANONYMOUS_BASE = "urn:crlm-kg:record:"
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_DEPTH = 32
XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_INTEGER = URIRef(XSD + "integer")
XSD_DECIMAL = URIRef(XSD + "decimal")


@dataclass(frozen=True)
class FieldSpec:
    """One field of the contract as the JSON-LD context defines it."""

    path: str  # JSON path, e.g. "liverMetastases.count"
    term: str  # the JSON key, e.g. "count"
    nest: str | None  # the enclosing object, e.g. "liverMetastases"
    property: str  # the ontology property IRI
    kind: str  # "integer", "decimal", "boolean" or "code"
    codes: dict[str, str]  # code -> individual IRI (kind "code")
    multiple: bool  # a JSON list (e.g. extrahepaticSites)

    @property
    def code_for(self) -> dict[str, str]:
        return {iri: code for code, iri in self.codes.items()}


@dataclass(frozen=True)
class ContractContext:
    context: dict
    fields: dict[str, FieldSpec]  # by JSON path, in contract order
    nests: tuple[str, ...]
    by_property: dict[str, FieldSpec]
    patient_class: str
    type_term: str


def _expand(value: str, prefixes: dict[str, str]) -> str:
    if ":" in value:
        prefix, local = value.split(":", 1)
        if prefix in prefixes and not local.startswith("//"):
            return prefixes[prefix] + local
    return value


@lru_cache(maxsize=1)
def contract() -> ContractContext:
    """The field -> IRI mapping, read from the JSON-LD context file."""
    context = json.loads(CONTEXT_FILE.read_text(encoding="utf-8"))["@context"]
    prefixes = {k: v for k, v in context.items() if isinstance(v, str) and v.endswith(("#", "/"))}
    nests = tuple(k for k, v in context.items() if v == "@nest")
    patient_term = next(k for k, v in context.items() if isinstance(v, str) and _expand(v, prefixes).endswith("#Patient"))
    fields: dict[str, FieldSpec] = {}
    for term, definition in context.items():
        if not isinstance(definition, dict) or "@id" not in definition:
            continue
        nest = definition.get("@nest")
        kind_type = definition.get("@type")
        codes: dict[str, str] = {}
        if kind_type == "@vocab":
            kind = "code"
            codes = {code: _expand(iri, prefixes) for code, iri in definition.get("@context", {}).items() if not code.startswith("@")}
        else:
            kind = _expand(kind_type, prefixes).removeprefix(XSD)
        path = f"{nest}.{term}" if nest else term
        fields[path] = FieldSpec(
            path=path,
            term=term,
            nest=nest,
            property=_expand(definition["@id"], prefixes),
            kind=kind,
            codes=codes,
            multiple=definition.get("@container") in ("@set", "@list"),
        )
    return ContractContext(
        context=context,
        fields=fields,
        nests=nests,
        by_property={spec.property: spec for spec in fields.values()},
        patient_class=_expand(context[patient_term], prefixes),
        type_term=patient_term,
    )


def json_path_for(property_iri: str) -> str | None:
    """The JSON path (e.g. ``liverMetastases.count``) of an ontology property, or None."""
    spec = contract().by_property.get(str(property_iri))
    return spec.path if spec else None


def field_spec(path: str) -> FieldSpec | None:
    return contract().fields.get(path)

