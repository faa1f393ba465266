"""A screening as JSON (the API's answer) or CSV (one row per patient, trial and criterion)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .engine import Screening

CSV_COLUMNS = ("trial", "trialLabel", "patient", "record", "trialStatus", "criterion", "kind", "criterionStatus", "field",
               "patientValue", "missingFields")


def to_json(screening: Screening) -> dict[str, Any]:
    return {"patients": screening.patients, "validPatients": screening.valid, "statuses": list(screening.statuses),
            "trials": screening.trials, "invalid": screening.invalid}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(_cell(v) for v in value)
    return str(value)


def to_csv(screening: Screening) -> str:
    """One row per (trial, matching patient, criterion); the invalid records are not rows here (see ``invalid_csv``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for trial in screening.trials:
        for match in trial["matches"]:
            for c in match["criteria"]:
                writer.writerow([trial["id"], trial["label"], match["patient"], match["record"], match["status"], c["id"], c["kind"],
                                 c["status"], c["field"], _cell(c["patientValue"]), _cell(c.get("missingFields"))])
    return out.getvalue()


def invalid_csv(screening: Screening) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("record", "index", "field", "rule", "message"))
    for v in screening.invalid:
        writer.writerow((v["record"], v["index"], v["field"], v["rule"], v["message"]))
    return out.getvalue()


def dumps(screening: Screening) -> str:
    return json.dumps(to_json(screening), ensure_ascii=False)
