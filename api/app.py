"""The FastAPI application: one store, one evidence lookup and one SPARQL service, all made
ready by the lifespan before the server accepts a connection, and shared by every route.

``create_app(settings, store)`` only assembles: routers, error handlers, middleware. The
``lifespan`` does the work that can fail or take time (opening the store, preparing every
query validation uses, reading the graph's structure for the evidence lookup, starting the
SPARQL workers), so the first requests find everything built and never race to build it.
"""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from starlette.concurrency import run_in_threadpool

import crlm_kg
from crlm_kg import patients
from crlm_kg.evidence import EvidenceLookup
from crlm_kg.settings import Settings, get_settings
from crlm_kg.store import Store, open_store
from crlm_kg.versions import data_version

from . import api_docs, browse, evidence, health, linked_data, log_throttle, pages, privacy, problems, research, screen
from . import patients as patients_api
from .patient_schema import install_patient_schema
from .sparql import SparqlService


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The service with ``settings`` (default: the process's, from the environment) on ``store``
    (default: the one the settings name, opened by the lifespan)."""
    settings = settings if settings is not None else get_settings()
    app = FastAPI(
        title="crlm-kg",
        version=crlm_kg.__version__,
        description="Evidence for colorectal liver metastases: SPARQL endpoint, patient-specific evidence lookup, named queries and ontology browsing.",
        lifespan=lifespan,
        # served by api_docs from the app's own files (FastAPI's defaults load them from a CDN)
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store  # None: the lifespan opens it
    app.state.lookup = None  # built by the lifespan
    app.state.data_version = None  # computed by the lifespan, once: the graph is read-only
    # the SPARQL routes exist from the start (they are in the OpenAPI document); the store
    # they answer from may be opened only by the lifespan, hence the stand-in
    app.state.sparql = SparqlService(settings, store if store is not None else _StoreOfApp(app))

    problems.install(app)
    problems.document_validation_errors(app)
    install_patient_schema(app)
    # evidence answers are hundreds of KB of repetitive JSON: compressed when the client accepts it
    # (level 3: a 1 MB answer in about 4 ms, 124 KB; Starlette's default, 9, took 17 ms for 100 KB)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=3)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"], allow_headers=["*"])
    privacy.install(settings)

    app.include_router(health.router)
    app.include_router(app.state.sparql.router)
    app.include_router(patients_api.router)
    app.include_router(evidence.router)
    app.include_router(screen.router)
    app.include_router(research.router)
    app.include_router(api_docs.router)
    # before browse and linked_data: a browser gets a page, every other client is handed over to them
    app.include_router(pages.router)
    app.include_router(browse.router)
    app.include_router(linked_data.router)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Everything a request needs, built before the server accepts connections; closed at shutdown."""
    settings: Settings = app.state.settings
    # here, not in create_app: uvicorn configures its loggers between the two
    log_throttle.install(settings.log_repeats, settings.log_window)
    opened_here = app.state.store is None
    if opened_here:
        app.state.store = await run_in_threadpool(open_store, settings)
    try:
        # rdflib's SPARQL parser (pyparsing) is not thread-safe: every query validation uses is
        # parsed here, on one thread, rather than by the first requests at once
        await run_in_threadpool(patients.warm_up)
        app.state.lookup = await run_in_threadpool(build_lookup, app.state.store)
        app.state.data_version = await run_in_threadpool(data_version, app.state.store)
        await run_in_threadpool(app.state.sparql.start)
        # what start-up built (the graph's structure, the models, the modules) lives as long as the process:
        # out of the garbage collector's sight, so that its full collections stop walking it (12 % of the
        # lookup's time before, 4 % after; far more at 100x the evidence)
        gc.collect()
        gc.freeze()
        yield
    finally:
        await run_in_threadpool(app.state.sparql.close)
        if opened_here:
            store, app.state.store = app.state.store, None
            await run_in_threadpool(store.close)


def build_lookup(store: Store) -> EvidenceLookup:
    """An evidence lookup whose every cached structure is already read from ``store``: no request
    builds one lazily (or races another request to), and a store that cannot answer stops start-up."""
    # the collector would walk the growing structure again and again while it is built (a large share of the
    # time at 100x the evidence); nothing built here is cyclic garbage
    gc.disable()
    try:
        return EvidenceLookup(store).warm()
    finally:
        gc.enable()


class _StoreOfApp:
    """Stands for the store the app's lifespan opens, for the SPARQL service built before it."""

    def __init__(self, app: FastAPI):
        self._app = app

    def _target(self) -> Store:
        store = self._app.state.store
        if store is None:
            raise RuntimeError("the store is opened by the app's lifespan, which has not run")
        return store

    @property
    def name(self) -> str:
        return self._target().name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)
