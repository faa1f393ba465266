"""The patient record's JSON schema in the OpenAPI document, generated from the JSON-LD context.

The context (``validation/patient-context.jsonld``) is the one definition of the
fields; this turns it into the ``PatientRecord`` schema that clients and
schemathesis read. Ranges and cross-field rules are the SHACL shapes' job and
are reported as 422 with messages.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from crlm_kg import patients

_JSON_TYPES = {"integer": {"type": "integer"}, "decimal": {"type": "number"}, "boolean": {"type": "boolean"}}


def patient_record_schema() -> dict[str, Any]:
    root: dict[str, Any] = {
        "type": "object",
        "title": "PatientRecord",
        "description": "The patient record of the API contract. Every field except id is optional.",
        "required": ["id"],
        "additionalProperties": False,
        "properties": {"id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}},
    }
    for spec in patients.contract().fields.values():
        if spec.kind == "code":
            schema: dict[str, Any] = {"type": "string", "enum": sorted(spec.codes)}
        else:
            schema = dict(_JSON_TYPES.get(spec.kind, {"type": "string"}))
        if spec.multiple:
            schema = {"type": "array", "items": schema}
        if spec.nest:
            nested = root["properties"].setdefault(spec.nest, {"type": "object", "additionalProperties": False, "properties": {}})
            nested["properties"][spec.term] = schema
        else:
            root["properties"][spec.term] = schema
    return root


def install_patient_schema(app: FastAPI) -> None:
    """Add PatientRecord to the OpenAPI components (once, whichever route module asks first)."""
    if getattr(app.state, "patient_schema_installed", False):
        return
    app.state.patient_schema_installed = True
    previous = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = previous() if previous is not None else get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["PatientRecord"] = patient_record_schema()
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
