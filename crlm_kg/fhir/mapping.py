"""One patient's mCODE resources into the patient record of the contract (docs/fhir-mapping.md).

Every resource or element that yields no field is reported in ``unmapped`` with the reason;
values that contradict each other (two CEA results on one date) are problems naming both."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from . import codes as C
from .bundle import FhirProblem, PatientResources, label


@dataclass
class Unmapped:
    resource: str
    element: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"resource": self.resource, "element": self.element, "reason": self.reason}


@dataclass
class _Dated:
    when: dt.date | None
    value: Any
    source: str


@dataclass
class PatientMapping:
    """What one patient's resources said, before it becomes the record."""
    fields: dict[str, Any] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)
    problems: list[FhirProblem] = field(default_factory=list)
    dated: dict[str, list[_Dated]] = field(default_factory=dict)
    genes: dict[str, list[tuple[bool, str | None, str]]] = field(default_factory=dict)
    primary_onset: dt.date | None = None
    liver_onsets: list[tuple[dt.date | None, str]] = field(default_factory=list)
    extrahepatic: list[str] = field(default_factory=list)

    def skip(self, resource: Any, element: str, reason: str) -> None:
        self.unmapped.append(Unmapped(label(resource), element, reason))

    def add(self, path: str, when: dt.date | None, value: Any, resource: Any) -> None:
        self.dated.setdefault(path, []).append(_Dated(when, value, label(resource)))


def as_date(value: Any) -> dt.date | None:
    """A FHIR date, dateTime or partial date ("2020-03" is taken as its first day; a bare year is too vague)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 7:
        return dt.date(int(value[:4]), int(value[5:7]), 1)
    return None


def codings(concept: Any) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in (getattr(concept, "coding", None) or [])] if concept is not None else []


def code_in(concept: Any, system: str, table: dict | set) -> str | None:
    for sys, code in codings(concept):
        if sys == system and code in table:
            return code
    return None


def icdo3(concept: Any, table: dict) -> str | None:
    """An ICD-O-3 topography code, written with or without its dot (C18.7 or C187)."""
    by_plain = {k.replace(".", ""): k for k in table}
    for sys, code in codings(concept):
        if sys == C.ICDO3 and code and code.replace(".", "") in by_plain:
            return by_plain[code.replace(".", "")]
    return None


def profiles(resource: Any) -> set[str]:
    meta = getattr(resource, "meta", None)
    return {str(p).split("|")[0] for p in (getattr(meta, "profile", None) or [])}


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from start to end (0 when end is not later)."""
    months = (end.year - start.year) * 12 + (end.month - start.month) - (1 if end.day < start.day else 0)
    return max(months, 0)


def map_patient(group: PatientResources, today: dt.date) -> tuple[dict[str, Any], PatientMapping]:
    m = PatientMapping()
    patient = group.patient
    if patient.birthDate is not None:
        born = as_date(patient.birthDate)
        if born is None:
            m.skip(patient, "birthDate", "a birth date with only a year gives no age")
        else:
            m.fields["age"] = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if patient.gender is not None:
        m.fields["sex"] = patient.gender  # the FHIR AdministrativeGender codes are the contract's
    for resource in group.resources:
        handler = _HANDLERS.get(resource.get_resource_type())
        if handler is None:
            m.skip(resource, "resourceType", "no field of the patient record comes from this resource type")
        else:
            handler(resource, m)
    _settle(m)
    record = {"id": patient.id} if patient.id else {}
    for path, value in m.fields.items():
        head, _, tail = path.partition(".")
        if tail:
            record.setdefault(head, {})[tail] = value
        else:
            record[head] = value
    return record, m


def _condition(resource: Any, m: PatientMapping) -> None:
    kinds = profiles(resource)
    if C.PRIMARY_CANCER_CONDITION in kinds:
        site = next((s for s in (resource.bodySite or []) if icdo3(s, C.ICDO3_LOCATION) or code_in(s, C.SNOMED, C.SNOMED_LOCATION)), None)
        if site is None:
            m.skip(resource, "bodySite", "no colorectal body site of the mapping table (ICD-O-3 C18.0–C20.9 or SNOMED CT body structure)")
        else:
            key = icdo3(site, C.ICDO3_LOCATION)
            m.add("primaryTumor.location", None, C.ICDO3_LOCATION[key] if key else C.SNOMED_LOCATION[code_in(site, C.SNOMED, C.SNOMED_LOCATION)], resource)
        m.primary_onset = as_date(resource.onsetDateTime)
        return
    if C.SECONDARY_CANCER_CONDITION not in kinds:
        m.skip(resource, "meta.profile", "not an mCODE primary or secondary cancer condition")
        return
    site = _secondary_site(resource)
    if site is None:
        m.skip(resource, "code", "the metastatic site is not one of the mapping table (SNOMED CT disorder or ICD-O-3 body site)")
    elif site == C.LIVER:
        m.liver_onsets.append((as_date(resource.onsetDateTime), label(resource)))
    else:
        m.extrahepatic.append(site)


