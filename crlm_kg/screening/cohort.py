"""A cohort file into JSON patient records: NDJSON, CSV, a JSON list, or FHIR bundles.

- NDJSON: one contract record (or one FHIR R4 bundle) per line; blank lines are skipped.
- A JSON list of records (what ``/evidence/batch`` takes), or one FHIR bundle (a Patient per record).
- CSV: a header of contract field paths (``id``, ``age``, ``liverMetastases.count``,
  ``molecular.ras`` …); a cell is read as its field's JSON type (``12`` an integer, ``3.5`` a
  number, ``true``/``false``, a code as text), an empty cell is a field not given, and a list
  field (``extrahepaticSites``) takes its codes separated by ``;``. A cell that is not of its
  field's type is kept as text, so validation reports it (field and rule) like the JSON would.

A row that cannot be read (broken JSON, a FHIR bundle that cannot be mapped) is a violation of
that row; the other rows are screened.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..patients import contract
from ..patients.json_records import load_json
from ..patients.limits import DEFAULT_LIMITS, Limits
from ..patients.report import Problems, Violation

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class CohortError(ValueError):
    """The cohort as a whole cannot be read (an unknown format, a CSV without a header)."""


@dataclass
class Cohort:
    records: list[Any] = field(default_factory=list)  # parsed JSON records
    labels: list[Any] = field(default_factory=list)  # how each record is named in messages: its line or row
    problems: list[Violation] = field(default_factory=list)  # rows that could not be read
    fhir_unmapped: list[dict[str, str]] = field(default_factory=list)
    over_limit: bool = False  # more records than the reader was allowed to read (the rest were not read)


def detect(data: bytes, filename: str | None, content_type: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if media in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "csv"
    if media in ("application/x-ndjson", "application/ndjson", "application/jsonl") or name.endswith((".ndjson", ".jsonl")):
        return "ndjson"
    if media in ("application/json", "application/fhir+json") or name.endswith(".json"):
        return "json"
    head = data.lstrip()[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        first = data.lstrip().split(b"\n", 1)[0].strip()
        return "ndjson" if first.endswith(b"}") and b"\n" in data.strip() else "json"
    if head:
        return "csv"
    raise CohortError("the cohort is empty")


def read_cohort(data: bytes, filename: str | None = None, content_type: str | None = None, limits: Limits = DEFAULT_LIMITS,
                max_records: int | None = None) -> Cohort:
    """The cohort's records. ``max_records``: stop reading past that many (``Cohort.over_limit`` says so),
    so that a service refuses a huge cohort without parsing all of it."""
    fmt = detect(data, filename, content_type)
    cohort = Cohort()
    if fmt == "csv":
        _read_csv(data, cohort, max_records)
    elif fmt == "ndjson":
        for number, line in enumerate(data.split(b"\n"), start=1):
            if max_records is not None and len(cohort.records) > max_records:
                break
            if line.strip():
                _add_document(line, f"line {number}", cohort, limits)
    else:
        _add_document(data, "document", cohort, limits, unpack_list=True)
    cohort.over_limit = max_records is not None and len(cohort.records) > max_records
    return cohort


def _add_document(data: bytes, where: str, cohort: Cohort, limits: Limits, unpack_list: bool = False) -> None:
    problems = Problems()
    doc = load_json(data, problems, Limits(records=max(limits.records, 1), keys=limits.keys, document_keys=len(data)))
    if problems.items:
        for v in problems.items:
            cohort.problems.append(Violation(where, None, v.field, v.rule, v.message, v.value))
        return
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        from .. import fhir  # the FHIR models load only for FHIR input

        mapped = fhir.records_from_bundle(doc)
        for error in mapped.errors:
            cohort.problems.append(Violation(where, None, error.get("field") or error.get("path") or "(bundle)", error.get("rule", "fhir"),
                                             error.get("message", str(error))))
        if not mapped.errors:
            for i, record in enumerate(mapped.records):
                cohort.records.append(record)
                cohort.labels.append(f"{where}, patient {i + 1}" if len(mapped.records) > 1 else where)
            cohort.fhir_unmapped += mapped.unmapped
        return
    items = doc if unpack_list and isinstance(doc, list) else [doc]
    for i, item in enumerate(items):
        cohort.records.append(item)
        cohort.labels.append(f"record {i}" if unpack_list and isinstance(doc, list) else where)


def _cell(spec, text: str) -> Any:
    text = text.strip()
    if spec is None:
        return text
    if spec.multiple:
        return [part.strip() for part in text.split(";") if part.strip()]
    if spec.kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if spec.kind == "decimal" and _NUMBER.fullmatch(text):
        return int(text) if _INTEGER.fullmatch(text) else float(text)
    if spec.kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _read_csv(data: bytes, cohort: Cohort, max_records: int | None = None) -> None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CohortError(f"the CSV is not valid UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise CohortError("the CSV has no header row (contract field paths: id, age, liverMetastases.count, …)")
    fields = contract().fields
    columns = [h.strip() for h in header]
    for number, row in enumerate(reader, start=2):
        if max_records is not None and len(cohort.records) > max_records:
            break
        if not any(cell.strip() for cell in row):
            continue
        record: dict[str, Any] = {}
        if len(row) != len(columns):
            cohort.problems.append(Violation(f"row {number}", None, "(record)", "csv",
                                             f"row {number} has {len(row)} cells; the header has {len(columns)}"))
            continue
        for column, cell in zip(columns, row):
            if not cell.strip():
                continue
            value = cell.strip() if column == "id" else _cell(fields.get(column), cell)
            if "." in column:
                nest, term = column.split(".", 1)
                record.setdefault(nest, {})[term] = value
            else:
                record[column] = value
        cohort.records.append(record)
        cohort.labels.append(f"row {number}")
