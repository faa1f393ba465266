"""A FHIR R4 Bundle: its structure validated with fhir.resources, its resources grouped by patient.

Each entry's resource is validated on its own, so that an error names the resource
(``Observation/cea-1``) and the element (``valueQuantity.value``) a clinician can find."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

BUNDLE_TYPES = {"collection", "transaction", "searchset", "batch", "document"}


@dataclass
class FhirProblem:
    resource: str  # "Observation/cea-1", "Bundle" or "Bundle.entry[3]"
    element: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "message": self.message}


@dataclass
class PatientResources:
    patient: Any  # fhir.resources Patient
    resources: list[Any] = field(default_factory=list)


@dataclass
class ParsedBundle:
    timestamp: str | None
    patients: list[PatientResources]
    orphans: list[Any]  # resources whose subject is no patient of the bundle
    problems: list[FhirProblem]


def label(resource: Any) -> str:
    return f"{resource.get_resource_type()}/{resource.id}" if getattr(resource, "id", None) else resource.get_resource_type()


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(resource)"


def _validate(kind: str, data: dict, where: str, problems: list[FhirProblem]) -> Any:
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError, AttributeError):
        problems.append(FhirProblem(where, "resourceType", f"{kind!r} is not a FHIR R4 resource type"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(FhirProblem(where, _loc(error["loc"]), error["msg"]))
    return None


def parse_bundle(doc: Any) -> ParsedBundle:
    problems: list[FhirProblem] = []
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        found = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        problems.append(FhirProblem("(document)", "resourceType", f"a FHIR Bundle is expected; got {found!r}"))
        return ParsedBundle(None, [], [], problems)
    entries = doc.get("entry") or []
    shell = {k: v for k, v in doc.items() if k != "entry"}
    bundle = _validate("Bundle", shell, "Bundle", problems)
    if bundle is not None and bundle.type not in BUNDLE_TYPES:
        problems.append(FhirProblem("Bundle", "type", f"a bundle of type {bundle.type!r} holds no patient data; use collection, transaction or searchset"))
    if not isinstance(entries, list):
        problems.append(FhirProblem("Bundle", "entry", "entry must be a list"))
        entries = []
    resources: list[tuple[str | None, Any]] = []
    for index, entry in enumerate(entries):
        data = entry.get("resource") if isinstance(entry, dict) else None
        where = f"Bundle.entry[{index}]"
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            problems.append(FhirProblem(where, "resource", "each entry must hold a resource with a resourceType"))
            continue
        name = f"{data['resourceType']}/{data['id']}" if isinstance(data.get("id"), str) else f"{where}.resource ({data['resourceType']})"
        resource = _validate(data["resourceType"], data, name, problems)
        if resource is not None:
            resources.append((entry.get("fullUrl"), resource))
    timestamp = str(bundle.timestamp) if bundle is not None and bundle.timestamp else None
    patients, orphans = _group(resources)
    return ParsedBundle(timestamp, patients, orphans, problems)


def _group(resources: list[tuple[str | None, Any]]) -> tuple[list[PatientResources], list[Any]]:
    """Resources by the patient their ``subject`` refers to (``Patient/<id>`` or the patient entry's fullUrl)."""
    groups: dict[str, PatientResources] = {}
    order: list[PatientResources] = []
    for full_url, resource in resources:
        if resource.get_resource_type() == "Patient":
            group = PatientResources(resource)
            order.append(group)
            for key in (f"Patient/{resource.id}", full_url):
                if key:
                    groups[key] = group
    orphans = []
    for _, resource in resources:
        if resource.get_resource_type() == "Patient":
            continue
        subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
        reference = getattr(subject, "reference", None) if subject is not None else None
        group = groups.get(reference) if reference else None
        if group is None:
            orphans.append(resource)
        else:
            group.resources.append(resource)
    return order, orphans
