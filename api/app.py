"""The FastAPI application: one store, loaded at start-up, shared by every route."""

from __future__ import annotations

import os

from fastapi import FastAPI, Query
from fastapi.middleware.cors import CORSMiddleware

import crlm_kg
from crlm_kg.settings import Settings
from crlm_kg.store import Store, open_store

from . import privacy, problems
from .sparql import SparqlService


def create_app(store: Store | None = None, *, settings: Settings | None = None) -> FastAPI:
    """Build the service around ``store`` (default: the configured store, embedded unless
    ``CRLM_KG_SPARQL_URL`` names a remote endpoint). Loading happens here, before the
    server accepts connections, so a broken data file stops start-up."""
    store = store if store is not None else open_store()
    app = FastAPI(
        title="crlm-kg",
        version=crlm_kg.__version__,
        description="Evidence for colorectal liver metastases: SPARQL endpoint, patient-specific evidence lookup, named queries and ontology browsing.",
    )
    app.state.store = store
    settings = settings if settings is not None else Settings()
    sparql_service = SparqlService(settings, store)
    app.state.sparql = sparql_service
    app.include_router(sparql_service.router)
    app.router.add_event_handler("startup", sparql_service.start)  # the workers load before the server takes requests
    app.router.add_event_handler("shutdown", sparql_service.close)
    problems.install(app)
    problems.document_validation_errors(app)
    origins = [o for o in os.environ.get("CRLM_KG_CORS_ORIGINS", "").split(",") if o]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["*"])

    privacy.install()

    @app.get("/health", tags=["service"], summary="Liveness and the size of the loaded graph")
    def health(fingerprint: bool = Query(False, description="add the graph's canonical SHA-256 (about 0.2 s; embedded store only)")) -> dict:
        body = {"status": "ok", "store": store.name, "triples": store.triple_count(), "version": crlm_kg.__version__,
                "sparql": sparql_service.status()}
        if fingerprint:
            from crlm_kg.graphs import graph_fingerprint

            body["fingerprint"] = graph_fingerprint(store) if hasattr(store, "store") else None
        return body

    for module_name in ("patients", "evidence", "browse"):
        module = _optional(module_name)
        if module is not None:
            module.register(app)
    return app


def _optional(name: str):
    """Route modules register themselves; a module not yet written is simply absent."""
    import importlib

    try:
        return importlib.import_module(f"api.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"api.{name}":
            return None
        raise
