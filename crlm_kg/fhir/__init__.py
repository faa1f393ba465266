"""HL7 FHIR R4 (mCODE STU 3/4) bundles into patient records of the contract (issue 16).

``records_from_bundle(doc)`` validates the bundle's structure with ``fhir.resources`` (its
R4B models: the resources read here are the same in R4 and R4B) and maps each patient's
resources to one contract JSON record. It never imports the patients package: the records it
returns are validated there like any JSON record. The mapping table, with the page each code
was verified on, is docs/fhir-mapping.md; the code tables are in ``codes``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .bundle import FhirProblem, parse_bundle
from .mapping import Unmapped, map_patient

MEDIA_TYPE = "application/fhir+json"
FILE_SUFFIX = ".fhir.json"


@dataclass
class FhirMapping:
    records: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # {resource, element, message}


def is_bundle(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("resourceType") == "Bundle"


def records_from_bundle(doc: Any, today: dt.date | None = None) -> FhirMapping:
    """The contract records of a bundle (one per Patient), what could not be mapped, and the errors.

    The age is taken at the bundle's ``timestamp``, else at ``today`` (default: the current date)."""
    parsed = parse_bundle(doc)
    problems: list[FhirProblem] = list(parsed.problems)
    out = FhirMapping()
    if problems:
        out.errors = [p.to_json() for p in problems]
        return out
    if not parsed.patients:
        out.errors = [FhirProblem("Bundle", "entry", "the bundle holds no Patient resource").to_json()]
        return out
    at = dt.date.fromisoformat(parsed.timestamp[:10]) if parsed.timestamp else (today or dt.date.today())
    for group in parsed.patients:
        record, mapping = map_patient(group, at)
        out.records.append(record)
        out.unmapped += [u.to_json() for u in mapping.unmapped]
        problems += mapping.problems
    for orphan in parsed.orphans:
        out.unmapped.append(Unmapped(f"{orphan.get_resource_type()}/{orphan.id}", "subject", "refers to no Patient of the bundle").to_json())
    out.errors = [p.to_json() for p in problems]
    return out


__all__ = ["FILE_SUFFIX", "MEDIA_TYPE", "FhirMapping", "is_bundle", "records_from_bundle"]