def _secondary_site(resource: Any) -> str | None:
    code = code_in(resource.code, C.SNOMED, C.SNOMED_SECONDARY_SITE)
    if code:
        return C.SNOMED_SECONDARY_SITE[code]
    for site in resource.bodySite or []:
        key = icdo3(site, C.ICDO3_SITE)
        if key:
            return C.ICDO3_SITE[key]
        body = code_in(site, C.SNOMED, C.SNOMED_BODY_SITE)
        if body:
            return C.SNOMED_BODY_SITE[body]
    return None


def _observation(resource: Any, m: PatientMapping) -> None:
    when = as_date(resource.effectiveDateTime)
    loinc = {code for sys, code in codings(resource.code) if sys == C.LOINC}
    snomed = {code for sys, code in codings(resource.code) if sys == C.SNOMED}
    local = {code for sys, code in codings(resource.code) if sys == C.CRLM_LIVER}
    if C.CEA in loinc:
        _cea(resource, when, m)
    elif C.ECOG in loinc:
        if resource.valueInteger is not None and 0 <= resource.valueInteger <= 4:
            m.add("ecog", when, resource.valueInteger, resource)
        else:
            m.skip(resource, "value[x]", "ECOG is read from valueInteger 0–4")
    elif snomed & set(C.T_CATEGORY_CODES):
        value = code_in(resource.valueCodeableConcept, C.SNOMED, C.T_VALUES)
        if value:
            m.add("primaryTumor.tStage", when, C.T_VALUES[value], resource)
        else:
            m.skip(resource, "valueCodeableConcept", "T category value not in the verified table")
    elif snomed & set(C.N_CATEGORY_CODES):
        value = code_in(resource.valueCodeableConcept, C.SNOMED, C.N_VALUES)
        if value:
            m.add("primaryTumor.nodePositive", when, C.N_VALUES[value], resource)
        else:
            m.skip(resource, "valueCodeableConcept", "N category value not in the verified table")
    elif C.VARIANT_ASSESSMENT in loinc:
        _variant(resource, m)
    elif C.MSI in loinc:
        value = code_in(resource.valueCodeableConcept, C.LOINC, C.MSI_VALUES)
        if value:
            m.add("molecular.mmr", when, C.MSI_VALUES[value], resource)
        else:
            m.skip(resource, "valueCodeableConcept", "MSI result other than stable (LA14122-8) or MSI-H (LA26203-2)")
    elif local:
        _liver(resource, next(iter(local)), when, m)
    else:
        m.skip(resource, "code", "no field of the patient record has this observation code")


def _cea(resource: Any, when: dt.date | None, m: PatientMapping) -> None:
    quantity = resource.valueQuantity
    unit = getattr(quantity, "code", None) if quantity is not None else None
    if quantity is None or quantity.value is None or unit not in C.CEA_UNITS or (quantity.system and quantity.system != C.UCUM):
        m.skip(resource, "valueQuantity", "CEA is read as a UCUM quantity in ng/mL or ug/L")
        return
    m.add("ceaNgPerMl", when, float(quantity.value) * C.CEA_UNITS[unit], resource)


def _variant(resource: Any, m: PatientMapping) -> None:
    value = code_in(resource.valueCodeableConcept, C.LOINC, {C.PRESENT, C.ABSENT})
    genes, change = [], None
    for component in resource.component or []:
        ccode = {code for sys, code in codings(component.code) if sys == C.LOINC}
        if C.GENE_STUDIED in ccode:
            genes += [C.GENES[code] for sys, code in codings(component.valueCodeableConcept) if sys in C.HGNC_SYSTEMS and code in C.GENES]
        elif C.AMINO_ACID_CHANGE in ccode:
            concept = component.valueCodeableConcept
            texts = [code for _, code in codings(concept) if code] + ([concept.text] if concept is not None and concept.text else [])
            change = texts[0] if texts else None
    if value is None or not genes:
        m.skip(resource, "component" if value else "valueCodeableConcept", "no KRAS/NRAS/BRAF (HGNC id) with a present/absent result")
        return
    for gene in genes:
        m.genes.setdefault(gene, []).append((value == C.PRESENT, change, label(resource)))


