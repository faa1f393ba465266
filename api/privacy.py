"""What the service may write to its logs about patients.

Patient records are evaluated and forgotten: nothing stores them, and by default
nothing logs them either. ``settings.log_patients`` (``CRLM_KG_LOG_PATIENTS``, off
by default) is the one switch that lets patient data into the logs: the documents
posted to the patient routes (logger ``crlm_kg.api.patients``, level INFO), the
query strings of the access log (``/queries/trials-for-patient?age=…`` carries
patient fields), and the messages of unexpected errors on the patient routes.
"""

from __future__ import annotations

import logging

from crlm_kg.settings import Settings

log = logging.getLogger("crlm_kg.api.patients")

PATIENT_PATHS = ("/patients/validate", "/evidence", "/evidence/batch")


class AccessLogRedactor(logging.Filter):
    """Drops the query string from uvicorn's access log lines unless patient logging is on."""

    def __init__(self, log_patients: bool) -> None:
        super().__init__()
        self.log_patients = log_patients

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2] and not self.log_patients:
            record.args = args[:2] + (args[2].split("?", 1)[0] + "?…",) + args[3:]
        return True


def install(settings: Settings) -> None:
    """Give uvicorn's access logger one redactor that follows ``settings`` (the logger is
    process-wide, so the last app built decides; ``logging.config`` keeps logger filters)."""
    access = logging.getLogger("uvicorn.access")
    for existing in [f for f in access.filters if isinstance(f, AccessLogRedactor)]:
        access.removeFilter(existing)
    access.addFilter(AccessLogRedactor(settings.log_patients))


def record_received(route: str, body: bytes, settings: Settings) -> None:
    """Log a posted patient document, only when ``settings.log_patients`` is on."""
    if settings.log_patients:
        log.info("%s received %d bytes: %s", route, len(body), body.decode("utf-8", "replace"))
