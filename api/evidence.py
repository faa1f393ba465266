"""POST /evidence: the evidence that applies to one patient record.

The record is validated first; an invalid record gets the validation report
(HTTP 422) and nothing is evaluated.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from crlm_kg import patients
from crlm_kg.evidence import SECTIONS, TRIAL_STATUSES, ViewError, apply_view
from crlm_kg.settings import Settings

from . import privacy
from .deps import BatchBody, Body, LookupDep, SettingsDep, patient_limits
from .evidence_models import EvidenceResponse
from .problems import PROBLEM_JSON, Problem

PATIENT_MEDIA_TYPES = ["application/json", "application/ld+json", "text/turtle"]
log = logging.getLogger("crlm_kg.api")


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
    report_json = report.to_json()
    errors = [{"field": v["field"], "rule": v["rule"], "message": v["message"], "record": v["record"]} for v in report_json["violations"]]
    return Problem(422, "Invalid patient record", f"{report.violation_count} violation(s) of the patient contract; nothing was evaluated",
                   errors, report=report_json)


def single_record_problem() -> Problem:
    return Problem(422, "One patient record expected", "the document holds several records; POST /evidence/batch evaluates several",
                   [{"field": "(document)", "rule": "single-record", "message": "send exactly one patient record"}])


def checked_records(body: bytes, content_type: str | None, limits: patients.Limits, single: bool) -> tuple[patients.ValidationReport, list]:
    """The document's validation report and patient records, or a 422 with the report: nothing invalid is evaluated.
    The compiled shapes check plain JSON; pyshacl (the reference) checks the rest and reports every invalid record.

    ``single``: a second record stops the parse (before anything is validated) with a 422."""
    report, records = patients.parse_and_validate_fast(body, None, content_type, limits)
    if single and any(v.rule == "maxRecords" for v in report.violations):
        raise single_record_problem()
    if not report.conforms:
        raise validation_problem(report)
    if single and len(records) != 1:
        raise single_record_problem()
    return report, records


async def valid_records(request: Request, route: str, body: bytes, settings: Settings) -> tuple[patients.ValidationReport, list]:
    """``checked_records`` for a request, off the event loop (validation is CPU-bound: other clients keep being served)."""
    privacy.record_received(route, body, settings)
    await stop_if_client_gone(request, route, 0, 0)
    return await run_in_threadpool(checked_records, body, request.headers.get("content-type"), patient_limits(settings), False)


def _plain_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def answer_response(answer: Any) -> Response:
    """The answer as JSON. The route's response model documents it; validating an answer of up to 1 MB against
    that model at every request cost more than the lookup, so tests check that every answer fits the model
    (tests/test_evidence_api.py) and the route sends the JSON directly."""
    return Response(orjson.dumps(answer, default=_plain_number), media_type="application/json")


def annotated(answer: dict[str, Any], report: patients.ValidationReport, request: Request) -> dict[str, Any]:
    """The answer with the data version it was computed from (to cite it), and a FHIR bundle's elements
    that could not be mapped (beside the answer, never dropped silently)."""
    answer = {**answer, "dataVersion": request.app.state.data_version.label}
    if report.fhir_unmapped:
        answer["fhirUnmapped"] = report.fhir_unmapped
    return answer


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


async def stop_if_client_gone(request: Request, route: str, done: int, total: int) -> None:
    """Stop the work of a request whose client has disconnected (499, nginx's "client closed
    request"; nobody reads it). Checked between steps: a step already running (one pyshacl run,
    one record's evaluation) is not interrupted."""
    if await request.is_disconnected():
        log.info("%s: the client disconnected; stopped after %d of %d records", route, done, total)
        raise Problem(499, "Client closed request", "the client disconnected; the work was stopped")


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
                   status: StatusParam = None, include: IncludeParam = None) -> Response:
    _check_filters(view, status, include)
    privacy.record_received("/evidence", body, settings)
    await stop_if_client_gone(request, "/evidence", 0, 1)
    limits = patient_limits(settings, records=1)

    def validated_and_evaluated() -> tuple[patients.ValidationReport, dict[str, Any]]:
        # one hop off the event loop for both CPU-bound steps (each hop costs a thread handover)
        report, records = checked_records(body, request.headers.get("content-type"), limits, single=True)
        return report, lookup.evaluate(records[0], view)

    report, answer = await run_in_threadpool(validated_and_evaluated)
    return answer_response(annotated(viewed(answer, view, status, include), report, request))


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
                         status: StatusParam = None, include: IncludeParam = None) -> Response:
    _check_filters(view, status, include)
    report, records = await valid_records(request, "/evidence/batch", body, settings)
    answers = []
    for done, record in enumerate(records):  # one record per step, so that a client that has gone stops the batch
        await stop_if_client_gone(request, "/evidence/batch", done, len(records))
        answers.append(await run_in_threadpool(lambda r=record: annotated(viewed(lookup.evaluate(r, view), view, status, include), report, request)))
    return answer_response(answers)