def _liver(resource: Any, code: str, when: dt.date | None, m: PatientMapping) -> None:
    path = C.LIVER_CODES.get(code)
    if path is None:
        m.skip(resource, "code", f"{code!r} is not a code of {C.CRLM_LIVER}")
        return
    if path == "liverMetastases.count":
        value = resource.valueInteger
    elif path == "liver.fibrosisOrCirrhosis":
        value = resource.valueBoolean
    else:
        quantity = resource.valueQuantity
        unit = getattr(quantity, "code", None) if quantity is not None else None
        scale = C.LENGTH_TO_MM.get(unit) if path.endswith("Mm") else (1.0 if unit == "%" else None)
        value = None if quantity is None or quantity.value is None or scale is None else _number(float(quantity.value) * scale)
    if value is None:
        m.skip(resource, "value[x]", f"no value of the type and unit {path} needs (docs/fhir-mapping.md)")
    else:
        m.add(path, when, value, resource)


def _number(value: float) -> int | float:
    return int(value) if value == int(value) else value


def _unmapped_resource(resource: Any, m: PatientMapping) -> None:
    kind = resource.get_resource_type()
    m.skip(resource, "code", f"no verified code table for {kind} (RxNorm and SNOMED CT procedure codes were not verified; docs/fhir-mapping.md)")


_HANDLERS: dict[str, Callable[[Any, PatientMapping], None]] = {
    "Condition": _condition, "Observation": _observation, "Procedure": _unmapped_resource,
    "MedicationAdministration": _unmapped_resource, "MedicationRequest": _unmapped_resource,
}


def _settle(m: PatientMapping) -> None:
    """Dated values: the most recent wins; two different values on the same date are a problem."""
    for path, values in m.dated.items():
        latest = max((v.when for v in values if v.when), default=None)
        current = [v for v in values if v.when == latest] or values
        distinct = {repr(v.value) for v in current}
        if len(distinct) > 1:
            names = ", ".join(v.source for v in current)
            m.problems.append(FhirProblem(names, path, f"conflicting values for {path} on {latest or 'an unknown date'}: " + ", ".join(f"{v.source} = {v.value}" for v in current)))
            continue
        m.fields[path] = _number(current[0].value) if isinstance(current[0].value, float) else current[0].value
    _molecular(m)
    _metastases(m)


def _molecular(m: PatientMapping) -> None:
    ras = [r for gene in ("KRAS", "NRAS") for r in m.genes.get(gene, [])]
    if any(present for present, _, _ in ras):
        m.fields["molecular.ras"] = "mutant"
    elif m.genes.get("KRAS") and m.genes.get("NRAS"):
        m.fields["molecular.ras"] = "wild-type"
    elif ras:
        m.unmapped.append(Unmapped(ras[0][2], "component", "RAS wild-type needs both KRAS and NRAS tested"))
    braf = m.genes.get("BRAF", [])
    found = [(change, source) for present, change, source in braf if present]
    if found:
        change, source = found[0]
        if change is None:
            m.unmapped.append(Unmapped(source, "component", "BRAF variant present without an amino-acid change"))
        else:
            m.fields["molecular.braf"] = "V600E" if change in C.V600E else "non-V600E"
    elif braf:
        m.fields["molecular.braf"] = "wild-type"


def _metastases(m: PatientMapping) -> None:
    if m.liver_onsets:
        dates = [d for d, _ in m.liver_onsets if d]
        if dates and m.primary_onset:
            months = months_between(m.primary_onset, min(dates))
            m.fields["liverMetastases.timing"] = "synchronous" if months == 0 else "metachronous"
            m.fields["liverMetastases.diseaseFreeIntervalMonths"] = months
        else:
            m.unmapped.append(Unmapped(m.liver_onsets[0][1], "onsetDateTime", "timing needs the onset of both the primary and the liver metastases"))
    if m.extrahepatic:
        m.fields["extrahepaticDisease"] = True
        m.fields["extrahepaticSites"] = sorted(set(m.extrahepatic))
