"""``POST /patients/validate``: validate patient records against the contract's SHACL shapes."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from crlm_kg import patients

from . import privacy
from .deps import Body, SettingsDep, patient_limits
from .problems import PROBLEM_JSON, problem_response


class ViolationModel(BaseModel):
    record: Union[str, int] = Field(description="the record's id, or its position in the document when it has no valid id ('document' for the document itself)")
    index: Optional[int] = Field(None, description="position of the record in the document (0-based); null for the document itself")
    field: str = Field(description="JSON path of the field, e.g. liverMetastases.count")
    rule: str = Field(description="short rule name: datatype, in, minInclusive, maxCount, unknown-field, consistency:synchronous-dfi, …")
    message: str = Field(description="what is wrong, for a clinician")
    value: Any = Field(None, description="the value as sent, when there is one")


class ValidationReportModel(BaseModel):
    conforms: bool
    records: int = Field(description="number of records in the document")
    format: Optional[Literal["json", "jsonld", "turtle", "fhir"]] = None
    violationCount: int = Field(description="every violation found; `violations` lists the first CRLM_KG_MAX_REPORT_VIOLATIONS")
    violations: list[ViolationModel]
    fhirUnmapped: Optional[list[dict[str, str]]] = Field(None, description="FHIR bundles only: each resource and element that gave no field, and why")


class FieldErrorModel(BaseModel):
    record: Union[str, int]
    field: str
    rule: str
    message: str


class InvalidPatientProblem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int = 422
    detail: str = ""
    errors: list[FieldErrorModel]
    report: ValidationReportModel


_EXAMPLE = {"id": "p-001", "age": 64, "liverMetastases": {"count": 3, "largestDiameterMm": 42}, "molecular": {"ras": "wild-type"}}

_REQUEST_BODY = {
    "required": True,
    "description": "One patient record or a list of records: the contract's JSON, JSON-LD or Turtle.",
    "content": {
        "application/json": {"schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}, "example": _EXAMPLE},
        "application/ld+json": {"schema": {"type": "object"}},
        "text/turtle": {"schema": {"type": "string"}},
    },
}


def errors_of(report: patients.ValidationReport) -> list[dict[str, str]]:
    return [{"record": v.record, "field": v.field, "rule": v.rule, "message": v.message} for v in report.violations]


def invalid_response(report: patients.ValidationReport) -> JSONResponse:
    count = report.violation_count
    listed = "" if count == len(report.violations) else f" (the first {len(report.violations)} listed)"
    return problem_response(
        422,
        "Invalid patient record",
        f"{count} violation{'s' if count != 1 else ''} of the patient contract{listed}",
        errors_of(report),
        report=report.to_json(),
    )


router = APIRouter(tags=["patients"])


@router.post(
    "/patients/validate",
    summary="Validate patient records (JSON, JSON-LD or Turtle; one or a list)",
    response_model=ValidationReportModel,
    response_model_exclude_unset=True,  # fhirUnmapped only for FHIR bundles
    responses={
        422: {"model": InvalidPatientProblem, "description": "the records break the contract", "content": {PROBLEM_JSON: {}}},
        413: {"description": "the body is larger than CRLM_KG_MAX_BODY_BYTES", "content": {PROBLEM_JSON: {}}},
    },
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def validate_patients(request: Request, body: Body, settings: SettingsDep):
    privacy.record_received("/patients/validate", body, settings)
    # SHACL validation is CPU-bound: keep it off the event loop
    report, _ = await run_in_threadpool(patients.parse_and_validate_fast, body, None, request.headers.get("content-type"), patient_limits(settings))
    if not report.conforms:
        return invalid_response(report)
    return report.to_json()
