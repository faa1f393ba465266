"""POST /evidence: the evidence that applies to one patient record.

The record is validated first; an invalid record gets the validation report
(HTTP 422) and nothing is evaluated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from crlm_kg import patients
from crlm_kg.evidence import SECTIONS, TRIAL_STATUSES, ViewError, apply_view
from crlm_kg.settings import Settings

from . import privacy
from .deps import BatchBody, Body, LookupDep, SettingsDep
from .evidence_models import EvidenceResponse
from .problems import PROBLEM_JSON, Problem

PATIENT_MEDIA_TYPES = ["application/json", "application/ld+json", "text/turtle"]


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

ViewParam = Annotated[Literal["full", "summary"], Query(
    description="summary: the patient, the derived values and the summary only (what a tumour board reads first); full: everything")]
StatusParam = Annotated[str | None, Query(
    description=f"full view: keep only trials with these statuses, comma-separated ({', '.join(TRIAL_STATUSES)})")]
IncludeParam = Annotated[str | None, Query(
    description=f"full view: keep only these sections, comma-separated ({', '.join(SECTIONS)})")]


def viewed(answer: dict[str, Any], view: str, status: str | None, include: str | None) -> dict[str, Any]:
    try:
        return apply_view(answer, view, status, include)
    except ViewError as exc:
        field = "status" if "status" in str(exc) else "include"
        raise Problem(422, "Unknown filter value", str(exc), [{"field": field, "rule": "in", "message": str(exc)}]) from None


def _check_filters(view: str, status: str | None, include: str | None) -> None:
    """Refuse an unknown filter value before any work (an empty answer would pass it off as a result)."""
    viewed({"patient": None, "summary": {}, "derived": {}}, view, status, include)

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
    response_model_exclude_unset=True,
    responses={422: {"description": "invalid patient record: the validation report, nothing evaluated"}, **_REFUSALS},
    openapi_extra=patient_request_body("one patient record (JSON, JSON-LD or Turtle)"),
)
async def evidence(request: Request, body: Body, settings: SettingsDep, lookup: LookupDep, view: ViewParam = "full",
                   status: StatusParam = None, include: IncludeParam = None) -> dict[str, Any]:
    _check_filters(view, status, include)
    records = await valid_records(request, "/evidence", body, settings)
    if len(records) != 1:
        raise Problem(422, "One patient record expected", f"got {len(records)} records; POST /evidence/batch evaluates several",
                      [{"field": "(document)", "rule": "single-record", "message": "send exactly one patient record"}])
    answer = await run_in_threadpool(lookup.evaluate, records[0])
    return {**viewed(answer, view, status, include), "dataVersion": request.app.state.data_version.label}


@router.post(
    "/evidence/batch",
    summary="Evidence for a list of patients",
    description="Validates every record first (one validation run); evaluates them only if all are valid.",
    response_model=list[EvidenceResponse],
    response_model_exclude_unset=True,
    responses={422: {"description": "at least one invalid record: the validation report"}, **_REFUSALS},
    openapi_extra=patient_request_body("a JSON list of patient records (or JSON-LD / Turtle with several patients)"),
)
async def evidence_batch(request: Request, body: BatchBody, settings: SettingsDep, lookup: LookupDep, view: ViewParam = "full",
                         status: StatusParam = None, include: IncludeParam = None) -> list[dict[str, Any]]:
    _check_filters(view, status, include)
    records = await valid_records(request, "/evidence/batch", body, settings)
    return await run_in_threadpool(lambda: [{**viewed(lookup.evaluate(r), view, status, include), "dataVersion": request.app.state.data_version.label} for r in records])
