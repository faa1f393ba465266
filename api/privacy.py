"""What the service may write to its logs about patients.

Patient records are evaluated and forgotten: nothing stores them, and by default
nothing logs them either. ``CRLM_KG_LOG_PATIENTS=1`` (off by default) is the one
switch that lets patient data into the logs: the documents posted to the
patient routes (logger ``crlm_kg.api.patients``, level INFO), the query strings of
the access log (``/queries/trials-for-patient?age=…`` carries patient fields),
and the messages of unexpected errors on the patient routes.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("crlm_kg.api.patients")

PATIENT_PATHS = ("/patients/validate", "/evidence", "/evidence/batch")


def log_patients() -> bool:
    """``CRLM_KG_LOG_PATIENTS``: 1/true/yes/on lets patient data into the logs (default off)."""
    return os.environ.get("CRLM_KG_LOG_PATIENTS", "").strip().lower() in ("1", "true", "yes", "on")


class AccessLogRedactor(logging.Filter):
    """Drops the query string from uvicorn's access log lines unless patient logging is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2] and not log_patients():
            record.args = args[:2] + (args[2].split("?", 1)[0] + "?…",) + args[3:]
        return True


def install() -> None:
    """Add the redactor to uvicorn's access logger (once; ``logging.config`` keeps logger filters)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedactor) for f in access.filters):
        access.addFilter(AccessLogRedactor())


def record_received(route: str, body: bytes) -> None:
    """Log a posted patient document, only when ``CRLM_KG_LOG_PATIENTS`` is on."""
    if log_patients():
        log.info("%s received %d bytes: %s", route, len(body), body.decode("utf-8", "replace"))
