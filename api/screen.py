"""POST /screen: which patients of a cohort match a trial (or every trial), criterion by criterion.

The body is a cohort: NDJSON (one contract record or FHIR bundle per line), CSV (a header of
contract field paths), a JSON list of records, or a FHIR bundle. Invalid records do not stop the
screening: each is listed with its field, rule and message, and the valid ones are screened.
The limits of a batch apply (``max_batch_bytes``, ``max_records``, ``max_record_keys``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from crlm_kg import screening
from crlm_kg.screening.engine import STATUSES

from . import privacy
from .deps import BatchBody, LookupDep, SettingsDep, patient_limits
from .problems import Problem

router = APIRouter(tags=["evidence"])

COHORT_TYPES = {"application/x-ndjson": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/PatientRecord"}}},
                "application/fhir+json": {"schema": {"type": "object"}}}


def _statuses(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown or not chosen:
        message = f"status takes {', '.join(STATUSES)} (comma-separated); got {text!r}"
        raise Problem(422, "Unknown filter value", message, [{"field": "status", "rule": "in", "message": message}])
    return chosen


@router.post(
    "/screen",
    summary="Screen a cohort for trials",
    description="Validates every record of the cohort, then lists for one trial (``trial``) or every trial the patients whose "
    "status is among ``status`` (default: eligible), each with its per-criterion verdicts (met / not-met / unknown, the field "
    "that decides, the patient's value, the fields missing). Invalid records are listed under ``invalid`` (field, rule, message) "
    "and not screened. A patient's verdicts are those POST /evidence gives it.",
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "unknown trial"}, 422: {"description": "the cohort cannot be read"}},
    openapi_extra={"requestBody": {"required": True, "description": "a cohort of patient records", "content": COHORT_TYPES}},
)
async def screen(request: Request, body: BatchBody, settings: SettingsDep, lookup: LookupDep,
                 trial: Annotated[str | None, Query(description="a trial's id or acronym (default: every trial)")] = None,
                 status: Annotated[str, Query(description=f"statuses listed, comma-separated ({', '.join(STATUSES)})")] = "eligible",
                 format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv (one row per patient, trial and criterion)")] = "json",
                 ) -> Any:
    statuses = _statuses(status)
    privacy.record_received("/screen", body, settings)
    limits = patient_limits(settings)
    try:
        cohort = await run_in_threadpool(screening.read_cohort, body, None, request.headers.get("content-type"), limits, limits.records)
    except screening.CohortError as exc:
        raise Problem(422, "Unreadable cohort", str(exc), [{"field": "(document)", "rule": "cohort", "message": str(exc)}]) from None
    if cohort.over_limit:
        message = f"a cohort holds at most {limits.records} patient records; got more"
        raise Problem(422, "Too many records", message, [{"field": "(document)", "rule": "maxRecords", "message": message}])
    try:
        result = await run_in_threadpool(screening.screen, lookup, cohort.records, trial, statuses, limits, cohort.labels)
    except KeyError:
        raise Problem(404, "Unknown trial", f"no trial has the id or acronym {trial!r}; GET /sparql or the named query "
                                           "trial-eligibility-criteria lists them") from None
    result.invalid = [v.to_json() for v in cohort.problems] + result.invalid
    if format == "csv":
        return Response(screening.to_csv(result), media_type="text/csv; charset=utf-8", headers={"X-Invalid-Records": str(len(result.invalid))})
    answer = screening.to_json(result)
    version = getattr(request.app.state, "data_version", None)
    if version is not None:
        answer["dataVersion"] = version.label
    if cohort.fhir_unmapped:
        answer["fhirUnmapped"] = cohort.fhir_unmapped
    return answer
