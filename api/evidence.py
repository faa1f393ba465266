"""POST /evidence: the evidence that applies to one patient record.

The record is validated first; an invalid record gets the validation report
(HTTP 422) and nothing is evaluated.
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from crlm_kg import patients
from crlm_kg.settings import Settings

from . import privacy
from .deps import BatchBody, Body, LookupDep, SettingsDep
from .problems import PROBLEM_JSON, Problem

PATIENT_MEDIA_TYPES = ["application/json", "application/ld+json", "text/turtle"]


class Loose(BaseModel):
    """Stable keys are typed; more may be added (the contract allows it)."""

    model_config = ConfigDict(extra="allow")


class FongScore(Loose):
    min: Optional[int] = Field(None, description="lowest score the known fields allow")
    max: Optional[int] = Field(None, description="highest score the known fields allow")
    missing: list[str] = Field(default_factory=list, description="fields whose absence widens the range")
    source: Optional[str] = None


class TumourBurdenScore(Loose):
    value: Optional[float] = None
    zone: Optional[str] = None
    source: Optional[str] = None


class FLRAdequacy(Loose):
    value: Optional[bool] = None
    threshold: Optional[float] = None
    source: Optional[str] = None


class Derived(Loose):
    fongScore: FongScore
    tumourBurdenScore: TumourBurdenScore
    sidedness: Optional[str] = Field(None, description="left, right, or null when the location is missing or unassigned")
    futureLiverRemnantAdequate: FLRAdequacy
    classes: list[str] = Field(default_factory=list, description="defined patient classes of the ontology this patient falls in")


class CriterionResult(Loose):
    id: str
    text: str
    kind: str = Field(description="inclusion or exclusion")
    status: str = Field(description="met, not-met or unknown")
    evaluable: bool
    field: Optional[str] = None
    patientValue: Any = None
    sourceWording: Optional[str] = None
    source: Optional[str] = None


class OutcomeFigure(Loose):
    id: str
    endpoint: Optional[str] = None
    value: Optional[float] = None
    unit: Optional[str] = None
    source: Optional[str] = None
    quote: Optional[str] = None


class TrialResult(Loose):
    id: str
    label: str
    status: str = Field(description="eligible, ineligible or undetermined")
    criteria: list[CriterionResult]
    outcomes: list[OutcomeFigure]


class StatementResult(Loose):
    id: str
    kind: str
    label: Optional[str] = None
    direction: Optional[str] = None
    level: Optional[str] = None
    source: Optional[str] = None
    applicability: str
    conflict: bool


class EvidenceResponse(Loose):
    patient: Optional[str]
    derived: Derived
    trials: list[TrialResult]
    recommendations: list[StatementResult]


def patient_request_body(description: str) -> dict[str, Any]:
    """OpenAPI request body: the contract's JSON schema, or JSON-LD, or Turtle."""
    schema = {"$ref": "#/components/schemas/PatientRecord"}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": schema},
                "application/ld+json": {"schema": {"type": "object"}},
                "text/turtle": {"schema": {"type": "string"}},
            },
        }
    }


def validation_problem(report: patients.ValidationReport) -> Problem:
    errors = [{"field": v.field, "rule": v.rule, "message": v.message, "record": v.record} for v in report.violations]
    return Problem(422, "Invalid patient record", f"{len(errors)} violation(s) of the patient contract; nothing was evaluated",
                   errors, report=report.to_json())


async def valid_records(request: Request, route: str, body: bytes, settings: Settings) -> list:
    """The request's patient records, or a 422 with the validation report: nothing invalid is evaluated."""
    privacy.record_received(route, body, settings)
    # validation and evaluation are CPU-bound: off the event loop, so other clients keep being served
    report, records = await run_in_threadpool(patients.parse_and_validate, body, None, request.headers.get("content-type"))
    if not report.conforms:
        raise validation_problem(report)
    return records


router = APIRouter(tags=["evidence"])

_REFUSALS = {
    413: {"description": "body too large", "content": {PROBLEM_JSON: {}}},
    415: {"description": "unsupported media type", "content": {PROBLEM_JSON: {}}},
    503: {"description": "the knowledge graph could not answer: nothing was evaluated", "content": {PROBLEM_JSON: {}}},
}


@router.post(
    "/evidence",
    summary="Evidence that applies to one patient",
    description="Validates the patient record, then returns derived scores, every trial with machine-evaluable eligibility "
    "(criterion by criterion), their outcome figures, and the applicable recommendations and evidence statements.",
    response_model=EvidenceResponse,
    responses={422: {"description": "invalid patient record: the validation report, nothing evaluated"}, **_REFUSALS},
    openapi_extra=patient_request_body("one patient record (JSON, JSON-LD or Turtle)"),
)
async def evidence(request: Request, body: Body, settings: SettingsDep, lookup: LookupDep) -> dict[str, Any]:
    records = await valid_records(request, "/evidence", body, settings)
    if len(records) != 1:
        raise Problem(422, "One patient record expected", f"got {len(records)} records; POST /evidence/batch evaluates several",
                      [{"field": "(document)", "rule": "single-record", "message": "send exactly one patient record"}])
    return await run_in_threadpool(lookup.evaluate, records[0])


@router.post(
    "/evidence/batch",
    summary="Evidence for a list of patients",
    description="Validates every record first (one validation run); evaluates them only if all are valid.",
    response_model=list[EvidenceResponse],
    responses={422: {"description": "at least one invalid record: the validation report"}, **_REFUSALS},
    openapi_extra=patient_request_body("a JSON list of patient records (or JSON-LD / Turtle with several patients)"),
)
async def evidence_batch(request: Request, body: BatchBody, settings: SettingsDep, lookup: LookupDep) -> list[dict[str, Any]]:
    records = await valid_records(request, "/evidence/batch", body, settings)
    return await run_in_threadpool(lambda: [lookup.evaluate(r) for r in records])
